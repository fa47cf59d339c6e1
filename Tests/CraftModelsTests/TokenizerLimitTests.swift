// Hostile tokenizer.json files: sizes that would drive huge allocations, oversized files, and regular
// expressions that backtrack catastrophically must give typed errors quickly, never a crash or a stall.
import Foundation
import Testing

@testable import CraftModels

@Suite("Tokenizer limits on sizes, files and regular expressions")
struct TokenizerLimitTests {
    func expectLimit(_ extra: String, path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let error = try #require(loadError(tokenizerJSON(extra: extra), source: "bundle/tokenizer.json"), sourceLocation: sourceLocation)
        #expect(error.code == .limitExceeded, "\(error.message)", sourceLocation: sourceLocation)
        #expect(error.message.contains("bundle/tokenizer.json"), "\(error.message)", sourceLocation: sourceLocation)
        #expect(error.message.contains(path), "\(error.message)", sourceLocation: sourceLocation)
    }

    @Test("a fixed padding of 4 000 000 000 tokens is refused on load, naming the field")
    func hugeFixedPadding() throws {
        try expectLimit(#", "padding": {"strategy": {"Fixed": 4000000000}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "a"}"#,
                        path: "$.padding.strategy.Fixed")
    }

    @Test("a huge pad_to_multiple_of and truncation max_length are refused on load")
    func hugeMultipleAndTruncation() throws {
        try expectLimit(#", "padding": {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": 9007199254740991, "pad_id": 0, "pad_type_id": 0, "pad_token": "a"}"#,
                        path: "$.padding.pad_to_multiple_of")
        try expectLimit(#", "truncation": {"direction": "Right", "max_length": 100000000000, "strategy": "LongestFirst", "stride": 0}"#,
                        path: "$.truncation.max_length")
        let negative = try #require(loadError(tokenizerJSON(extra: #", "truncation": {"max_length": -1}"#)))
        #expect(negative.code == .invalidField)
    }

    @Test("padding within the limit still pads")
    func paddingWithinLimit() throws {
        let data = tokenizerJSON(extra: #", "padding": {"strategy": {"Fixed": 6}, "direction": "Left", "pad_to_multiple_of": null, "pad_id": 1, "pad_type_id": 0, "pad_token": "b"}"#)
        let tokenizer = try Tokenizer(data: data)
        #expect(try tokenizer.encode("ab ab") == [1, 1, 1, 1, 2, 4])
        #expect(TokenizerLimits.maximumSequenceLength == 1 << 20)
    }

    @Test("counts over a limit are refused naming the list (vocabulary, merges, added tokens use this check)")
    func countLimit() throws {
        let reader = JSONReader(value: .array([]), path: "$.model.merges", source: "t/tokenizer.json")
        try reader.checkCount(TokenizerLimits.maximumVocabularySize, limit: TokenizerLimits.maximumVocabularySize, of: "merges")
        let error = try #require(throws: TokenizerError.self) {
            try reader.checkCount(TokenizerLimits.maximumVocabularySize + 1, limit: TokenizerLimits.maximumVocabularySize, of: "merges")
        }
        #expect(error.code == .limitExceeded)
        #expect(error.message.contains("t/tokenizer.json") && error.message.contains("$.model.merges"))
    }

    @Test("a tokenizer.json over 64 MiB is refused before it is read")
    func oversizedFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("tokenizer.json")
        #expect(FileManager.default.createFile(atPath: url.path, contents: Data("{".utf8)))
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: UInt64(TokenizerLimits.maximumFileBytes) + 1)  // sparse: no disk used
        try handle.close()
        let started = Date()
        let error = try #require(throws: TokenizerError.self) { try Tokenizer(contentsOf: url) }
        #expect(error.code == .limitExceeded)
        #expect(error.message.contains(url.path) && error.message.contains("\(TokenizerLimits.maximumFileBytes)"))
        #expect(Date().timeIntervalSince(started) < 10)
        let directoryError = try #require(throws: TokenizerError.self) { try Tokenizer(contentsOf: directory) }
        #expect(directoryError.code == .unreadableFile)
    }

    /// Encodes `text` and expects a `patternTooSlow` error naming the file, pattern and path, fast.
    func expectTooSlow(_ tokenizer: Tokenizer, _ text: String, pattern: String, path: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        let started = Date()
        do {
            _ = try tokenizer.encode(text)
            Issue.record("expected patternTooSlow", sourceLocation: sourceLocation)
        } catch let error as TokenizerError {
            #expect(error.code == .patternTooSlow, "\(error.message)", sourceLocation: sourceLocation)
            #expect(error.message.contains("evil/tokenizer.json"), "\(error.message)", sourceLocation: sourceLocation)
            #expect(error.message.contains(pattern), "\(error.message)", sourceLocation: sourceLocation)
            #expect(error.message.contains(path), "\(error.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
        // Unbounded, 42 characters took 31 s, 80 took 86 s, and 400 (or (a|aa)+$ on 61) would take
        // years; the budget stops each in about 0.1 s on an idle machine (60 s leaves room for a
        // heavily loaded one).
        #expect(Date().timeIntervalSince(started) < 60, sourceLocation: sourceLocation)
    }

    @Test("a Replace normalizer ([\\s\\S]*)*x is stopped on ordinary prompts")
    func nestedStarNormalizer() throws {
        let normalizer = #"{"type": "Replace", "pattern": {"Regex": "([\\s\\S]*)*x"}, "content": "y"}"#
        let tokenizer = try Tokenizer(data: tokenizerJSON(normalizer: normalizer), source: "evil/tokenizer.json")
        for length in [42, 80, 400] {
            let prompt = String(String(repeating: "Describe the image in detail. ", count: 20).prefix(length))
            expectTooSlow(tokenizer, prompt, pattern: #"([\s\S]*)*x"#, path: "$.normalizer.pattern.Regex")
        }
        // Short texts stay within budget and are processed as before.
        #expect(try tokenizer.encode("ab") == [2])
    }

    @Test("a Split pre-tokenizer (a|aa)+$ is stopped")
    func alternationSplit() throws {
        let preTokenizer = #"{"type": "Split", "pattern": {"Regex": "(a|aa)+$"}, "behavior": "Isolated", "invert": false}"#
        let tokenizer = try Tokenizer(data: tokenizerJSON(preTokenizer: preTokenizer), source: "evil/tokenizer.json")
        expectTooSlow(tokenizer, String(repeating: "a", count: 60) + "b", pattern: "(a|aa)+$", path: "$.pre_tokenizer.pattern.Regex")
        #expect(try tokenizer.encode("ab") == [2])
    }

    @Test("a decoder Replace regex is bounded too: decode throws instead of stalling")
    func decoderReplace() throws {
        let decoder = #"{"type": "Replace", "pattern": {"Regex": "(a|aa)+$"}, "content": "-"}"#
        let vocabulary = #"{"type": "BPE", "unk_token": null, "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab": 5}, "merges": ["a b", "Ġ ab"]}"#
        let tokenizer = try Tokenizer(data: tokenizerJSON(model: vocabulary, decoder: decoder), source: "evil/tokenizer.json")
        #expect(try tokenizer.decode([0, 1]) == "-b")
        let started = Date()
        let error = try #require(throws: TokenizerError.self) { try tokenizer.decode([5]) }
        #expect(error.code == .patternTooSlow && error.message.contains("$.decoder.pattern.Regex"), "\(error.message)")
        #expect(Date().timeIntervalSince(started) < 60)
    }

    @Test("the budget grows with the text: a linear pattern on a long text is not stopped")
    func linearPatternOnLongText() throws {
        let regex = try CompiledRegex(oniguruma: #"\p{L}+|\p{N}+|\s+|[^\s\p{L}\p{N}]+"#, source: "t", path: "p", allowHandWritten: false)
        let line = "Hello, wörld 123 — ça va? 日本語 🙂\n"
        let perLine = try regex.matches(in: line).count
        #expect(perLine == 18)
        let matches = try regex.matches(in: String(repeating: line, count: 20_000))
        #expect(matches.count == 20_000 * perLine)
    }

    @Test("a Replace normalizer with a huge content, or replacements that keep doubling, is stopped")
    func normalizerGrowth() throws {
        let big = String(repeating: "z", count: 200_000)
        let replace = #"{"type": "Replace", "pattern": {"String": "a"}, "content": "\#(big)"}"#
        let tokenizer = try Tokenizer(data: tokenizerJSON(normalizer: replace), source: "grow/tokenizer.json")
        // 1 000 matches × 200 000 bytes would be 200 MB; the limit is 64 × 1 000 + 1 MiB.
        let error = try #require(throws: TokenizerError.self) { try tokenizer.encode(String(repeating: "a", count: 1_000)) }
        #expect(error.code == .limitExceeded && error.message.contains("grow/tokenizer.json") && error.message.contains("normalizer"), "\(error.message)")
        // Replacing "b" (not in this text) leaves it alone: one match-free piece is fine.
        #expect(try tokenizer.encode("b") == [1])

        // Each step multiplies the text by 1 000: unbounded, 8 steps would make 10^24 bytes.
        let thousand = String(repeating: "b", count: 1_000)
        let doubling = Array(repeating: #"{"type": "Replace", "pattern": {"String": "b"}, "content": "\#(thousand)"}"#, count: 8)
        let chain = #"{"type": "Sequence", "normalizers": ["# + doubling.joined(separator: ",") + "]}"
        let doubler = try Tokenizer(data: tokenizerJSON(normalizer: chain), source: "grow/tokenizer.json")
        let chained = try #require(throws: TokenizerError.self) { try doubler.encode("b") }
        #expect(chained.code == .limitExceeded)
    }

    @Test("a Replace decoder with a huge content is stopped instead of multiplying every token")
    func decoderGrowth() throws {
        let big = String(repeating: "z", count: 100_000)
        let decoder = #"{"type": "Replace", "pattern": {"String": "a"}, "content": "\#(big)"}"#
        let tokenizer = try Tokenizer(data: tokenizerJSON(decoder: decoder), source: "grow/tokenizer.json")
        let error = try #require(throws: TokenizerError.self) { try tokenizer.decode(Array(repeating: 0, count: 100)) }
        #expect(error.code == .limitExceeded && error.message.contains("decoder"), "\(error.message)")
        #expect(try tokenizer.decode([1]) == "b")
    }

    @Test("a template that repeats the text or adds too many ids is refused on load")
    func templateGrowth() throws {
        func template(_ single: [String], specials: String = "{}") -> String {
            #"{"type": "TemplateProcessing", "single": ["# + single.joined(separator: ",") + #"], "pair": [], "special_tokens": "# + specials + "}"
        }
        let sequence = #"{"Sequence": {"id": "A", "type_id": 0}}"#
        let repeated = try #require(loadError(tokenizerJSON(postProcessor: template(Array(repeating: sequence, count: 5))), source: "t/tokenizer.json"))
        #expect(repeated.code == .limitExceeded && repeated.message.contains("$.post_processor"), "\(repeated.message)")

        let ids = "[" + (0..<1_000).map(String.init).joined(separator: ",") + "]"
        let special = #"{"SpecialToken": {"id": "X", "type_id": 0}}"#
        let specials = #"{"X": {"id": "X", "ids": "# + ids + #", "tokens": []}}"#
        let heavy = try #require(loadError(tokenizerJSON(postProcessor: template([sequence] + Array(repeating: special, count: 1_100), specials: specials))))
        #expect(heavy.code == .limitExceeded)

        let chained = #"{"type": "Sequence", "processors": ["# + Array(repeating: template([sequence, sequence]), count: 3).joined(separator: ",") + "]}"
        let chainError = try #require(loadError(tokenizerJSON(postProcessor: chained)))
        #expect(chainError.code == .limitExceeded, "\(chainError.message)")

        // A usual template still loads and applies.
        let bos = #"{"SpecialToken": {"id": "<s>", "type_id": 0}}"#
        let ok = try Tokenizer(data: tokenizerJSON(postProcessor: template([bos, sequence], specials: #"{"<s>": {"id": "<s>", "ids": [3], "tokens": ["<s>"]}}"#)))
        #expect(try ok.encode("ab") == [3, 2])
    }
}
