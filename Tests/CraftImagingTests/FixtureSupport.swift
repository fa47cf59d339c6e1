import Foundation
import Testing

@testable import CraftImaging

/// The contents of Fixtures/expected.json (written by scripts/image_fixtures.py).
struct ExpectedFixtures: Decodable {
    struct Decoded: Decodable {
        var file: String
        var width: Int
        var height: Int
        var colorModel: String
        var bitDepth: Int
        var samples: [Int]
    }
    struct Resize: Decodable {
        var file: String
        var width: Int
        var height: Int
        var filter: String
        var samples: [Int]
    }
    struct Siglip: Decodable {
        var file: String
        var config: ImagePreprocessing
        var shape: [Int]
        var values: [Float]
    }
    struct Composite: Decodable {
        var file: String
        var samples: [Int]
    }
    var png: [Decoded]
    var jpeg: [Decoded]
    var resize: [Resize]
    var siglip: [Siglip]
    var compositeOverWhite: Composite
    var convertRGB: [String: [Int]]
}

enum Fixtures {
    static func url(_ name: String) throws -> URL {
        let base = (name as NSString).deletingPathExtension, ext = (name as NSString).pathExtension
        return try #require(Bundle.module.url(forResource: base, withExtension: ext, subdirectory: "Fixtures"), "fixture \(name) missing")
    }

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: url(name))
    }

    static func image(_ name: String) throws -> Image {
        try Image(contentsOf: url(name))
    }

    static func expected() throws -> ExpectedFixtures {
        try JSONDecoder().decode(ExpectedFixtures.self, from: data("expected.json"))
    }
}

extension Image {
    /// Samples as Ints, whatever the storage, for comparison with fixtures.
    var intSamples: [Int] {
        switch samples {
        case .uint8(let values): values.map(Int.init)
        case .uint16(let values): values.map(Int.init)
        }
    }
}

/// The largest absolute difference between two equally long integer arrays (nil if counts differ).
func maxDifference(_ a: [Int], _ b: [Int]) -> Int? {
    guard a.count == b.count else { return nil }
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}
