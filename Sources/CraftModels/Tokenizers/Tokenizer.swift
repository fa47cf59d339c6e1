// A Hugging Face tokenizer (tokenizer.json) in Swift, ported from the `tokenizers` library
// (huggingface/tokenizers, tokenizers/src/tokenizer/mod.rs): added tokens, normalizer,
// pre-tokenizer, model, post-processor and decoder, applied in the library's order.
import CraftFiles
import Foundation
import SafeTensors

/// The limits a `tokenizer.json` must respect; anything larger is refused on load with
/// ``TokenizerError/Code/limitExceeded`` naming the file and the field (see `docs/tokenizers.md`).
public enum TokenizerLimits {
    /// The largest file read, in bytes (64 MiB), checked before reading.
    public static let maximumFileBytes = ModelFileLimits.maximumTokenizerBytes
    /// The largest padding length (`Fixed`), `pad_to_multiple_of` and truncation `max_length`: 2^20
    /// tokens, beyond any context a Craft backend runs.
    public static let maximumSequenceLength = 1 << 20
    /// The most vocabulary entries and the most merges: 2^22 each (published models have at most a
    /// few hundred thousand).
    public static let maximumVocabularySize = 1 << 22
    /// The most `added_tokens` entries: 2^20.
    public static let maximumAddedTokens = 1 << 20
}

/// A text tokenizer loaded from a Hugging Face `tokenizer.json`.
///
/// It reproduces the `tokenizers` library's ids and decoded strings for the components that
/// language backends use: byte-level BPE (GPT-2, Llama-3), sentencepiece-style BPE with byte
/// fallback (Llama-2), subword BPE and WordLevel models, with their normalizers, pre-tokenizers,
/// post-processors, decoders and added tokens. A file with any other component is refused with a
/// ``TokenizerError`` that names it (see `docs/tokenizers.md`).
///
/// ```swift
/// let tokenizer = try Tokenizer(contentsOf: directory.appendingPathComponent("tokenizer.json"))
/// let ids = try tokenizer.encode("Describe the image.")
/// let text = tokenizer.decode(ids)
/// ```
///
/// `Tokenizer` is a value type and `Sendable`; encoding from several tasks at once is safe.
public struct Tokenizer: Sendable {
    private let model: TokenizerModel
    private let normalizer: Normalizer?
    private let preTokenizer: PreTokenizer?
    private let postProcessor: PostProcessor?
    private let decoder: Decoder?
    private let addedTokens: [AddedToken]
    private let rawMatcher: AddedTokenMatcher
    private let normalizedMatcher: AddedTokenMatcher
    private let addedIdsByContent: [[UInt8]: Int]
    private let addedContentById: [Int: String]
    private let specialContents: Set<[UInt8]>
    private let truncation: (maxLength: Int, fromLeft: Bool)?
    private let padding: (length: Int?, multiple: Int?, id: Int, left: Bool)?
    /// The file's name in error messages.
    private let source: String

    /// The number of distinct tokens: the model's vocabulary plus the added tokens not in it (the
    /// library's `get_vocab_size(with_added_tokens=True)`).
    public let vocabularySize: Int

    /// Loads a tokenizer from a `tokenizer.json` file.
    ///
    /// - Parameter url: the file's location.
    /// - Throws: ``TokenizerError`` when the file cannot be read, is not valid JSON, is malformed,
    ///   or uses a component this implementation does not support.
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try BoundedFile.read(url, limit: TokenizerLimits.maximumFileBytes)
        } catch .tooLarge(let size, let limit) {
            throw TokenizerError(
                .limitExceeded,
                "The tokenizer file \(url.path) is \(size) bytes, over the \(limit)-byte limit for tokenizer.json; it is not a tokenizer Craft reads (published tokenizers are under 40 MB).")
        } catch {
            throw TokenizerError(
                .unreadableFile, "Cannot read the tokenizer file \(url.path): \(error.reason); check the path.")
        }
        try self.init(data: data, source: url.path)
    }

    /// Loads a tokenizer from the bytes of a `tokenizer.json` file.
    ///
    /// - Parameters:
    ///   - data: the JSON bytes.
    ///   - source: a name for the file used in error messages.
    public init(data: Data, source: String = "tokenizer.json") throws {
        guard data.count <= TokenizerLimits.maximumFileBytes else {
            throw TokenizerError(
                .limitExceeded,
                "\(source) is \(data.count) bytes, over the \(TokenizerLimits.maximumFileBytes)-byte limit for tokenizer.json; it is not a tokenizer Craft reads.")
        }
        try self.init(document: try JSONNode.parseTokenizerFile(data, source: source), source: source)
    }

    /// Builds a tokenizer from a parsed `tokenizer.json` document (also the form GGUF metadata is
    /// turned into, see `Tokenizer+GGUF.swift`).
    init(document: JSONNode, source: String) throws {
        self.source = source
        let root = JSONReader(value: document, path: "$", source: source)
        guard case .object = root.value else { throw root.fail("must be a JSON object") }
        model = try TokenizerModel(try root.required("model"))
        normalizer = try root.child("normalizer").map(Normalizer.init)
        preTokenizer = try root.child("pre_tokenizer").map(PreTokenizer.init)
        postProcessor = try root.child("post_processor").map(PostProcessor.init)
        decoder = try root.child("decoder").map(Decoder.init)

        if let truncationReader = root.child("truncation") {
            let maxLength = try truncationReader.required("max_length").sequenceLength()
            let direction = try truncationReader.optionalString("direction") ?? "Right"
            truncation = (maxLength, direction == "Left")
        } else {
            truncation = nil
        }
        if let paddingReader = root.child("padding") {
            // A single encoding is padded to a fixed length, or ("BatchLongest") to its own length,
            // then up to a multiple of pad_to_multiple_of.
            let strategy = try paddingReader.required("strategy")
            var length: Int?
            if let fixed = strategy.child("Fixed") {
                length = try fixed.sequenceLength()
            } else if try strategy.string() != "BatchLongest" {
                throw strategy.fail("must be \"BatchLongest\" or {\"Fixed\": length}")
            }
            let multiple = try paddingReader.child("pad_to_multiple_of")?.sequenceLength()
            padding = (
                length, multiple, try paddingReader.int("pad_id"),
                (try paddingReader.optionalString("direction") ?? "Right") == "Left"
            )
        } else {
            padding = nil
        }

        var tokens: [AddedToken] = []
        if let list = root.child("added_tokens") {
            try list.checkCount(try list.rawArray().count, limit: TokenizerLimits.maximumAddedTokens, of: "added tokens")
            for entry in try list.array() {
                let content = try entry.string("content")
                var id = try entry.int("id")
                // As in the library, a token already in the model's vocabulary keeps the model's id.
                if let modelId = model.vocabulary.id(content) { id = modelId }
                guard id >= 0 else { throw entry.fail("has a negative id") }
                let special = try entry.bool("special", default: false)
                tokens.append(
                    AddedToken(
                        id: id, content: content, singleWord: try entry.bool("single_word", default: false),
                        leftStrip: try entry.bool("lstrip", default: false),
                        rightStrip: try entry.bool("rstrip", default: false),
                        normalized: try entry.bool("normalized", default: !special), special: special))
            }
        }
        // Special tokens are matched first, then the others, each in file order.
        let ordered = tokens.filter(\.special) + tokens.filter { !$0.special }
        addedTokens = ordered
        let raw = ordered.filter { !$0.normalized }
        let normalized = ordered.filter(\.normalized)
        rawMatcher = AddedTokenMatcher(tokens: raw, patterns: raw.map(\.content))
        let normalizer = normalizer
        normalizedMatcher = AddedTokenMatcher(
            tokens: normalized,
            patterns: try Self.growthChecked(source, "normalizer") {
                try normalized.map { try normalizer?.normalize($0.content) ?? $0.content }
            })

        var idsByContent: [[UInt8]: Int] = [:]
        var contentById: [Int: String] = [:]
        var specials = Set<[UInt8]>()
        for token in ordered where !token.content.isEmpty {
            idsByContent[Array(token.content.utf8)] = token.id
            contentById[token.id] = token.content
            if token.special { specials.insert(Array(token.content.utf8)) }
        }
        addedIdsByContent = idsByContent
        addedContentById = contentById
        specialContents = specials
        let modelVocabulary = model.vocabulary
        vocabularySize = modelVocabulary.count + idsByContent.keys.filter { modelVocabulary.id(bytes: $0) == nil }.count
    }

    /// Turns text into token ids, as the library's `Tokenizer.encode(text, add_special_tokens=...).ids`.
    ///
    /// When the file enables truncation or padding, they apply as in the library for one sequence.
    ///
    /// - Parameters:
    ///   - text: the text to encode.
    ///   - addSpecialTokens: whether the post-processor adds its special tokens (for example a
    ///     beginning-of-text id); added tokens written in the text are recognised either way.
    /// - Returns: the ids.
    /// - Throws: ``TokenizerError`` with code `.unknownToken` when a piece of text is not in the
    ///   vocabulary and the model has no usable unknown token (a WordLevel model without one), or
    ///   `.patternTooSlow` when a regular expression of the file exceeds its step budget on the text.
    public func encode(_ text: String, addSpecialTokens: Bool = true) throws -> [Int] {
        try Self.growthChecked(source, "normalizer") { try encodeChecked(text, addSpecialTokens: addSpecialTokens) }
    }

    /// Runs `body`, turning a ``TextGrowthExceeded`` from a normalizer or decoder into a
    /// ``TokenizerError`` naming the file.
    private static func growthChecked<Result>(_ source: String, _ stage: String, _ body: () throws -> Result) throws -> Result {
        do {
            return try body()
        } catch let growth as TextGrowthExceeded {
            throw TokenizerError(
                .limitExceeded,
                "\(source): the \(stage) turns a text of \(growth.inputBytes) bytes into more than \(growth.limit) bytes (a Replace or Prepend content repeated for every match, or replacements that keep doubling the text); fix the \(stage) in the tokenizer file.")
        }
    }

    private func encodeChecked(_ text: String, addSpecialTokens: Bool) throws -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        for segment in rawMatcher.split(text, atStart: true) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let piece, let atStart):
                let normalizedPiece = try normalizer?.normalize(piece) ?? piece
                for inner in normalizedMatcher.split(normalizedPiece, atStart: atStart) {
                    switch inner {
                    case .token(let id):
                        ids.append(id)
                    case .text(let text, let atStart):
                        let words =
                            try preTokenizer?.preTokenize([PreToken(text: text, atStart: atStart)])
                            ?? [PreToken(text: text, atStart: atStart)]
                        for word in words { try model.tokenize(word.text, into: &ids) }
                    }
                }
            }
        }
        if let truncation {
            let reserved = addSpecialTokens ? (postProcessor?.process([]).count ?? 0) : 0
            let limit = max(0, truncation.maxLength - reserved)
            if ids.count > limit { ids = truncation.fromLeft ? Array(ids.suffix(limit)) : Array(ids.prefix(limit)) }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.process(ids) }
        if let padding {
            // Both lengths are at most TokenizerLimits.maximumSequenceLength (checked on load), and
            // ids.count is bounded by the text, so this cannot overflow.
            var target = max(padding.length ?? ids.count, 0)
            if let multiple = padding.multiple, multiple > 0, target % multiple > 0 { target += multiple - target % multiple }
            if ids.count < target {
                let pad = [Int](repeating: padding.id, count: target - ids.count)
                ids = padding.left ? pad + ids : ids + pad
            }
        }
        return ids
    }

    /// Turns token ids back into text, as the library's `Tokenizer.decode(ids, skip_special_tokens=...)`.
    ///
    /// Ids that name no token are skipped, as the library does.
    ///
    /// - Parameters:
    ///   - ids: the ids to decode.
    ///   - skipSpecialTokens: whether added tokens marked `special` are left out.
    /// - Throws: ``TokenizerError`` with code `.patternTooSlow` when the decoder's `Replace` regular
    ///   expression exceeds its step budget (the only way decoding fails).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) throws -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let token = token(for: id) else { continue }
            if skipSpecialTokens, specialContents.contains(Array(token.utf8)) { continue }
            tokens.append(token)
        }
        if let decoder { return try Self.growthChecked(source, "decoder") { try decoder.decode(tokens) } }
        return tokens.joined(separator: " ")
    }

    /// The id of a token (an added token or one of the model's vocabulary), or nil.
    public func id(for token: String) -> Int? {
        addedIdsByContent[Array(token.utf8)] ?? model.vocabulary.id(token)
    }

    /// The token with this id (an added token or one of the model's vocabulary), or nil.
    public func token(for id: Int) -> String? {
        addedContentById[id] ?? model.vocabulary.token(id)
    }

    /// Whether this id is an added token marked `special` (skipped by `decode` by default).
    public func isSpecialToken(_ id: Int) -> Bool {
        guard let content = addedContentById[id] else { return false }
        return specialContents.contains(Array(content.utf8))
    }
}
