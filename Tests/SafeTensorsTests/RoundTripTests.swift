import Foundation
import Testing
import TestSupport
@testable import SafeTensors

/// A fresh directory under the system temporary directory, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("safetensors-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("SafeTensors writer and reader round trips")
struct RoundTripTests {
    @Test("Every dtype written by the Swift writer reads back with its values and shapes")
    func everyDTypeRoundTrips() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = SafeTensorsWriter(metadata: ["format": "pt", "note": "a \"quoted\"/value\n"])
        try writer.add("weight", floats: [1, -2.5, 3.25, 0, .infinity, -0.0], shape: [2, 3])
        try writer.add("scalar", floats: [42], shape: [])
        try writer.add("empty", floats: [], shape: [0, 4])
        try writer.add("half", floats: [1, 0.5, 65504, 1e-7], shape: [4], as: .f16)
        try writer.add("brain", floats: [1, 3.140625, -2], shape: [3], as: .bf16)
        try writer.add("double", floats: [0.1, 2], shape: [2], as: .f64)
        try writer.add("ids", int64s: [1, -2, Int64.max], shape: [3])
        try writer.add("small", int32s: [7, -8], shape: [1, 2])
        try writer.add("bytes", bytes: Data([0, 255, 3]), dtype: .u8, shape: [3])
        try writer.add("mask", bytes: Data([1, 0]), dtype: .bool, shape: [2])
        let url = directory.appendingPathComponent("all.safetensors")
        try writer.write(to: url)

        let file = try SafeTensorsFile(contentsOf: url)
        #expect(file.metadata == ["format": "pt", "note": "a \"quoted\"/value\n"])
        #expect(file.names == ["brain", "bytes", "double", "empty", "half", "ids", "mask", "scalar", "small", "weight"])
        let weight = try file.floats("weight")
        #expect(weight.map(\.bitPattern) == [1, -2.5, 3.25, 0, .infinity, -0.0].map { Float($0).bitPattern })
        #expect(try file.info("weight") == SafeTensorInfo(name: "weight", dtype: .f32, shape: [2, 3], byteCount: 24))
        #expect(try file.floats("scalar") == [42])
        #expect(try file.info("scalar").shape == [])
        #expect(try file.floats("empty") == [])
        #expect(try file.floats("half") == [1, 0.5, 65504, Float(bitPattern: 0x33D6_BF95).nearestHalf])
        #expect(try file.floats("brain") == [1, 3.140625, -2])
        #expect(try file.floats("double") == [0.1, 2])
        #expect(try file.int64s("ids") == [1, -2, Int64.max])
        #expect(try file.int32s("small") == [7, -8])
        #expect(try file.int64s("bytes") == [0, 255, 3])
        #expect(try file.floats("mask") == [1, 0])
        #expect(try file.bytes("small") == Data([7, 0, 0, 0, 0xF8, 0xFF, 0xFF, 0xFF]))
        #expect(try Data(contentsOf: url) == writer.serialized())
    }

    @Test("Reading a float tensor as integers is a dtypeMismatch naming the tensor")
    func floatAsIntegerIsRejected() throws {
        var writer = SafeTensorsWriter()
        try writer.add("weight", floats: [1], shape: [1])
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("w.safetensors")
        try writer.write(to: url)
        let file = try SafeTensorsFile(contentsOf: url)
        let error = try #require(throws: SafeTensorsError.self) { try file.int64s("weight") }
        #expect(error.code == .dtypeMismatch)
        #expect(error.tensor == "weight")
        #expect(error.message.contains("weight"))
    }

    @Test("An I64 value outside Int32 is a valueOutOfRange error when read as Int32")
    func int64OutOfInt32Range() throws {
        var writer = SafeTensorsWriter()
        try writer.add("ids", int64s: [1, 1 << 40], shape: [2])
        let url = try writeTemporary(writer)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let file = try SafeTensorsFile(contentsOf: url)
        let error = try #require(throws: SafeTensorsError.self) { try file.int32s("ids") }
        #expect(error.code == .valueOutOfRange)
        #expect(error.message.contains("'ids'"))
    }

    @Test("Asking for a missing tensor is notFound naming the file and listing nearby names")
    func missingTensor() throws {
        var writer = SafeTensorsWriter()
        try writer.add("model.layer.0.weight", floats: [1], shape: [1])
        try writer.add("model.layer.1.weight", floats: [1], shape: [1])
        let url = try writeTemporary(writer)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let file = try SafeTensorsFile(contentsOf: url)
        let error = try #require(throws: SafeTensorsError.self) { try file.info("model.layer.2.weight") }
        #expect(error.code == .notFound)
        #expect(error.file == url.path)
        #expect(error.message.contains(url.path))
        #expect(error.message.contains("'model.layer.0.weight'"))
    }

    @Test("floats(_:shape:) returns values for the expected shape and names both shapes otherwise")
    func floatsWithExpectedShape() throws {
        var writer = SafeTensorsWriter()
        try writer.add("w", floats: [1, 2, 3, 4, 5, 6], shape: [2, 3])
        let url = try writeTemporary(writer)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let source: any SafeTensorsSource = try SafeTensorsFile(contentsOf: url)
        #expect(try source.floats("w", shape: [2, 3]) == [1, 2, 3, 4, 5, 6])
        let error = try #require(throws: SafeTensorsError.self) { try source.floats("w", shape: [3, 2]) }
        #expect(error.code == .shapeMismatch)
        #expect(error.message.contains("[2, 3]") && error.message.contains("[3, 2]") && error.message.contains(url.path))
    }

    @Test("Writer rejects duplicate names, reserved names and shape/value count mismatches")
    func writerRejectsBadArguments() throws {
        var writer = SafeTensorsWriter()
        try writer.add("a", floats: [1, 2], shape: [2])
        #expect(throws: SafeTensorsError.self) { try writer.add("a", floats: [1, 2], shape: [2]) }
        #expect((try? writer.add("__metadata__", floats: [1], shape: [1])) == nil)
        let mismatch = try #require(throws: SafeTensorsError.self) { try writer.add("b", floats: [1, 2, 3], shape: [2, 2]) }
        #expect(mismatch.code == .shapeMismatch)
        let negative = try #require(throws: SafeTensorsError.self) { try writer.add("c", floats: [], shape: [-1]) }
        #expect(negative.code == .invalidShape)
        let badBytes = try #require(throws: SafeTensorsError.self) {
            try writer.add("d", bytes: Data([1, 2, 3]), dtype: .i32, shape: [1])
        }
        #expect(badBytes.code == .shapeMismatch)
        #expect(writer.names == ["a"])
    }

    @Test("A failed write leaves no file and no temporary file behind")
    func failedWriteLeavesNothing() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = SafeTensorsWriter()
        try writer.add("a", floats: [1], shape: [1])
        // The target is an existing non-empty directory: rename(2) must fail after the data is written.
        let target = directory.appendingPathComponent("taken")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)
        try Data([1]).write(to: target.appendingPathComponent("x"))
        let error = try #require(throws: SafeTensorsError.self) { try writer.write(to: target) }
        #expect(error.code == .io)
        #expect(error.message.contains(target.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["taken"])
        let missing = directory.appendingPathComponent("no/such/dir/file.safetensors")
        #expect(throws: SafeTensorsError.self) { try writer.write(to: missing) }
    }
}

/// Writes `writer` to a new file in a new temporary directory (the caller removes the directory).
func writeTemporary(_ writer: SafeTensorsWriter, name: String = "t.safetensors") throws -> URL {
    let url = try makeTemporaryDirectory().appendingPathComponent(name)
    try writer.write(to: url)
    return url
}

extension Float {
    /// This value rounded to the nearest binary16 and back.
    var nearestHalf: Float { HalfPrecision.float(fromHalf: HalfPrecision.halfBits(from: self)) }
}
