// Malformed or unsupported tokenizer.json files must give a typed error with a clear message,
// never a crash.
import Foundation
import Testing

@testable import CraftModels

/// A small valid byte-level BPE tokenizer.json with parts replaceable by the tests (the library
/// gives the ids and texts expected below for it).
func tokenizerJSON(
    model: String? = nil, normalizer: String = "null",
    preTokenizer: String = #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#,
    postProcessor: String = "null", decoder: String = #"{"type": "ByteLevel"}"#, addedTokens: String = "[]",
    extra: String = ""
) -> Data {
    let defaultModel = #"""
        {"type": "BPE", "unk_token": null, "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4}, "merges": ["a b", "Ġ ab"]}
        """#
    let text = """
        {"version": "1.0", "truncation": null, "padding": null, "added_tokens": \(addedTokens)\(extra),
         "normalizer": \(normalizer), "pre_tokenizer": \(preTokenizer), "post_processor": \(postProcessor),
         "decoder": \(decoder), "model": \(model ?? defaultModel)}
        """
    return Data(text.utf8)
}

func loadError(_ data: Data, source: String = "bad.json") -> TokenizerError? {
    do {
        _ = try Tokenizer(data: data, source: source)
        return nil
    } catch let error as TokenizerError {
        return error
    } catch {
        return nil
    }
}

@Suite("Tokenizer rejects malformed and unsupported files with clear errors")
struct TokenizerErrorTests {
    @Test("the template itself loads and encodes")
    func templateLoads() throws {
        let tokenizer = try Tokenizer(data: tokenizerJSON())
        #expect(try tokenizer.encode("ab ab") == [2, 4])
        #expect(try tokenizer.decode([2, 4]) == "ab ab")
        #expect(tokenizer.vocabularySize == 5)
    }

    @Test("invalid JSON names the file and the byte offset")
    func invalidJSON() throws {
        let cases: [Data] = [
            Data(#"{"model": "#.utf8),
            Data("not json".utf8),
            Data(#"{"a": "unterminated}"#.utf8),
            Data(#"{"a": "\ud800"}"#.utf8),
            Data([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D]),  // invalid UTF-8 in a key
            Data(String(repeating: "[", count: 100_000).utf8),
            Data(#"{"a": 1} trailing"#.utf8),
            Data(),
        ]
        for data in cases {
            let error = try #require(loadError(data), "accepted \(String(decoding: data.prefix(40), as: UTF8.self))")
            #expect(error.code == .invalidJSON)
            #expect(error.message.contains("bad.json"))
            #expect(error.message.contains("byte"))
        }
    }

    @Test("a truncated real tokenizer.json is an error")
    func truncatedFile() throws {
        let url = try TokenizerFixtures.url("gpt2", "tokenizer")
        let data = try Data(contentsOf: url)
        for cut in [1, data.count / 3, data.count / 2, data.count - 2] {
            let error = try #require(loadError(data.prefix(cut)))
            #expect(error.code == .invalidJSON)
        }
    }

    @Test("missing or mistyped fields name the JSON path")
    func invalidFields() throws {
        let missingModel = Data(#"{"version": "1.0", "normalizer": null}"#.utf8)
        let error = try #require(loadError(missingModel))
        #expect(error.code == .invalidField)
        #expect(error.message.contains("\"model\""))

        let notObject = try #require(loadError(Data("[1, 2]".utf8)))
        #expect(notObject.code == .invalidField)

        let badId = try #require(
            loadError(tokenizerJSON(model: #"{"type": "BPE", "vocab": {"a": "zero"}, "merges": []}"#)))
        #expect(badId.code == .invalidField)
        #expect(badId.message.contains("$.model.vocab.a"))

        let badMerge = try #require(
            loadError(tokenizerJSON(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b c"]}"#)))
        #expect(badMerge.code == .invalidField)
        #expect(badMerge.message.contains("$.model.merges[0]"))

        let badPair = try #require(
            loadError(tokenizerJSON(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}"#)))
        #expect(badPair.code == .invalidField)

        let badBehavior = try #require(
            loadError(tokenizerJSON(preTokenizer: #"{"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}"#)))
        #expect(badBehavior.code == .invalidField)
        #expect(badBehavior.message.contains("Sideways"))

        let badTemplate = try #require(
            loadError(
                tokenizerJSON(
                    postProcessor: #"{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}], "special_tokens": {}}"#
                )))
        #expect(badTemplate.code == .invalidField)
        #expect(badTemplate.message.contains("<s>"))

        let badAdded = try #require(loadError(tokenizerJSON(addedTokens: #"[{"id": 9, "special": true}]"#)))
        #expect(badAdded.code == .invalidField)
        #expect(badAdded.message.contains("content"))
    }

    @Test("merges that name tokens outside the vocabulary are inconsistent")
    func inconsistentMerges() throws {
        let missingPart = try #require(
            loadError(tokenizerJSON(model: #"{"type": "BPE", "vocab": {"a": 0, "ab": 2}, "merges": ["a b"]}"#)))
        #expect(missingPart.code == .inconsistentVocabulary)
        #expect(missingPart.message.contains("\"b\""))
        let missingResult = try #require(
            loadError(tokenizerJSON(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}"#)))
        #expect(missingResult.code == .inconsistentVocabulary)
        #expect(missingResult.message.contains("\"ab\""))
    }

    @Test("unsupported components are named with the file", arguments: [
        (#"{"type": "Unigram", "vocab": [["a", 0.0]]}"#, "model", "Unigram"),
        (#"{"type": "WordPiece", "vocab": {"a": 0}}"#, "model", "WordPiece"),
        (#"{"type": "Precompiled", "precompiled_charsmap": ""}"#, "normalizer", "Precompiled"),
        (#"{"type": "UnicodeScripts"}"#, "pre_tokenizer", "UnicodeScripts"),
        (#"{"type": "CTC"}"#, "decoder", "CTC"),
        (#"{"type": "Mystery"}"#, "post_processor", "Mystery"),
    ])
    func unsupportedComponents(component: String, field: String, name: String) throws {
        let data: Data
        switch field {
        case "model": data = tokenizerJSON(model: component)
        case "normalizer": data = tokenizerJSON(normalizer: component)
        case "pre_tokenizer": data = tokenizerJSON(preTokenizer: component)
        case "decoder": data = tokenizerJSON(decoder: component)
        default: data = tokenizerJSON(postProcessor: component)
        }
        let error = try #require(loadError(data, source: "odd/tokenizer.json"))
        #expect(error.code == .unsupportedComponent)
        #expect(error.message.contains("\"\(name)\""))
        #expect(error.message.contains("odd/tokenizer.json"))
        #expect(error.message.contains("$.\(field)"))
    }

    @Test("a nested unsupported component is found inside a Sequence")
    func nestedUnsupported() throws {
        let error = try #require(
            loadError(tokenizerJSON(normalizer: #"{"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Nmt"}]}"#)))
        #expect(error.code == .unsupportedComponent)
        #expect(error.message.contains("$.normalizer.normalizers[1]"))
    }

    @Test("an invalid regular expression is an error, not a crash")
    func invalidRegex() throws {
        let error = try #require(
            loadError(tokenizerJSON(preTokenizer: #"{"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false}"#)))
        #expect(error.code == .invalidPattern)
        #expect(error.message.contains("(unclosed"))
    }

    @Test("an unreadable file is an error that names it")
    func unreadableFile() throws {
        let url = URL(fileURLWithPath: "/nonexistent/craft/tokenizer.json")
        #expect {
            _ = try Tokenizer(contentsOf: url)
        } throws: { error in
            guard let error = error as? TokenizerError else { return false }
            return error.code == .unreadableFile && error.message.contains("/nonexistent/craft/tokenizer.json")
        }
    }

    @Test("WordLevel without a usable unknown token fails to encode unknown words, with a typed error")
    func wordLevelWithoutUnknown() throws {
        let tokenizer = try Tokenizer(
            data: tokenizerJSON(
                model: #"{"type": "WordLevel", "vocab": {"hello": 0, "world": 1}, "unk_token": "<unk>"}"#,
                preTokenizer: #"{"type": "WhitespaceSplit"}"#, decoder: "null"))
        #expect(try tokenizer.encode("hello world") == [0, 1])
        #expect(try tokenizer.decode([0, 1]) == "hello world")
        #expect {
            _ = try tokenizer.encode("hello there")
        } throws: { error in
            guard let error = error as? TokenizerError else { return false }
            return error.code == .unknownToken && error.message.contains("\"there\"")
        }
    }

    @Test("added tokens, special or not, are matched in raw text and skipped in decoding only when special")
    func addedTokens() throws {
        let tokenizer = try Tokenizer(
            data: tokenizerJSON(
                addedTokens: #"""
                    [{"id": 5, "content": "<x>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false},
                     {"id": 6, "content": "<xy>", "special": false, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false}]
                    """#))
        #expect(try tokenizer.encode("ab<xy>ab<x>") == [2, 6, 2, 5])
        #expect(try tokenizer.decode([2, 6, 2, 5]) == "ab<xy>ab")
        #expect(try tokenizer.decode([2, 6, 2, 5], skipSpecialTokens: false) == "ab<xy>ab<x>")
        #expect(tokenizer.isSpecialToken(5) && !tokenizer.isSpecialToken(6) && !tokenizer.isSpecialToken(2))
        #expect(tokenizer.id(for: "<xy>") == 6)
        #expect(tokenizer.token(for: 5) == "<x>")
        #expect(tokenizer.vocabularySize == 7)
        // Unknown ids are skipped, as in the library.
        #expect(try tokenizer.decode([2, 99, -3, 2]) == "abab")
    }
}
