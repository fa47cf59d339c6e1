// Checks the Swift tokenizer against the Hugging Face `tokenizers` library on fixtures made by
// scripts/tokenizer_fixtures.py (see the "generator" field of each *.cases.json).
import Foundation
import Testing

@testable import CraftModels

/// The library's outputs for one tokenizer.
struct TokenizerCases: Decodable {
    struct Case: Decodable {
        let text: String
        let ids: [Int]
        let idsWithoutSpecial: [Int]
        let decoded: String
        let decodedWithSpecial: String

        enum CodingKeys: String, CodingKey {
            case text, ids, decoded
            case idsWithoutSpecial = "ids_without_special"
            case decodedWithSpecial = "decoded_with_special"
        }
    }

    struct DecodeCase: Decodable {
        let ids: [Int]
        let skipSpecialTokens: Bool
        let text: String

        enum CodingKeys: String, CodingKey {
            case ids, text
            case skipSpecialTokens = "skip_special_tokens"
        }
    }

    struct TokenEntry: Decodable {
        let id: Int
        let token: String
    }

    let generator: String
    let vocabSize: Int
    let cases: [Case]
    let decodeCases: [DecodeCase]
    let tokens: [TokenEntry]

    enum CodingKeys: String, CodingKey {
        case generator, cases, tokens
        case vocabSize = "vocab_size"
        case decodeCases = "decode_cases"
    }
}

enum TokenizerFixtures {
    static let names = [
        "gpt2", "gpt2_prefix_space", "llama3", "llama2_byte_fallback", "llama2_metaspace_first", "metaspace_unk", "bpe_subword_affixes",
        "wordlevel", "wordlevel_splits", "gpt2_truncate_pad", "llama3_truncate_left",
    ]

    static func url(_ name: String, _ kind: String) throws -> URL {
        try #require(
            Bundle.module.url(forResource: "\(name).\(kind)", withExtension: "json", subdirectory: "Fixtures/tokenizers"),
            "missing fixture \(name).\(kind).json")
    }

    static func load(_ name: String) throws -> (Tokenizer, TokenizerCases) {
        let tokenizer = try Tokenizer(contentsOf: try url(name, "tokenizer"))
        let cases = try JSONDecoder().decode(TokenizerCases.self, from: Data(contentsOf: try url(name, "cases")))
        return (tokenizer, cases)
    }
}

/// Byte-exact string comparison (Swift's `==` treats canonically equivalent strings as equal).
func sameBytes(_ a: String, _ b: String) -> Bool { Array(a.utf8) == Array(b.utf8) }

func visible(_ text: String) -> String {
    text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined()
}

@Suite("Tokenizer matches the Hugging Face tokenizers library")
struct TokenizerFixtureTests {
    @Test("encode gives the library's ids, with and without special tokens", arguments: TokenizerFixtures.names)
    func encodeMatchesLibrary(name: String) throws {
        let (tokenizer, fixture) = try TokenizerFixtures.load(name)
        #expect(fixture.cases.count > 50)
        for item in fixture.cases {
            let ids = try tokenizer.encode(item.text)
            #expect(ids == item.ids, "\(name): encode(\"\(visible(item.text))\")")
            let plain = try tokenizer.encode(item.text, addSpecialTokens: false)
            #expect(plain == item.idsWithoutSpecial, "\(name): encode(\"\(visible(item.text))\", addSpecialTokens: false)")
        }
    }

    @Test("decode gives the library's text, skipping special tokens or not", arguments: TokenizerFixtures.names)
    func decodeMatchesLibrary(name: String) throws {
        let (tokenizer, fixture) = try TokenizerFixtures.load(name)
        for item in fixture.cases {
            let decoded = try tokenizer.decode(item.ids)
            #expect(sameBytes(decoded, item.decoded), "\(name): decode of \"\(visible(item.text))\" gave \"\(visible(decoded))\", expected \"\(visible(item.decoded))\"")
            let withSpecial = try tokenizer.decode(item.ids, skipSpecialTokens: false)
            #expect(sameBytes(withSpecial, item.decodedWithSpecial), "\(name): decode(skipSpecialTokens: false) of \"\(visible(item.text))\" gave \"\(visible(withSpecial))\", expected \"\(visible(item.decodedWithSpecial))\"")
        }
        #expect(fixture.decodeCases.count > 20)
        for item in fixture.decodeCases {
            let text = try tokenizer.decode(item.ids, skipSpecialTokens: item.skipSpecialTokens)
            #expect(sameBytes(text, item.text), "\(name): decode(\(item.ids), skip: \(item.skipSpecialTokens)) gave \"\(visible(text))\", expected \"\(visible(item.text))\"")
        }
    }

    @Test("vocabulary size and the id/token maps agree with the library", arguments: TokenizerFixtures.names)
    func vocabularyMatchesLibrary(name: String) throws {
        let (tokenizer, fixture) = try TokenizerFixtures.load(name)
        #expect(tokenizer.vocabularySize == fixture.vocabSize)
        for entry in fixture.tokens {
            let token = try #require(tokenizer.token(for: entry.id), "\(name): no token for id \(entry.id)")
            #expect(sameBytes(token, entry.token))
            #expect(tokenizer.id(for: entry.token) == entry.id)
        }
        #expect(tokenizer.token(for: -1) == nil)
        #expect(tokenizer.token(for: 1_000_000) == nil)
        #expect(tokenizer.id(for: "definitely not a token \u{1F600}") == nil)
    }
}

@Suite("Tokenizer is safe to share across tasks")
struct TokenizerConcurrencyTests {
    @Test("concurrent encodes through the shared BPE cache give the library's ids")
    func concurrentEncodes() async throws {
        let (tokenizer, fixture) = try TokenizerFixtures.load("gpt2")
        let cases = fixture.cases
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var bad = 0
                    for round in 0..<3 {
                        for (index, item) in cases.enumerated() where (index + worker + round) % 2 == 0 {
                            if try tokenizer.encode(item.text) != item.ids { bad += 1 }
                        }
                    }
                    return bad
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }
}
