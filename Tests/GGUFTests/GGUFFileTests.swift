import Foundation
import Testing
import TensorCore

@testable import CraftModels
@testable import GGUF

/// A GGUF file built byte by byte, for hostile cases.
struct GGUFBuilder {
    var version: UInt32 = 3
    var entries: [(String, UInt32, [UInt8])] = []
    var tensors: [(name: String, ne: [UInt64], type: UInt32, offset: UInt64)] = []
    var data: [UInt8] = []
    var tensorCountOverride: UInt64?
    var entryCountOverride: UInt64?

    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    static func string(_ text: String) -> [UInt8] { le(UInt64(text.utf8.count)) + Array(text.utf8) }

    /// A valid file with one F32 tensor [2, 32] named "w".
    static func valid() -> GGUFBuilder {
        var builder = GGUFBuilder()
        builder.entries = [("general.architecture", 8, string("llama"))]
        builder.tensors = [("w", [32, 2], 0, 0)]
        builder.data = (0..<64).flatMap { le(Float(Double($0) * 0.5).bitPattern) }
        return builder
    }

    func bytes() -> [UInt8] {
        var out: [UInt8] = Array("GGUF".utf8) + Self.le(version)
        out += Self.le(tensorCountOverride ?? UInt64(tensors.count)) + Self.le(entryCountOverride ?? UInt64(entries.count))
        for (key, type, value) in entries { out += Self.string(key) + Self.le(type) + value }
        for tensor in tensors {
            out += Self.string(tensor.name) + Self.le(UInt32(tensor.ne.count)) + tensor.ne.flatMap { Self.le($0) }
            out += Self.le(tensor.type) + Self.le(tensor.offset)
        }
        while out.count % 32 != 0 { out.append(0) }
        return out + data
    }
}

@Suite("GGUF files: metadata, tensors, dequantization, hostile input")
struct GGUFFileTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func write(_ bytes: [UInt8]) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-\(UUID().uuidString).gguf")
        try Data(bytes).write(to: url)
        return url
    }

    @Test("metadata of every value type equals what the gguf package wrote")
    func metadata() throws {
        let file = try GGUFFile(contentsOf: Self.fixtures.appendingPathComponent("types.gguf"))
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("types.expected.json"))) as! [String: Any]
        let metadata = expected["metadata"] as! [String: Any]
        #expect(file.version == 3 && file.alignment == 32)
        #expect(file.metadata["general.architecture"]?.stringValue == "llama")
        #expect(file.metadata["craft.u8"] == .uint8(200) && file.metadata["craft.i8"] == .int8(-100))
        #expect(file.metadata["craft.u16"] == .uint16(60000) && file.metadata["craft.i16"] == .int16(-30000))
        #expect(file.metadata["craft.u32"] == .uint32(4_000_000_000) && file.metadata["craft.i32"] == .int32(-2_000_000_000))
        #expect(file.metadata["craft.u64"] == .uint64(18_000_000_000_000_000_000) && file.metadata["craft.i64"] == .int64(-9_000_000_000_000_000_000))
        #expect(file.metadata["craft.f32"] == .float32(0.15625) && file.metadata["craft.f64"] == .float64(2.718281828459045))
        #expect(file.metadata["craft.bool"] == .bool(true))
        #expect(file.metadata["craft.string"]?.stringValue == metadata["craft.string"] as? String)
        #expect(file.metadata["craft.ints"]?.arrayValue?.compactMap(\.integerValue) == [1, -2, 3])
        #expect(file.metadata["craft.strings"]?.arrayValue?.compactMap(\.stringValue) == metadata["craft.strings"] as? [String])
        #expect(file.metadata["craft.floats"]?.arrayValue?.compactMap(\.doubleValue) == [0.5, -1.25])
        #expect(file.metadata["craft.nested"]?.arrayValue?.map { $0.arrayValue?.compactMap(\.integerValue) ?? [] } == [[1, 2], [3]])
        #expect(file.metadataKeys.first == "general.architecture" && file.metadataKeys.count == metadata.count + 1)
    }

    @Test("every tensor type dequantizes to the gguf package's reference, bit for bit",
          arguments: ["t.f32", "t.f16", "t.bf16", "t.q8_0", "t.q4_0", "t.q4_k", "t.q5_k", "t.q6_k"])
    func dequantization(name: String) throws {
        let file = try GGUFFile(contentsOf: Self.fixtures.appendingPathComponent("types.gguf"))
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("types.expected.json"))) as! [String: Any]
        let reference = (expected["tensors"] as! [String: Any])[name] as! [String: Any]
        let tensor = try file.tensor(name)
        #expect(tensor.type.name == reference["type"] as? String)
        #expect(tensor.shape == reference["shape"] as? [Int])
        let values = try file.dequantized(name)
        let bits = (reference["bits"] as! [NSNumber]).map { $0.uint32Value }
        #expect(values.count == bits.count)
        let differing = zip(values, bits).filter { $0.0.bitPattern != $0.1 }.count
        #expect(differing == 0, "\(differing) of \(bits.count) values differ from gguf.quants.dequantize")
        // The blocks kept as a QuantizedMatrix (CKernels' dequantization, used for prefill tiles and
        // embedding rows) give the same bits.
        if let format = LlamaModel.quantizedFormat(tensor.type) {
            let kept = file.withBytes(of: tensor) { bytes in
                QuantizedMatrix(format: format, rows: tensor.shape.dropLast().reduce(1, *), columns: tensor.shape.last!, blocks: bytes.baseAddress!, owner: file)
            }
            let keptDiffering = zip(kept.floats().scalars, bits).filter { $0.0.bitPattern != $0.1 }.count
            #expect(keptDiffering == 0, "\(keptDiffering) of \(bits.count) values of the kept \(format) blocks differ")
        }
    }

    @Test("a built file reads back: shape reversed from ggml's ne, values in place")
    func builtFile() throws {
        let url = try Self.write(GGUFBuilder.valid().bytes())
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try GGUFFile(contentsOf: url)
        let tensor = try file.tensor("w")
        #expect(tensor.shape == [2, 32] && tensor.byteCount == 256 && tensor.fileOffset % 32 == 0)
        #expect(try file.dequantized("w") == (0..<64).map { Float(Double($0) * 0.5) })
        #expect(throws: GGUFError.self) { _ = try file.tensor("absent") }
    }

    /// Each hostile file gets a `GGUFError` of the right code, whose message names what is wrong.
    @Test("hostile files: each a clear error, nothing crashes")
    func hostileFiles() throws {
        var cases: [(String, GGUFBuilder, GGUFError.Code, String)] = []
        var b = GGUFBuilder.valid(); b.version = 1; cases.append(("version 1", b, .unsupported, "version 1"))
        b = .valid(); b.tensorCountOverride = 1 << 40; cases.append(("huge tensor count", b, .malformed, "tensors"))
        b = .valid(); b.entryCountOverride = 1 << 40; cases.append(("huge entry count", b, .malformed, "metadata entries"))
        b = .valid(); b.entries = [("k", 8, GGUFBuilder.le(UInt64(1) << 62))]; cases.append(("huge string", b, .malformed, "\"k\""))
        b = .valid(); b.entries = [("a", 9, GGUFBuilder.le(UInt32(4)) + GGUFBuilder.le(UInt64(1) << 23))]; cases.append(("array count beyond the file", b, .malformed, "\"a\""))
        b = .valid(); b.entries = [("a", 9, GGUFBuilder.le(UInt32(99)) + GGUFBuilder.le(UInt64(1)) + [0])]; cases.append(("array of unknown type", b, .unsupported, "\"a\""))
        b = .valid(); b.entries = [("v", 42, [0])]; cases.append(("unknown value type", b, .unsupported, "\"v\""))
        b = .valid(); b.entries = [("flag", 7, [2])]; cases.append(("bool of 2", b, .malformed, "\"flag\""))
        b = .valid(); b.entries = [("s", 8, GGUFBuilder.le(UInt64(2)) + [0xC3, 0x28])]; cases.append(("invalid UTF-8", b, .malformed, "UTF-8"))
        b = .valid(); b.entries.append(("general.architecture", 8, GGUFBuilder.string("qwen2"))); cases.append(("duplicate key", b, .malformed, "twice"))
        b = .valid(); b.entries.append(("general.alignment", 4, GGUFBuilder.le(UInt32(24)))); cases.append(("alignment 24", b, .malformed, "alignment"))
        b = .valid(); b.tensors[0].type = 77; cases.append(("unknown tensor type", b, .unsupported, "\"w\""))
        b = .valid(); b.tensors[0].offset = 8; cases.append(("unaligned offset", b, .malformed, "alignment"))
        b = .valid(); b.tensors[0].offset = 1 << 50; cases.append(("offset past the end", b, .malformed, "\"w\""))
        b = .valid(); b.tensors[0].ne = [32, 3]; cases.append(("more bytes than the file", b, .malformed, "\"w\""))
        b = .valid(); b.tensors[0].ne = [0, 2]; cases.append(("empty dimension", b, .malformed, "\"w\""))
        b = .valid(); b.tensors[0].ne = [1, 1, 1, 1, 1]; cases.append(("five dimensions", b, .malformed, "\"w\""))
        b = .valid(); b.tensors[0].ne = [UInt64(Int32.max), UInt64(Int32.max), UInt64(Int32.max)]; cases.append(("overflowing shape", b, .malformed, "\"w\""))
        b = .valid(); b.tensors[0].type = 8; b.tensors[0].ne = [16, 2]; cases.append(("row not a block multiple", b, .malformed, "block"))
        b = .valid(); b.tensors = [("w", [32, 1], 0, 0), ("w", [32, 1], 0, 128)]; cases.append(("duplicate tensor", b, .malformed, "twice"))
        b = .valid(); b.tensors = [("a", [32, 2], 0, 0), ("b", [32, 1], 0, 128)]; cases.append(("overlapping tensors", b, .malformed, "overlap"))
        for (name, builder, code, phrase) in cases {
            let url = try Self.write(builder.bytes())
            defer { try? FileManager.default.removeItem(at: url) }
            do {
                _ = try GGUFFile(contentsOf: url)
                Issue.record("\(name): the file was accepted")
            } catch {
                #expect(error.code == code, "\(name): \(error.code) \(error.message)")
                #expect(error.message.contains(phrase) && error.message.contains(url.path), "\(name): \(error.message)")
            }
        }
        // Bad magic, and an empty file.
        for bytes in [Array("GGML".utf8) + [UInt8](repeating: 0, count: 60), []] {
            let url = try Self.write(bytes)
            defer { try? FileManager.default.removeItem(at: url) }
            #expect(throws: GGUFError.self) { _ = try GGUFFile(contentsOf: url) }
        }
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(UUID().uuidString).gguf")
        #expect { _ = try GGUFFile(contentsOf: missing) } throws: { ($0 as? GGUFError)?.code == .notFound }
    }

    @Test("every truncation of the fixture is refused as truncated or malformed, never a crash")
    func truncations() throws {
        let bytes = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("types.gguf")))
        // The writer pads the file after the last tensor: cutting only padding leaves a valid file.
        let whole = try GGUFFile(contentsOf: Self.fixtures.appendingPathComponent("types.gguf"))
        let dataEnd = whole.tensors.map { $0.fileOffset + $0.byteCount }.max() ?? 0
        var refused = 0
        for length in stride(from: 0, to: bytes.count, by: 7) {
            let url = try Self.write(Array(bytes.prefix(length)))
            defer { try? FileManager.default.removeItem(at: url) }
            do {
                _ = try GGUFFile(contentsOf: url)
                #expect(length >= dataEnd, "\(length) bytes were accepted")
            } catch {
                #expect(error.code == .malformed, "\(length) bytes: \(error.message)")
                refused += 1
            }
        }
        #expect(refused == (dataEnd + 6) / 7)
    }

    @Test("a type Craft does not dequantize is named when asked for")
    func undequantizableType() throws {
        var builder = GGUFBuilder.valid()
        builder.tensors = [("q", [32, 2], 3, 0)]  // Q4_1: 2 blocks of 20 bytes
        builder.data = [UInt8](repeating: 0, count: 40)
        let url = try Self.write(builder.bytes())
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try GGUFFile(contentsOf: url)
        #expect { _ = try file.dequantized("q") } throws: { error in
            let error = error as? GGUFError
            return error?.code == .unsupported && error?.message.contains("Q4_1") == true
        }
    }
}
