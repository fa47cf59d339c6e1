// Pre-tokenizers, ported from Hugging Face tokenizers (tokenizers/src/pre_tokenizers/*.rs).
import Foundation

/// A piece of text between pre-tokenization steps.
struct PreToken: Sendable {
    var text: String
    /// Whether the piece starts at offset 0 of the original input (Metaspace's `prepend_scheme: first`).
    var atStart: Bool
}

/// When Metaspace adds its replacement character in front of a piece.
enum PrependScheme: String, Sendable {
    case always, first, never

    /// The `replacement` character and the prepend scheme of a `Metaspace` pre-tokenizer or decoder.
    static func metaspace(_ reader: JSONReader) throws -> (replacement: Unicode.Scalar, scheme: PrependScheme) {
        let replacement = Array(try reader.string("replacement").unicodeScalars)
        guard replacement.count == 1 else {
            throw try reader.required("replacement").fail("must be exactly one character")
        }
        guard let schemeReader = reader.child("prepend_scheme") else {
            // Files older than tokenizers 0.14 have add_prefix_space instead.
            return (replacement[0], try reader.bool("add_prefix_space", default: true) ? .always : .never)
        }
        let name = try schemeReader.string()
        guard let scheme = PrependScheme(rawValue: name) else {
            throw schemeReader.fail("must be \"always\", \"first\" or \"never\" but is \"\(name)\"")
        }
        return (replacement[0], scheme)
    }
}

/// The GPT-2 split pattern used by the ByteLevel pre-tokenizer when `use_regex` is true.
let gpt2SplitPattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

/// A pre-tokenizer from the `pre_tokenizer` field of tokenizer.json.
indirect enum PreTokenizer: Sendable {
    case byteLevel(addPrefixSpace: Bool, regex: CompiledRegex?)
    case whitespace
    case whitespaceSplit
    case split(TextPattern, SplitBehavior, invert: Bool)
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)
    case punctuation(SplitBehavior)
    case digits(individual: Bool)
    case bert
    case sequence([PreTokenizer])

    static let supported = [
        "ByteLevel", "Whitespace", "WhitespaceSplit", "Split", "Metaspace", "Punctuation", "Digits",
        "BertPreTokenizer", "Sequence",
    ]

    init(_ reader: JSONReader) throws {
        let type = try reader.type()
        switch type {
        case "ByteLevel":
            let useRegex = try reader.bool("use_regex", default: true)
            self = .byteLevel(
                addPrefixSpace: try reader.bool("add_prefix_space", default: true),
                regex: useRegex
                    ? try CompiledRegex(oniguruma: gpt2SplitPattern, source: reader.source, path: reader.path) : nil)
        case "Whitespace": self = .whitespace
        case "WhitespaceSplit": self = .whitespaceSplit
        case "Split":
            self = .split(
                try TextPattern(try reader.required("pattern")), try Self.behavior(try reader.required("behavior")),
                invert: try reader.bool("invert", default: false))
        case "Metaspace":
            let (replacement, scheme) = try PrependScheme.metaspace(reader)
            self = .metaspace(
                replacement: replacement, prependScheme: scheme, split: try reader.bool("split", default: true))
        case "Punctuation":
            self = .punctuation(try reader.child("behavior").map(Self.behavior) ?? .isolated)
        case "Digits":
            self = .digits(individual: try reader.bool("individual_digits", default: false))
        case "BertPreTokenizer": self = .bert
        case "Sequence":
            self = .sequence(try reader.required("pretokenizers").array().map(PreTokenizer.init))
        default:
            throw reader.unsupported("pre-tokenizer", type, supported: Self.supported)
        }
    }

    static func behavior(_ reader: JSONReader) throws -> SplitBehavior {
        let name = try reader.string()
        guard let behavior = SplitBehavior(rawValue: name) else {
            let names = SplitBehavior.allCases.map(\.rawValue).joined(separator: ", ")
            throw reader.fail("must be one of \(names) but is \"\(name)\"")
        }
        return behavior
    }

    /// Splits every piece into smaller pieces (the library's `PreTokenizedString::split`).
    private static func splitEach(_ pieces: [PreToken], _ body: (String) throws -> [(range: Range<String.Index>, isMatch: Bool)], behavior: SplitBehavior, invert: Bool = false) rethrows -> [PreToken] {
        var output: [PreToken] = []
        output.reserveCapacity(pieces.count)
        for piece in pieces {
            let parts = splitPieces(piece.text, try body(piece.text), behavior: behavior, invert: invert)
            output.append(contentsOf: parts.map { PreToken(text: $0.text, atStart: piece.atStart && $0.isFirst) })
        }
        return output
    }

    func preTokenize(_ pieces: [PreToken]) throws -> [PreToken] {
        switch self {
        case .byteLevel(let addPrefixSpace, let regex):
            var split = pieces.map { piece -> PreToken in
                var piece = piece
                if addPrefixSpace, piece.text.unicodeScalars.first != " " { piece.text = " " + piece.text }
                return piece
            }
            if let regex {
                split = try Self.splitEach(split, { TextPattern.cover($0, matches: try regex.matches(in: $0)) }, behavior: .isolated)
            }
            return split.map { PreToken(text: ByteLevelAlphabet.encode($0.text), atStart: $0.atStart) }
        case .whitespace:
            return pieces.flatMap { piece in
                Self.wordRuns(piece.text).map { PreToken(text: $0.text, atStart: piece.atStart && $0.isFirst) }
            }
        case .whitespaceSplit:
            return Self.splitEach(pieces, { TextPattern.scalarMatches(in: $0, where: { $0.isWhitespaceProperty }) }, behavior: .removed)
        case .split(let pattern, let behavior, let invert):
            return try Self.splitEach(pieces, { try pattern.findMatches(in: $0) }, behavior: behavior, invert: invert)
        case .metaspace(let replacement, let scheme, let split):
            let prepared = pieces.map { piece -> PreToken in
                var text = String.UnicodeScalarView()
                for scalar in piece.text.unicodeScalars { text.append(scalar == " " ? replacement : scalar) }
                let startsWithReplacement = text.first == replacement
                switch scheme {
                case .always where !startsWithReplacement: text.insert(replacement, at: text.startIndex)
                case .first where !startsWithReplacement && piece.atStart: text.insert(replacement, at: text.startIndex)
                default: break
                }
                return PreToken(text: String(text), atStart: piece.atStart)
            }
            guard split else { return prepared }
            return Self.splitEach(prepared, { TextPattern.scalarMatches(in: $0, where: { $0 == replacement }) }, behavior: .mergedWithNext)
        case .punctuation(let behavior):
            return Self.splitEach(pieces, { TextPattern.scalarMatches(in: $0, where: Self.isPunctuation) }, behavior: behavior)
        case .digits(let individual):
            return Self.splitEach(pieces, { TextPattern.scalarMatches(in: $0, where: Self.isNumeric) }, behavior: individual ? .isolated : .contiguous)
        case .bert:
            let words = Self.splitEach(pieces, { TextPattern.scalarMatches(in: $0, where: { $0.isWhitespaceProperty }) }, behavior: .removed)
            return Self.splitEach(words, { TextPattern.scalarMatches(in: $0, where: Self.isPunctuation) }, behavior: .isolated)
        case .sequence(let preTokenizers):
            return try preTokenizers.reduce(pieces) { try $1.preTokenize($0) }
        }
    }

    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            let value = scalar.value
            return (0x21...0x2F).contains(value) || (0x3A...0x40).contains(value) || (0x5B...0x60).contains(value)
                || (0x7B...0x7E).contains(value)
        }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    static func isNumeric(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// Rust regex `\w` (Alphabetic, marks, decimal digits, connector punctuation, join controls).
    static func isWord(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    /// The Whitespace pre-tokenizer: the matches of `\w+|[^\w\s]+`, everything else removed.
    static func wordRuns(_ text: String) -> [(text: String, isFirst: Bool)] {
        var runs: [(text: String, isFirst: Bool)] = []
        var current = String.UnicodeScalarView()
        var currentIsWord = false
        var currentStartsAtZero = false
        var position = 0
        func flush() {
            if !current.isEmpty { runs.append((String(current), currentStartsAtZero)) }
            current = String.UnicodeScalarView()
        }
        for scalar in text.unicodeScalars {
            defer { position += 1 }
            if scalar.isWhitespaceProperty {
                flush()
                continue
            }
            let isWord = isWord(scalar)
            if current.isEmpty || isWord != currentIsWord {
                flush()
                currentIsWord = isWord
                currentStartsAtZero = position == 0
            }
            current.append(scalar)
        }
        flush()
        return runs
    }
}
