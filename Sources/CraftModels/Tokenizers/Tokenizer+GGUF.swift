// Tokenizers described by a GGUF file's metadata (llama.cpp's `tokenizer.ggml.*` keys), built the
// way transformers builds them (transformers/integrations/gguf/gguf_tokenizer_mapping.py): the
// metadata becomes the tokenizer.json document transformers' tokenizer would serialize to, and the
// ordinary tokenizer reads it. Two departures, where transformers departs from the file and from
// llama.cpp, are listed in docs/gguf.md.
import GGUF
import SafeTensors

extension Tokenizer {
    /// Builds the tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata.
    ///
    /// Two tokenizer models are read: `llama` (SentencePiece BPE with byte fallback: pieces and
    /// scores, merges recovered from the scores when the file has none) and `gpt2` (byte-level BPE
    /// with merges, split by the pattern `tokenizer.ggml.pre` names). Control tokens become special
    /// tokens, user-defined ones added tokens; `add_bos_token`, `add_eos_token` and
    /// `add_space_prefix` are honoured. The ids equal those of transformers'
    /// `AutoTokenizer.from_pretrained(..., gguf_file=...)` on the same file (see `docs/gguf.md`).
    ///
    /// - Parameter file: an opened GGUF file.
    /// - Throws: ``TokenizerError`` naming the file and the metadata key when a key is missing,
    ///   malformed or inconsistent, or when the file uses a tokenizer model or split pattern Craft
    ///   does not build.
    public init(gguf file: GGUFFile) throws {
        try self.init(document: try GGUFTokenizerDocument(file).document(), source: file.path)
    }
}

/// The `tokenizer.ggml.*` metadata of a GGUF file, read and checked, and turned into a
/// tokenizer.json document.
struct GGUFTokenizerDocument {
    enum Kind: String { case sentencePiece = "llama", byteLevel = "gpt2" }

    /// The token types of llama.cpp (`llama_token_type`).
    enum TokenType: Int { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    let source: String
    let kind: Kind
    let tokens: [String]
    let types: [Int]?
    let scores: [Double]?
    let merges: [String]?
    let pre: String?
    let special: (bos: Int?, eos: Int?, unknown: Int?, padding: Int?)
    let addBOS: Bool
    let addEOS: Bool
    let addSpacePrefix: Bool

    /// The `tokenizer.ggml.pre` values and the split pattern each names (byte-level files only);
    /// the values transformers maps to the GPT-2 pattern are `defaultPre`.
    static let splitPatterns: [String: String] = {
        let llama3 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let qwen2 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let qwen35 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let tekken = #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let gpt4o = #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        var table: [String: String] = [:]
        for name in ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano", "dbrx", "smaug-bpe"] {
            table[name] = llama3
        }
        for name in ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez"] { table[name] = qwen2 }
        table["qwen35"] = qwen35
        table["tekken"] = tekken
        for name in ["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"] { table[name] = gpt4o }
        return table
    }()

    /// The `tokenizer.ggml.pre` values that mean GPT-2's own split (ByteLevel's built-in pattern).
    static let defaultPre: Set<String> = ["default", "gpt-2", "gpt2"]

    init(_ file: GGUFFile) throws {
        source = file.path
        let metadata = file.metadata
        func fail(_ key: String, _ what: String) -> TokenizerError {
            TokenizerError(.invalidField, "\(file.path): \(key) \(what); the file's tokenizer metadata is broken, convert the model again with llama.cpp.")
        }
        func strings(_ key: String) throws -> [String]? {
            guard let value = metadata[key] else { return nil }
            guard let elements = value.arrayValue else { throw fail(key, "must be an array of strings") }
            return try elements.map { element in
                guard let text = element.stringValue else { throw fail(key, "must be an array of strings") }
                return text
            }
        }
        func id(_ key: String, count: Int) throws -> Int? {
            guard let value = metadata[key] else { return nil }
            guard let id = value.integerValue, id >= 0, id < count else {
                throw fail(key, "is \(value.integerValue.map(String.init) ?? "not an integer"), not a token id below the vocabulary's \(count) tokens")
            }
            return id
        }
        func flag(_ key: String) throws -> Bool? {
            guard let value = metadata[key] else { return nil }
            guard let flag = value.boolValue else { throw fail(key, "must be a Boolean") }
            return flag
        }

        guard let model = metadata["tokenizer.ggml.model"] else {
            throw TokenizerError(.invalidField, "\(file.path) describes no tokenizer (no tokenizer.ggml.model key); pass the model's Hugging Face tokenizer.json with --tokenizer.")
        }
        guard let name = model.stringValue, let kind = Kind(rawValue: name) else {
            throw TokenizerError(
                .unsupportedComponent,
                "\(file.path): tokenizer.ggml.model is \(model.stringValue.map { "\"\($0)\"" } ?? "not a string"), a tokenizer Craft does not build from GGUF metadata (it builds \"llama\", SentencePiece BPE, and \"gpt2\", byte-level BPE); pass the model's Hugging Face tokenizer.json with --tokenizer.")
        }
        self.kind = kind
        guard let tokens = try strings("tokenizer.ggml.tokens") else { throw fail("tokenizer.ggml.tokens", "is missing") }
        guard !tokens.isEmpty else { throw fail("tokenizer.ggml.tokens", "is empty") }
        guard tokens.count <= TokenizerLimits.maximumVocabularySize else {
            throw TokenizerError(.limitExceeded, "\(file.path): tokenizer.ggml.tokens holds \(tokens.count) tokens, over Craft's limit of \(TokenizerLimits.maximumVocabularySize).")
        }
        self.tokens = tokens

        if let value = metadata["tokenizer.ggml.token_type"] {
            guard let elements = value.arrayValue, elements.count == tokens.count else {
                throw fail("tokenizer.ggml.token_type", "must be an array of one integer per token (\(tokens.count))")
            }
            types = try elements.map { element in
                guard let type = element.integerValue else { throw fail("tokenizer.ggml.token_type", "must be an array of integers") }
                return type
            }
        } else {
            types = nil
        }
        if let value = metadata["tokenizer.ggml.scores"] {
            guard let elements = value.arrayValue, elements.count == tokens.count else {
                throw fail("tokenizer.ggml.scores", "must be an array of one number per token (\(tokens.count))")
            }
            scores = try elements.map { element in
                guard let score = element.doubleValue, score.isFinite else { throw fail("tokenizer.ggml.scores", "must be an array of finite numbers") }
                return score
            }
        } else {
            scores = nil
        }
        merges = try strings("tokenizer.ggml.merges")
        if let value = metadata["tokenizer.ggml.pre"] {
            guard let pre = value.stringValue else { throw fail("tokenizer.ggml.pre", "must be a string") }
            self.pre = pre
        } else {
            pre = nil
        }
        special = (
            try id("tokenizer.ggml.bos_token_id", count: tokens.count), try id("tokenizer.ggml.eos_token_id", count: tokens.count),
            try id("tokenizer.ggml.unknown_token_id", count: tokens.count), try id("tokenizer.ggml.padding_token_id", count: tokens.count)
        )
        // llama.cpp adds BOS for a SentencePiece vocabulary that does not say otherwise.
        addBOS = try flag("tokenizer.ggml.add_bos_token") ?? (kind == .sentencePiece)
        addEOS = try flag("tokenizer.ggml.add_eos_token") ?? false
        addSpacePrefix = try flag("tokenizer.ggml.add_space_prefix") ?? true
    }

    /// The tokenizer.json document.
    func document() throws -> JSONNode {
        let vocabulary = kind == .byteLevel ? tokens.map(Self.byteLevelSpelling) : tokens
        // As a Python dict built in id order: a repeated token keeps its last id.
        var ids: [[UInt8]: Int] = [:]
        for (index, token) in vocabulary.enumerated() { ids[Array(token.utf8)] = index }
        var vocabularyEntries: [(key: String, value: JSONNode)] = []
        vocabularyEntries.reserveCapacity(ids.count)
        for (index, token) in vocabulary.enumerated() where ids[Array(token.utf8)] == index {
            vocabularyEntries.append((token, .number(String(index))))
        }

        let pairs: [(String, String)]
        if let merges {
            pairs = try merges.enumerated().map { index, merge in
                let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerError(.invalidField, "\(source): tokenizer.ggml.merges[\(index)] is \"\(merge)\", not two tokens separated by one space; the file's tokenizer metadata is broken.")
                }
                return (String(parts[0]), String(parts[1]))
            }
        } else if kind == .sentencePiece, let scores {
            pairs = Self.recoveredMerges(tokens: tokens, scores: scores, ids: ids)
        } else {
            let needed = kind == .byteLevel ? "tokenizer.ggml.merges" : "tokenizer.ggml.merges or tokenizer.ggml.scores"
            throw TokenizerError(.invalidField, "\(source): \(needed) is missing, so the tokenizer's merges are unknown; the file's tokenizer metadata is broken.")
        }

        let model: JSONNode = .object([
            ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null),
            ("fuse_unk", .bool(kind == .sentencePiece)), ("byte_fallback", .bool(kind == .sentencePiece)),
            ("ignore_merges", .bool(false)), ("vocab", .object(vocabularyEntries)),
            ("merges", .array(pairs.map { .array([.string($0.0), .string($0.1)]) })),
        ])
        return .object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null),
            ("added_tokens", .array(addedTokens(ids: ids))), ("normalizer", .null),
            ("pre_tokenizer", try preTokenizer()), ("post_processor", postProcessor()), ("decoder", decoder()),
            ("model", model),
        ])
    }

    /// The named special tokens, then the control tokens, as special added tokens; the
    /// user-defined tokens as plain added tokens (transformers' `add_gguf_special_tokens`).
    private func addedTokens(ids: [[UInt8]: Int]) -> [JSONNode] {
        var added: [Int: (content: String, special: Bool)] = [:]
        func add(_ token: String, special: Bool) {
            guard let id = ids[Array((kind == .byteLevel ? Self.byteLevelSpelling(token) : token).utf8)], added[id] == nil else { return }
            added[id] = (token, special)
        }
        if kind == .sentencePiece {
            // LlamaTokenizer's own unk, bos, eos and pad tokens.
            for id in [special.unknown, special.bos, special.eos, special.padding].compactMap({ $0 }) { add(tokens[id], special: true) }
        } else {
            for id in [special.bos, special.eos, special.unknown, special.padding].compactMap({ $0 }) { add(tokens[id], special: true) }
        }
        if let types {
            for (index, token) in tokens.enumerated() where types[index] == TokenType.control.rawValue {
                // In a byte-level vocabulary a control token spelled outside the byte alphabet is a
                // converter's mislabel; transformers skips it, and so does Craft.
                if kind == .byteLevel, !Self.isByteLevelSpelled(token) { continue }
                add(token, special: true)
            }
            for (index, token) in tokens.enumerated() where types[index] == TokenType.userDefined.rawValue {
                // transformers adds only those found as spelled in the vocabulary.
                guard ids[Array(token.utf8)] != nil else { continue }
                add(token, special: false)
            }
        }
        return added.keys.sorted().map { id in
            let token = added[id]!
            return .object([
                ("id", .number(String(id))), ("content", .string(token.content)), ("single_word", .bool(false)),
                ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(token.special)),
            ])
        }
    }

    private func preTokenizer() throws -> JSONNode {
        switch kind {
        case .sentencePiece:
            return .object([
                ("type", .string("Metaspace")), ("replacement", .string("\u{2581}")),
                ("prepend_scheme", .string(addSpacePrefix ? "first" : "never")), ("split", .bool(false)),
            ])
        case .byteLevel:
            let byteLevel: (Bool) -> JSONNode = { useRegex in
                .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("trim_offsets", .bool(true)), ("use_regex", .bool(useRegex))])
            }
            guard let pre, !Self.defaultPre.contains(pre) else { return byteLevel(true) }
            guard let pattern = Self.splitPatterns[pre] else {
                let known = (Array(Self.splitPatterns.keys) + Array(Self.defaultPre)).sorted().joined(separator: ", ")
                throw TokenizerError(
                    .unsupportedComponent,
                    "\(source): tokenizer.ggml.pre is \"\(pre)\", a split pattern Craft does not know (it knows \(known)); pass the model's Hugging Face tokenizer.json with --tokenizer.")
            }
            return .object([
                ("type", .string("Sequence")),
                ("pretokenizers", .array([
                    .object([("type", .string("Split")), ("pattern", .object([("Regex", .string(pattern))])), ("behavior", .string("Isolated")), ("invert", .bool(false))]),
                    byteLevel(false),
                ])),
            ])
        }
    }

    /// `[BOS] $A [EOS]` as `add_bos_token` and `add_eos_token` ask (transformers'
    /// `update_post_processor`); a flag without its token is dropped.
    private func postProcessor() -> JSONNode {
        let bos = addBOS ? special.bos.map { tokens[$0] } : nil
        let eos = addEOS ? special.eos.map { tokens[$0] } : nil
        func specialToken(_ token: String, _ type: Int) -> JSONNode {
            .object([("SpecialToken", .object([("id", .string(token)), ("type_id", .number(String(type)))]))])
        }
        func sequence(_ name: String, _ type: Int) -> JSONNode {
            .object([("Sequence", .object([("id", .string(name)), ("type_id", .number(String(type)))]))])
        }
        func template(_ type: Int, _ name: String) -> [JSONNode] {
            [bos.map { specialToken($0, type) }, sequence(name, type), eos.map { specialToken($0, type) }].compactMap { $0 }
        }
        var used: [(key: String, value: JSONNode)] = []
        for (token, id) in [(bos, special.bos), (eos, special.eos)] {
            guard let token, let id, !used.contains(where: { $0.key == token }) else { continue }
            used.append((token, .object([("id", .string(token)), ("ids", .array([.number(String(id))])), ("tokens", .array([.string(token)]))])))
        }
        return .object([
            ("type", .string("TemplateProcessing")), ("single", .array(template(0, "A"))),
            ("pair", .array(template(0, "A") + template(1, "B"))), ("special_tokens", .object(used)),
        ])
    }

    private func decoder() -> JSONNode {
        switch kind {
        case .sentencePiece:
            var steps: [JSONNode] = [
                .object([("type", .string("Replace")), ("pattern", .object([("String", .string("\u{2581}"))])), ("content", .string(" "))]),
                .object([("type", .string("ByteFallback"))]),
                .object([("type", .string("Fuse"))]),
            ]
            if addSpacePrefix {
                steps.append(.object([("type", .string("Strip")), ("content", .string(" ")), ("start", .number("1")), ("stop", .number("0"))]))
            }
            return .object([("type", .string("Sequence")), ("decoders", .array(steps))])
        case .byteLevel:
            return .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)), ("trim_offsets", .bool(true)), ("use_regex", .bool(true))])
        }
    }

    /// A byte-level vocabulary's token as the byte alphabet spells it: unchanged when every
    /// character is in the alphabet, else its UTF-8 bytes respelled (transformers'
    /// `byte_level_tokenizer`).
    static func byteLevelSpelling(_ token: String) -> String {
        isByteLevelSpelled(token) ? token : ByteLevelAlphabet.encode(token)
    }

    /// Whether every character of `token` is in the byte alphabet.
    static func isByteLevelSpelled(_ token: String) -> Bool {
        token.unicodeScalars.allSatisfy { ByteLevelAlphabet.scalarToByte[$0.value] != nil }
    }

    /// The merges a SentencePiece vocabulary implies (transformers' `generate_merges` with scores):
    /// every split of a token into two vocabulary tokens, best score first, then longer left and
    /// right pieces, ties in vocabulary order. Tokens are compared by their exact bytes and measured
    /// in Unicode scalars, as Python does.
    static func recoveredMerges(tokens: [String], scores: [Double], ids: [[UInt8]: Int]) -> [(String, String)] {
        // dict(zip(tokens, scores)): first-occurrence order, the last score.
        var order: [String] = []
        var scoreOf: [[UInt8]: Double] = [:]
        for (token, score) in zip(tokens, scores) {
            let key = Array(token.utf8)
            if scoreOf[key] == nil { order.append(token) }
            scoreOf[key] = score
        }
        struct Candidate { let left: Substring, right: Substring, score: Double, leftLength: Int, rightLength: Int, leftID: Int, rightID: Int }
        var candidates: [Candidate] = []
        for token in order {
            let score = scoreOf[Array(token.utf8)]!
            let scalars = token.unicodeScalars
            var local: [Candidate] = []
            var split = scalars.index(after: scalars.startIndex)
            var leftLength = 1
            let total = scalars.count
            while split < scalars.endIndex {
                let left = Substring(scalars[scalars.startIndex..<split])
                let right = Substring(scalars[split...])
                if let leftID = ids[Array(left.utf8)], let rightID = ids[Array(right.utf8)] {
                    local.append(Candidate(left: left, right: right, score: score, leftLength: leftLength, rightLength: total - leftLength, leftID: leftID, rightID: rightID))
                }
                split = scalars.index(after: split)
                leftLength += 1
            }
            local.sort { ($0.leftID, $0.rightID) < ($1.leftID, $1.rightID) }
            candidates += local
        }
        let ranked = candidates.indices.sorted { a, b in
            let x = candidates[a], y = candidates[b]
            if x.score != y.score { return x.score > y.score }
            if x.leftLength != y.leftLength { return x.leftLength > y.leftLength }
            if x.rightLength != y.rightLength { return x.rightLength > y.rightLength }
            return a < b
        }
        return ranked.map { (String(candidates[$0].left), String(candidates[$0].right)) }
    }
}
