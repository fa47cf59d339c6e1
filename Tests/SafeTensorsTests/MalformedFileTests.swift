import Foundation
import Testing
@testable import SafeTensors

/// The bytes of a safetensors file: an 8-byte little-endian length (the header's, unless given),
/// the header, then `data`.
func fileBytes(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
    let headerBytes = Array(header.utf8)
    return fileBytes(headerBytes: headerBytes, data: data, declaredLength: declaredLength)
}

func fileBytes(headerBytes: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
    var length = declaredLength ?? UInt64(headerBytes.count)
    var bytes = Data(bytes: &length, count: 8)  // little-endian host; checked below
    bytes.append(contentsOf: headerBytes)
    bytes.append(contentsOf: data)
    return bytes
}

/// Writes `bytes` to a temporary file, opens it, and returns the error it must raise.
func openError(
    _ bytes: Data, options: SafeTensorsReadOptions = .init(), sourceLocation: SourceLocation = #_sourceLocation
) throws -> SafeTensorsError {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("bad.safetensors")
    try bytes.write(to: url)
    let error = try #require(throws: SafeTensorsError.self, sourceLocation: sourceLocation) {
        _ = try SafeTensorsFile(contentsOf: url, options: options)
    }
    #expect(error.file == url.path, sourceLocation: sourceLocation)
    #expect(error.message.contains(url.path), "message names the file: \(error.message)", sourceLocation: sourceLocation)
    return error
}

/// A header entry for tensor `name`.
func entry(_ name: String, _ dtype: String = "F32", shape: String, offsets: String) -> String {
    "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":\(offsets)}"
}

@Suite("SafeTensors rejects malformed files with typed errors")
struct MalformedFileTests {
    let eight = [UInt8](repeating: 0, count: 8)

    @Test("Host is little-endian, as the byte builders here assume")
    func hostIsLittleEndian() {
        #expect(UInt16(littleEndian: 1) == 1)
    }

    @Test("An empty file or one shorter than the length field is truncated")
    func missingLengthField() throws {
        #expect(try openError(Data()).code == .truncated)
        #expect(try openError(Data([1, 0, 0, 0, 0])).code == .truncated)
    }

    @Test("A header length past the end of the file is truncated")
    func headerLengthPastEnd() throws {
        let error = try openError(fileBytes(header: "{}", declaredLength: 64))
        #expect(error.code == .truncated)
        #expect(error.message.contains("64-byte header"))
    }

    @Test("A header length over 100 MB (or the configured cap) is headerTooLarge")
    func headerTooLarge() throws {
        #expect(try openError(fileBytes(header: "{}", declaredLength: 100_000_001)).code == .headerTooLarge)
        #expect(try openError(fileBytes(header: "{}", declaredLength: UInt64.max)).code == .headerTooLarge)
        let small = fileBytes(header: "{" + entry("a", shape: "[2]", offsets: "[0,8]") + "}", data: eight)
        let error = try openError(small, options: SafeTensorsReadOptions(maximumHeaderBytes: 16))
        #expect(error.code == .headerTooLarge)
        #expect(error.message.contains("16-byte limit"))
    }

    @Test("A header that is not UTF-8, not JSON, or not an object is invalidHeader")
    func headerNotJSONObject() throws {
        func expectInvalid(_ bytes: Data, saying phrase: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let error = try openError(bytes, sourceLocation: sourceLocation)
            #expect(error.code == .invalidHeader, sourceLocation: sourceLocation)
            #expect(error.message.contains(phrase), "\(error.message)", sourceLocation: sourceLocation)
        }
        let entryTail: [UInt8] = Array("\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}".utf8)
        try expectInvalid(fileBytes(headerBytes: [0x7B, 0x22, 0xFF, 0xFE] + entryTail), saying: "not valid UTF-8")
        try expectInvalid(fileBytes(headerBytes: [0x7B, 0x22, 0xC0, 0xAF] + entryTail), saying: "not valid UTF-8")  // overlong
        try expectInvalid(fileBytes(headerBytes: [0x7B, 0x22, 0xED, 0xA0, 0x80] + entryTail), saying: "not valid UTF-8")  // surrogate
        try expectInvalid(fileBytes(headerBytes: [0x7B, 0x22, 0xE2, 0x98] + entryTail), saying: "not valid UTF-8")  // cut sequence
        try expectInvalid(fileBytes(header: "{\"a\": "), saying: "not valid JSON")
        try expectInvalid(fileBytes(header: "{\"a\":{}} trailing"), saying: "not valid JSON")
        try expectInvalid(fileBytes(header: "{'a':{}}"), saying: "not valid JSON")
        try expectInvalid(fileBytes(header: "{\"a\":01}"), saying: "not valid JSON")
        try expectInvalid(fileBytes(header: String(repeating: "[", count: 100_000)), saying: "not valid JSON")
        try expectInvalid(fileBytes(header: "{\"\\ud800\":{}}"), saying: "not valid JSON")  // unpaired surrogate escape
        try expectInvalid(fileBytes(header: ""), saying: "not valid JSON")
        try expectInvalid(fileBytes(header: "[1,2]"), saying: "not a JSON object")
        try expectInvalid(fileBytes(header: "\"text\""), saying: "not a JSON object")
        // The same entry with valid UTF-8 opens, so the rejections above are about the encoding.
        let valid = fileBytes(headerBytes: [0x7B, 0x22, 0xC3, 0xA9] + entryTail)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("ok.safetensors")
        try valid.write(to: url)
        #expect(try SafeTensorsFile(contentsOf: url).names == ["é"])
    }

    @Test("Entries missing dtype, shape or data_offsets are invalidHeader naming the tensor")
    func missingFields() throws {
        for (field, header) in [
            ("dtype", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}"),
            ("shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}"),
            ("data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}"),
        ] {
            let error = try openError(fileBytes(header: header, data: eight))
            #expect(error.code == .invalidHeader)
            #expect(error.tensor == "w")
            #expect(error.message.contains("'w'") && error.message.contains(field))
        }
        let notObject = try openError(fileBytes(header: "{\"w\":[1]}"))
        #expect(notObject.code == .invalidHeader && notObject.tensor == "w")
        let badMetadata = try openError(fileBytes(header: "{\"__metadata__\":{\"k\":1}}"))
        #expect(badMetadata.code == .invalidHeader && badMetadata.message.contains("'k'"))
        let badOffsets = try openError(fileBytes(header: "{" + entry("w", shape: "[2]", offsets: "[0]") + "}", data: eight))
        #expect(badOffsets.code == .invalidHeader && badOffsets.tensor == "w")
    }

    @Test("An unknown or unsupported dtype is unknownDType naming the tensor and the dtype")
    func unknownDType() throws {
        for dtype in ["F8_E4M3", "float32", "f32", ""] {
            let error = try openError(fileBytes(header: "{" + entry("w", dtype, shape: "[2]", offsets: "[0,8]") + "}", data: eight))
            #expect(error.code == .unknownDType)
            #expect(error.tensor == "w")
            #expect(error.message.contains("'\(dtype)'"))
        }
    }

    @Test("Negative, fractional or non-numeric dimensions are invalidShape")
    func invalidDimensions() throws {
        for shape in ["[-2]", "[2.5]", "[2e0]", "[\"2\"]", "[null]", "2"] {
            let error = try openError(fileBytes(header: "{" + entry("w", shape: shape, offsets: "[0,8]") + "}", data: eight))
            #expect(error.code == (shape == "2" ? .invalidHeader : .invalidShape), "shape \(shape)")
            #expect(error.tensor == "w")
            #expect(error.message.contains("'w'"))
        }
    }

    @Test("A shape whose element or byte count overflows is overflow")
    func overflowingShape() throws {
        for shape in ["[4294967296,4294967296]", "[99999999999999999999]", "[3074457345618258603]", "[0,99999999999999999999]"] {
            let error = try openError(fileBytes(header: "{" + entry("big", shape: shape, offsets: "[0,8]") + "}", data: eight))
            #expect(error.code == .overflow, "shape \(shape)")
            #expect(error.tensor == "big")
        }
    }

    @Test("Shape × dtype size differing from the byte range is shapeMismatch")
    func sizeMismatch() throws {
        let error = try openError(fileBytes(header: "{" + entry("w", shape: "[3]", offsets: "[0,8]") + "}", data: eight))
        #expect(error.code == .shapeMismatch)
        #expect(error.tensor == "w")
        #expect(error.message.contains("12 bytes") && error.message.contains("8 bytes"))
    }

    @Test("Negative, inverted or unaddressable offsets are outOfBounds")
    func offsetsOutOfBounds() throws {
        for offsets in ["[8,0]", "[-4,4]", "[0,18446744073709551616]"] {
            let error = try openError(fileBytes(header: "{" + entry("w", shape: "[2]", offsets: offsets) + "}", data: eight))
            #expect(error.code == .outOfBounds, "offsets \(offsets)")
            #expect(error.tensor == "w")
        }
    }

    @Test("Tensor data cut short by the end of the file is truncated naming the tensor")
    func dataTruncated() throws {
        let header = "{" + entry("a", shape: "[2]", offsets: "[0,8]") + "," + entry("b", shape: "[2]", offsets: "[8,16]") + "}"
        let error = try openError(fileBytes(header: header, data: [UInt8](repeating: 0, count: 12)))
        #expect(error.code == .truncated)
        #expect(error.tensor == "b")
        #expect(error.message.contains("'b'"))
    }

    @Test("Overlapping byte ranges are overlap naming both tensors")
    func overlappingRanges() throws {
        let header = "{" + entry("a", shape: "[2]", offsets: "[0,8]") + "," + entry("b", shape: "[2]", offsets: "[4,12]") + "}"
        let error = try openError(fileBytes(header: header, data: [UInt8](repeating: 0, count: 12)))
        #expect(error.code == .overlap)
        #expect(error.tensor == "b")
        #expect(error.message.contains("'a'") && error.message.contains("'b'"))
        let same = "{" + entry("a", shape: "[2]", offsets: "[0,8]") + "," + entry("b", shape: "[2]", offsets: "[0,8]") + "}"
        #expect(try openError(fileBytes(header: same, data: eight)).code == .overlap)
    }

    @Test("Bytes covered by no tensor, between tensors, before them or at the end, are gap")
    func gaps() throws {
        let between = "{" + entry("a", shape: "[1]", offsets: "[0,4]") + "," + entry("b", shape: "[1]", offsets: "[8,12]") + "}"
        let error = try openError(fileBytes(header: between, data: [UInt8](repeating: 0, count: 12)))
        #expect(error.code == .gap)
        #expect(error.message.contains("'a'") && error.message.contains("'b'"))
        let leading = "{" + entry("b", shape: "[1]", offsets: "[4,8]") + "}"
        #expect(try openError(fileBytes(header: leading, data: eight)).code == .gap)
        let trailing = "{" + entry("a", shape: "[1]", offsets: "[0,4]") + "}"
        let trailingError = try openError(fileBytes(header: trailing, data: eight))
        #expect(trailingError.code == .gap)
        #expect(trailingError.tensor == "a")
        #expect(try openError(fileBytes(header: "{}", data: [1])).code == .gap)
    }

    @Test("Duplicate tensor names, metadata blocks or fields are duplicate")
    func duplicates() throws {
        let header = "{" + entry("a", shape: "[1]", offsets: "[0,4]") + "," + entry("a", shape: "[1]", offsets: "[4,8]") + "}"
        let error = try openError(fileBytes(header: header, data: eight))
        #expect(error.code == .duplicate)
        #expect(error.tensor == "a")
        #expect(error.message.contains("'a'"))
        #expect(try openError(fileBytes(header: "{\"__metadata__\":{},\"__metadata__\":{}}")).code == .duplicate)
        let field = "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"
        #expect(try openError(fileBytes(header: field, data: [0, 0, 0, 0])).code == .duplicate)
    }

    @Test("A valid hand-built file with padding, escapes and zero-size tensors opens")
    func validHandBuiltFile() throws {
        let header = "{\"__metadata__\":{\"k\\u00e9\":\"v\\n\"}," + entry("z", shape: "[0,3]", offsets: "[4,4]") + ","
            + entry("a\\/b", "U8", shape: "[4]", offsets: "[0,4]") + "}   "
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("ok.safetensors")
        try fileBytes(header: header, data: [1, 2, 3, 4]).write(to: url)
        let file = try SafeTensorsFile(contentsOf: url)
        #expect(file.metadata == ["ké": "v\n"])
        #expect(file.names == ["a/b", "z"])
        #expect(try file.int32s("a/b") == [1, 2, 3, 4])
        #expect(try file.floats("z") == [])
    }

    @Test("A missing file is notFound and a directory is io, both naming the path")
    func unopenableFiles() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("none.safetensors")
        let notFound = try #require(throws: SafeTensorsError.self) { try SafeTensorsFile(contentsOf: missing) }
        #expect(notFound.code == .notFound && notFound.message.contains(missing.path))
        let isDirectory = try #require(throws: SafeTensorsError.self) { try SafeTensorsFile(contentsOf: directory) }
        #expect(isDirectory.code == .io && isDirectory.message.contains(directory.path))
        let noWeights = try #require(throws: SafeTensorsError.self) { try openSafeTensors(directory: directory) }
        #expect(noWeights.code == .notFound && noWeights.message.contains("model.safetensors"))
    }

    @Test("Seeded fuzzing of a valid file's header never crashes; survivors read consistently")
    func fuzzedHeadersNeverCrash() throws {
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        try writer.add("a.weight", floats: [1, 2, 3, 4, 5, 6], shape: [2, 3])
        try writer.add("b.half", floats: [1, 2], shape: [2], as: .f16)
        try writer.add("c.ids", int64s: [1, 2, 3], shape: [3])
        try writer.add("d.mask", bytes: Data([1, 0, 1]), dtype: .bool, shape: [3])
        let original = [UInt8](try writer.serialized())
        let headerEnd = 8 + Int(original[0]) + Int(original[1]) << 8
        let alphabet = Array("{}[]\",:0123456789-.eE aFBIU_\\".utf8)

        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("fuzz.safetensors")
        var generator = SplitMix64(seed: 2026)
        var rejected = 0, accepted = 0
        for round in 0..<400 {
            var bytes = original
            switch round % 4 {
            case 0:  // overwrite a few header bytes with JSON-ish characters
                for _ in 0..<Int.random(in: 1...3, using: &generator) {
                    bytes[Int.random(in: 8..<headerEnd, using: &generator)] = alphabet.randomElement(using: &generator) ?? 0
                }
            case 1:  // overwrite a byte anywhere, length field included, with any value
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            case 2:  // truncate
                bytes.removeLast(Int.random(in: 1...bytes.count, using: &generator))
            default:  // insert or delete a header byte
                let position = Int.random(in: 8..<headerEnd, using: &generator)
                if Bool.random(using: &generator) {
                    bytes.insert(alphabet.randomElement(using: &generator) ?? 0, at: position)
                } else {
                    bytes.remove(at: position)
                }
            }
            try Data(bytes).write(to: url)
            do {
                let file = try SafeTensorsFile(contentsOf: url)
                accepted += 1
                for name in file.names {
                    let info = try file.info(name)
                    #expect(try file.floats(name).count == info.elementCount)
                    #expect(try file.bytes(name).count == info.byteCount)
                    _ = try? file.int64s(name)
                }
            } catch let error as SafeTensorsError {
                rejected += 1
                #expect(!error.message.isEmpty)
            }
        }
        #expect(rejected > 200)
        #expect(accepted + rejected == 400)
    }
}

@Suite("Header and index parsers under random input")
struct ParserFuzzTests {
    @Test("Random JSON-like headers parsed in memory never crash and accepted ones are consistent")
    func randomHeadersNeverCrash() {
        var generator = SplitMix64(seed: 77)
        let pieces = ["{", "}", "[", "]", ",", ":", "\"a\"", "\"b\"", "\"dtype\"", "\"shape\"", "\"data_offsets\"",
                      "\"F32\"", "\"U8\"", "\"__metadata__\"", "0", "4", "8", "-1", "1e3", "2.5", "99999999999999999999",
                      "true", "null", " ", "\"\\u00e9\"", "\"\\ud800\""]
        var accepted = 0, rejected = 0
        for _ in 0..<3000 {
            var header = ""
            for _ in 0..<Int.random(in: 1...30, using: &generator) {
                header += pieces.randomElement(using: &generator) ?? ""
            }
            let dataLength = Int.random(in: 0...16, using: &generator)
            do {
                let parsed = try SafeTensorsHeader.parse(
                    headerBytes: Array(header.utf8), dataLength: dataLength, dataStart: 8, file: "fuzz")
                accepted += 1
                let total = parsed.entries.values.reduce(0) { $0 + $1.info.byteCount }
                #expect(total == dataLength, "accepted header must tile the data: \(header)")
            } catch {
                rejected += 1
                #expect(!error.message.isEmpty)
            }
        }
        #expect(accepted + rejected == 3000)
        #expect(rejected > 0)
    }

    @Test("Random bytes through the JSON parser never crash")
    func randomBytesThroughJSONParser() {
        var generator = SplitMix64(seed: 99)
        var failures = 0
        for _ in 0..<3000 {
            let bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in
                Bool.random(using: &generator)
                    ? UInt8.random(in: 0...255, using: &generator)
                    : Array("{}[]\",:0123456789-.eE \\utrfalsn".utf8).randomElement(using: &generator) ?? 0
            }
            do { _ = try JSONParser.parse(bytes) } catch { failures += 1 }
        }
        #expect(failures > 2000)
        #expect((try? JSONParser.parse(Array("{\"k\":[1,-2.5e3,true,null,\"\\u00e9\\ud83d\\ude00\"]}".utf8))) != nil)
    }
}

@Suite("Sharded checkpoints reject broken indexes")
struct ShardedIndexTests {
    /// A directory with one valid shard `s1.safetensors` holding tensor `a`, and the given index text.
    func checkpoint(index: String) throws -> URL {
        let directory = try makeTemporaryDirectory()
        var writer = SafeTensorsWriter()
        try writer.add("a", floats: [1, 2], shape: [2])
        try writer.write(to: directory.appendingPathComponent("s1.safetensors"))
        try Data(index.utf8).write(to: directory.appendingPathComponent("model.safetensors.index.json"))
        return directory
    }

    func indexError(_ index: String) throws -> SafeTensorsError {
        let directory = try checkpoint(index: index)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try #require(throws: SafeTensorsError.self) {
            _ = try ShardedSafeTensors(indexAt: directory.appendingPathComponent("model.safetensors.index.json"))
        }
    }

    @Test("A valid index opens and serves its tensors through openSafeTensors(directory:)")
    func validIndex() throws {
        let directory = try checkpoint(index: "{\"metadata\":{\"total_size\":8},\"weight_map\":{\"a\":\"s1.safetensors\"}}")
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = try openSafeTensors(directory: directory)
        #expect(source.names == ["a"])
        #expect(source.metadata == ["total_size": "8"])
        #expect(try source.floats("a") == [1, 2])
    }

    @Test("A name mapped to a missing shard is notFound naming the shard and tensor")
    func missingShard() throws {
        let error = try indexError("{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}}")
        #expect(error.code == .notFound)
        #expect(error.tensor == "b")
        #expect(error.message.contains("s2.safetensors") && error.message.contains("'b'"))
    }

    @Test("A name missing in its shard is notFound naming the tensor and shard")
    func nameMissingInShard() throws {
        let error = try indexError("{\"weight_map\":{\"a\":\"s1.safetensors\",\"ghost\":\"s1.safetensors\"}}")
        #expect(error.code == .notFound)
        #expect(error.tensor == "ghost")
        #expect(error.message.contains("'ghost'") && error.message.contains("s1.safetensors"))
    }

    @Test("Unsafe shard paths, malformed JSON, a missing weight_map and duplicates are rejected")
    func malformedIndexes() throws {
        for shard in ["../s1.safetensors", "/etc/passwd", "sub/s1.safetensors", ""] {
            let error = try indexError("{\"weight_map\":{\"a\":\"\(shard)\"}}")
            #expect(error.code == .invalidIndex, "shard \(shard)")
        }
        #expect(try indexError("{\"weight_map\":").code == .invalidIndex)
        #expect(try indexError("{\"metadata\":{}}").code == .invalidIndex)
        #expect(try indexError("{\"weight_map\":{\"a\":3}}").code == .invalidIndex)
        let duplicate = try indexError("{\"weight_map\":{\"a\":\"s1.safetensors\",\"a\":\"s1.safetensors\"}}")
        #expect(duplicate.code == .duplicate && duplicate.tensor == "a")
    }

    @Test("An index larger than the configured cap is headerTooLarge before it is read")
    func oversizedIndex() throws {
        let index = "{\"weight_map\":{\"a\":\"s1.safetensors\"}}" + String(repeating: " ", count: 200)
        let directory = try checkpoint(index: index)
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.safetensors.index.json")
        let error = try #require(throws: SafeTensorsError.self) {
            _ = try ShardedSafeTensors(indexAt: url, options: SafeTensorsReadOptions(maximumHeaderBytes: 100))
        }
        #expect(error.code == .headerTooLarge && error.message.contains(url.path))
        #expect(try ShardedSafeTensors(indexAt: url).names == ["a"])
    }

    @Test("Every shard is validated: a corrupt shard fails opening with its own error")
    func corruptShardIsValidated() throws {
        let directory = try checkpoint(index: "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}}")
        defer { try? FileManager.default.removeItem(at: directory) }
        let shard = directory.appendingPathComponent("s2.safetensors")
        try Data([1, 2, 3]).write(to: shard)
        let error = try #require(throws: SafeTensorsError.self) {
            _ = try ShardedSafeTensors(indexAt: directory.appendingPathComponent("model.safetensors.index.json"))
        }
        #expect(error.code == .truncated)
        #expect(error.file == shard.path)
    }
}
