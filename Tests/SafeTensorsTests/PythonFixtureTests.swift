import Foundation
import Testing
@testable import SafeTensors

/// The expected values written by scripts/safetensors_fixtures.py.
struct ExpectedFixtures: Decodable {
    struct Tensor: Decodable {
        let dtype: String
        let shape: [Int]
        let floatBits: [UInt32]?
        let ints: [String]?
        enum CodingKeys: String, CodingKey {
            case dtype, shape, ints
            case floatBits = "float_bits"
        }
    }
    struct File: Decodable {
        let metadata: [String: String]
        let tensors: [String: Tensor]
    }
    struct Sharded: Decodable {
        let totalSize: Int
        let weightMap: [String: String]
        let tensors: [String: Tensor]
        enum CodingKeys: String, CodingKey {
            case tensors
            case totalSize = "total_size"
            case weightMap = "weight_map"
        }
    }
    struct SwiftWrittenInputs: Decodable {
        let metadata: [String: String]
        let floatBits: [UInt32]
        let ints64: [String]
        let ints32: [String]
        let bytesU8: [UInt8]
        let bytesBool: [UInt8]
        enum CodingKeys: String, CodingKey {
            case metadata, ints64, ints32
            case floatBits = "float_bits"
            case bytesU8 = "bytes_u8"
            case bytesBool = "bytes_bool"
        }
    }
    let dtypesFile: File
    let f32File: File
    let sharded: Sharded
    let swiftWrittenInputs: SwiftWrittenInputs
    enum CodingKeys: String, CodingKey {
        case sharded
        case dtypesFile = "dtypes_file"
        case f32File = "f32_file"
        case swiftWrittenInputs = "swift_written_inputs"
    }

    static func load() throws -> ExpectedFixtures {
        let url = try fixtureURL("expected", "json")
        return try JSONDecoder().decode(ExpectedFixtures.self, from: Data(contentsOf: url))
    }
}

func fixtureURL(_ name: String, _ ext: String, subdirectory: String = "Fixtures") throws -> URL {
    try #require(
        Bundle.module.url(forResource: name, withExtension: ext, subdirectory: subdirectory),
        "missing fixture \(subdirectory)/\(name).\(ext); run scripts/safetensors_fixtures.py")
}

/// Checks every expected tensor of `expected` against `source`: dtype, shape, values bit for bit.
func expectTensors(_ source: any SafeTensorsSource, match expected: [String: ExpectedFixtures.Tensor]) throws {
    #expect(source.names == expected.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    for (name, tensor) in expected {
        let info = try source.info(name)
        #expect(info.dtype.rawValue == tensor.dtype, "dtype of \(name)")
        #expect(info.shape == tensor.shape, "shape of \(name)")
        #expect(info.elementCount == tensor.shape.reduce(1, *), "element count of \(name)")
        let floats = try source.floats(name)
        if let bits = tensor.floatBits {
            #expect(floats.map(\.bitPattern) == bits, "Float32 bits of \(name)")
            #expect(throws: SafeTensorsError.self) { try source.int64s(name) }
        }
        if let ints = tensor.ints {
            let wanted = ints.compactMap { Int64($0) }
            #expect(wanted.count == ints.count)
            if info.dtype == .u64 {
                #expect(try source.floats(name) == ints.compactMap { UInt64($0) }.map { Float($0) })
            } else {
                #expect(floats == wanted.map { Float($0) }, "Float32 values of \(name)")
            }
            #expect(try source.int64s(name) == wanted, "Int64 values of \(name)")
            if wanted.allSatisfy({ Int32(exactly: $0) != nil }) {
                #expect(try source.int32s(name) == wanted.map { Int32($0) }, "Int32 values of \(name)")
            }
        }
        #expect(try source.bytes(name).count == info.byteCount)
    }
}

@Suite("SafeTensors against files from the Python safetensors package")
struct PythonFixtureTests {
    @Test("Every dtype written by Python (F16/BF16 subnormals, inf, NaN; integer extremes; BOOL) reads exactly")
    func readsEveryDTypeFromPython() throws {
        let expected = try ExpectedFixtures.load()
        let file = try SafeTensorsFile(contentsOf: try fixtureURL("python-dtypes", "safetensors"))
        #expect(file.metadata == expected.dtypesFile.metadata)
        try expectTensors(file, match: expected.dtypesFile.tensors)
        #expect(Set(expected.dtypesFile.tensors.values.map(\.dtype)) == Set(SafeTensorsDType.allCases.map(\.rawValue)))
    }

    @Test("The Swift writer reproduces safetensors.numpy.save_file's F32 file byte for byte")
    func writesF32ByteIdenticalToPython() throws {
        let expected = try ExpectedFixtures.load()
        let pythonBytes = try Data(contentsOf: try fixtureURL("python-f32", "safetensors"))
        let file = try SafeTensorsFile(contentsOf: try fixtureURL("python-f32", "safetensors"))
        try expectTensors(file, match: expected.f32File.tensors)

        var writer = SafeTensorsWriter(metadata: expected.f32File.metadata)
        // Added in reverse order on purpose: the layout must not depend on insertion order.
        for (name, tensor) in expected.f32File.tensors.sorted(by: { $0.key > $1.key }) {
            try writer.add(name, floats: (tensor.floatBits ?? []).map(Float.init(bitPattern:)), shape: tensor.shape)
        }
        let swiftBytes = try writer.serialized()
        #expect(swiftBytes.count == pythonBytes.count)
        #expect(swiftBytes == pythonBytes)
    }

    @Test("A 2-shard checkpoint opens through its index and through openSafeTensors(directory:)")
    func readsShardedCheckpoint() throws {
        let expected = try ExpectedFixtures.load()
        let indexURL = try fixtureURL("model.safetensors", "index.json", subdirectory: "Fixtures/sharded")
        let sharded = try ShardedSafeTensors(indexAt: indexURL)
        #expect(sharded.metadata["total_size"] == String(expected.sharded.totalSize))
        #expect(sharded.weightMap == expected.sharded.weightMap)
        #expect(sharded.shardNames == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        try expectTensors(sharded, match: expected.sharded.tensors)

        let opened = try openSafeTensors(directory: indexURL.deletingLastPathComponent())
        #expect(opened is ShardedSafeTensors)
        try expectTensors(opened, match: expected.sharded.tensors)
        let error = try #require(throws: SafeTensorsError.self) { try sharded.floats("layers.9.weight") }
        #expect(error.code == .notFound)
        #expect(error.message.contains("model.safetensors.index.json"))
    }

    @Test("Swift writer output matches the committed swift-written.safetensors (checked by the Python package)")
    func swiftWrittenFileIsPinned() throws {
        let inputs = try ExpectedFixtures.load().swiftWrittenInputs
        let values = inputs.floatBits.map(Float.init(bitPattern:))
        var writer = SafeTensorsWriter(metadata: inputs.metadata)
        try writer.add("values.f32", floats: values, shape: [values.count])
        try writer.add("values.f16", floats: values, shape: [values.count], as: .f16)
        try writer.add("values.bf16", floats: values, shape: [values.count], as: .bf16)
        try writer.add("values.f64", floats: values, shape: [values.count], as: .f64)
        try writer.add("ints.i64", int64s: inputs.ints64.compactMap { Int64($0) }, shape: [inputs.ints64.count])
        try writer.add("ints.i32", int32s: inputs.ints32.compactMap { Int32($0) }, shape: [2, 2])
        try writer.add("bytes.u8", bytes: Data(inputs.bytesU8), dtype: .u8, shape: [inputs.bytesU8.count])
        try writer.add("bytes.bool", bytes: Data(inputs.bytesBool), dtype: .bool, shape: [inputs.bytesBool.count])
        try writer.add("scalar", floats: [2.5], shape: [])
        try writer.add("empty", floats: [], shape: [0, 2])
        let bytes = try writer.serialized()

        if ProcessInfo.processInfo.environment["SAFETENSORS_REGENERATE_FIXTURES"] == "1" {
            // Regeneration (see scripts/safetensors_fixtures.py): write into the source tree.
            let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("Fixtures/swift-written.safetensors")
            try writer.write(to: source)
        }
        let committed = try Data(contentsOf: try fixtureURL("swift-written", "safetensors"))
        #expect(bytes == committed, "writer output changed: regenerate and re-verify with the Python script")

        let file = try SafeTensorsFile(contentsOf: try fixtureURL("swift-written", "safetensors"))
        #expect(file.metadata == inputs.metadata)
        #expect(try file.floats("values.f32").map(\.bitPattern) == inputs.floatBits)
        #expect(try file.floats("values.f64").map(\.bitPattern) == inputs.floatBits)
        #expect(try file.int64s("ints.i64") == inputs.ints64.compactMap { Int64($0) })
        #expect(try file.int64s("bytes.bool") == inputs.bytesBool.map { Int64($0) })
    }
}
