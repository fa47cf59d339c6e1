// Tokenizers built from GGUF metadata against transformers building them from the same files, on
// fixtures made by scripts/gguf_tokenizer_fixtures.py (see the "generator" field of each cases file).
import Foundation
import Testing

@testable import CraftModels
@testable import GGUF

@Suite("Tokenizers from GGUF metadata equal transformers' on the same files")
struct GGUFTokenizerTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/tokenizers")
    static let names = ["spm_llama", "spm_no_prefix_eos", "bpe_llama3", "bpe_qwen2", "bpe_gpt2"]

    struct Cases: Decodable {
        struct Case: Decodable {
            let text: String
            let ids: [Int]
            let ids_without_special: [Int]
            let decoded: String
            let decoded_with_special: String
        }
        struct DecodeCase: Decodable {
            let ids: [Int]
            let skip_special_tokens: Bool
            let text: String
        }
        let generator: String
        let vocab_size: Int
        let cases: [Case]
        let decode_cases: [DecodeCase]
    }

    static func load(_ name: String) throws -> (Tokenizer, Cases) {
        let file = try GGUFFile(contentsOf: directory.appendingPathComponent("\(name).gguf"))
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: directory.appendingPathComponent("\(name).cases.json")))
        return (try Tokenizer(gguf: file), cases)
    }

    static func visible(_ text: String) -> String {
        text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined()
    }

    @Test("encode and decode give transformers' ids and text", arguments: names)
    func matchesTransformers(name: String) throws {
        let (tokenizer, fixture) = try Self.load(name)
        #expect(fixture.cases.count > 80)
        #expect(tokenizer.vocabularySize == fixture.vocab_size)
        for item in fixture.cases {
            let text = Self.visible(item.text)
            #expect(try tokenizer.encode(item.text) == item.ids, "\(name): encode(\"\(text)\")")
            #expect(try tokenizer.encode(item.text, addSpecialTokens: false) == item.ids_without_special, "\(name): encode(\"\(text)\", addSpecialTokens: false)")
            let decoded = try tokenizer.decode(item.ids)
            #expect(Array(decoded.utf8) == Array(item.decoded.utf8), "\(name): decode of \"\(text)\" gave \"\(Self.visible(decoded))\"")
            let withSpecial = try tokenizer.decode(item.ids, skipSpecialTokens: false)
            #expect(Array(withSpecial.utf8) == Array(item.decoded_with_special.utf8), "\(name): decode(skipSpecialTokens: false) of \"\(text)\"")
        }
        for item in fixture.decode_cases {
            let text = try tokenizer.decode(item.ids, skipSpecialTokens: item.skip_special_tokens)
            #expect(Array(text.utf8) == Array(item.text.utf8), "\(name): decode(\(item.ids), skip: \(item.skip_special_tokens)) gave \"\(Self.visible(text))\"")
        }
    }

    /// Merges recovered from scores follow transformers' `generate_merges`: best score first, then
    /// the longer left piece, the longer right piece, vocabulary order; pieces split on Unicode
    /// scalars, compared by bytes (a decomposed "é" is not the composed one).
    @Test("merges recovered from SentencePiece scores are ordered as transformers orders them")
    func recoveredMerges() {
        let tokens = ["a", "b", "ab", "abb", "bb", "e\u{301}", "e", "\u{301}", "\u{e9}", "x\u{e9}", "x"]
        let scores: [Double] = [0, 0, -1, -2, -1, -3, 0, 0, 0, -1, 0]
        var ids: [[UInt8]: Int] = [:]
        for (index, token) in tokens.enumerated() { ids[Array(token.utf8)] = index }
        let merges = GGUFTokenizerDocument.recoveredMerges(tokens: tokens, scores: scores, ids: ids).map { "\($0.0) \($0.1)" }
        // score -1: "ab" (1+1), "bb" (1+1), "xé" (1+1) in vocabulary order; -2: "abb" splits
        // "ab|b" (2+1) before "a|bb" (1+2); -3: the decomposed "é" from "e" and the accent.
        #expect(merges == ["a b", "b b", "x \u{e9}", "ab b", "a bb", "e \u{301}"])
    }

    @Test("a tokenizer model or split pattern Craft does not build is refused by name")
    func refusals() throws {
        let source = try GGUFFile(contentsOf: Self.directory.appendingPathComponent("bpe_qwen2.gguf"))
        func rewritten(_ change: (inout [String: GGUFValue]) -> Void) throws -> Tokenizer {
            var metadata = source.metadata
            change(&metadata)
            var builder = GGUFBuilder()
            builder.entries = source.metadataKeys.compactMap { key in metadata[key].map { (key, $0.typeID, GGUFBuilder.encoded($0)) } }
            let url = try GGUFFileTests.write(builder.bytes())
            defer { try? FileManager.default.removeItem(at: url) }
            return try Tokenizer(gguf: try GGUFFile(contentsOf: url))
        }
        let unknownPre = #expect(throws: TokenizerError.self) { try rewritten { $0["tokenizer.ggml.pre"] = .string("deepseek-llm") } }
        #expect(unknownPre?.code == .unsupportedComponent)
        #expect(unknownPre?.message.contains("\"deepseek-llm\"") == true)
        let t5 = #expect(throws: TokenizerError.self) { try rewritten { $0["tokenizer.ggml.model"] = .string("t5") } }
        #expect(t5?.code == .unsupportedComponent)
        #expect(t5?.message.contains("--tokenizer") == true)
        let noMerges = #expect(throws: TokenizerError.self) { try rewritten { $0["tokenizer.ggml.merges"] = nil } }
        #expect(noMerges?.message.contains("tokenizer.ggml.merges") == true)
        let badID = #expect(throws: TokenizerError.self) { try rewritten { $0["tokenizer.ggml.eos_token_id"] = .uint32(5000) } }
        #expect(badID?.message.contains("tokenizer.ggml.eos_token_id is 5000") == true)
        let shortTypes = #expect(throws: TokenizerError.self) {
            try rewritten { $0["tokenizer.ggml.token_type"] = .array(elementType: 5, [.int32(1)]) }
        }
        #expect(shortTypes?.message.contains("tokenizer.ggml.token_type") == true)
        let badMerge = #expect(throws: TokenizerError.self) {
            try rewritten { $0["tokenizer.ggml.merges"] = .array(elementType: 8, [.string("a b c")]) }
        }
        #expect(badMerge?.message.contains("tokenizer.ggml.merges[0]") == true)
    }
}

extension GGUFValue {
    /// The GGUF value type id.
    var typeID: UInt32 {
        switch self {
        case .uint8: 0
        case .int8: 1
        case .uint16: 2
        case .int16: 3
        case .uint32: 4
        case .int32: 5
        case .float32: 6
        case .bool: 7
        case .string: 8
        case .array: 9
        case .uint64: 10
        case .int64: 11
        case .float64: 12
        }
    }
}

extension GGUFBuilder {
    /// A metadata value's bytes, after its type id.
    static func encoded(_ value: GGUFValue) -> [UInt8] {
        switch value {
        case .uint8(let v): [v]
        case .int8(let v): le(v)
        case .uint16(let v): le(v)
        case .int16(let v): le(v)
        case .uint32(let v): le(v)
        case .int32(let v): le(v)
        case .uint64(let v): le(v)
        case .int64(let v): le(v)
        case .float32(let v): le(v.bitPattern)
        case .float64(let v): le(v.bitPattern)
        case .bool(let v): [v ? 1 : 0]
        case .string(let v): string(v)
        case .array(let type, let elements): le(type) + le(UInt64(elements.count)) + elements.flatMap(encoded)
        }
    }
}
