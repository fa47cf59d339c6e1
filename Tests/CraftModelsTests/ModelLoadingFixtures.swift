import Foundation
import SafeTensors
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

/// The tiny checkpoints and reference outputs made by scripts/model_fixtures.py.
enum ModelFixtures {
    static func directory(_ name: String) throws -> URL {
        let root = try #require(Bundle.module.url(forResource: "models", withExtension: nil, subdirectory: "Fixtures"),
                                "the models fixtures are missing from the test bundle")
        return root.appendingPathComponent(name)
    }

    /// The reference tensors of fixture `name`.
    static func reference(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(contentsOf: directory(name + ".reference.safetensors"))
    }
}

extension SafeTensorsFile {
    func tensor(_ name: String) throws -> Tensor { Tensor(try floats(name), shape: try info(name).shape) }
    func ints(_ name: String) throws -> [Int] { try int64s(name).map { Int($0) } }
}

/// Expects `actual` to match `expected` in shape and values.
func expectClose(_ actual: Tensor, _ expected: Tensor, relative: Float = 1e-4, absolute: Float = 1e-5,
                 _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.shape == expected.shape, "\(what): shape \(actual.shape) vs \(expected.shape)", sourceLocation: sourceLocation)
    let (ok, report) = approximatelyEqual(actual.scalars, expected.scalars, relative: relative, absolute: absolute)
    #expect(ok, "\(what): \(report)", sourceLocation: sourceLocation)
}
