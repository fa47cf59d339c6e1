// Normalizers, ported from Hugging Face tokenizers (tokenizers/src/normalizers/*.rs).
import Foundation

/// A text normalizer from the `normalizer` field of tokenizer.json.
indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd
    case lowercase
    case strip(left: Bool, right: Bool)
    case stripAccents
    case replace(TextPattern, content: String)
    case prepend(String)
    case byteLevel
    case bert(cleanText: Bool, handleChineseChars: Bool, stripAccents: Bool?, lowercase: Bool)
    case sequence([Normalizer])

    static let supported = [
        "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip", "StripAccents", "Replace", "Prepend", "ByteLevel",
        "BertNormalizer", "Sequence",
    ]

    init(_ reader: JSONReader) throws {
        let type = try reader.type()
        switch type {
        case "NFC": self = .nfc
        case "NFD": self = .nfd
        case "NFKC": self = .nfkc
        case "NFKD": self = .nfkd
        case "Lowercase": self = .lowercase
        case "Strip":
            self = .strip(
                left: try reader.bool("strip_left", default: true), right: try reader.bool("strip_right", default: true))
        case "StripAccents": self = .stripAccents
        case "Replace":
            self = .replace(try TextPattern(try reader.required("pattern")), content: try reader.string("content"))
        case "Prepend": self = .prepend(try reader.string("prepend"))
        case "ByteLevel": self = .byteLevel
        case "BertNormalizer":
            self = .bert(
                cleanText: try reader.bool("clean_text", default: true),
                handleChineseChars: try reader.bool("handle_chinese_chars", default: true),
                stripAccents: try reader.child("strip_accents")?.bool(),
                lowercase: try reader.bool("lowercase", default: true))
        case "Sequence":
            self = .sequence(try reader.required("normalizers").array().map(Normalizer.init))
        default:
            throw reader.unsupported("normalizer", type, supported: Self.supported)
        }
    }

    /// Normalizes `text`; the result (and every intermediate result) may be at most
    /// ``TextGrowthExceeded/limit(forInputBytes:)`` bytes.
    ///
    /// - Throws: ``TextGrowthExceeded`` past that size, ``TokenizerError`` (`patternTooSlow`) from a regex.
    func normalize(_ text: String) throws -> String {
        let inputBytes = text.utf8.count
        return try normalize(text, inputBytes: inputBytes, limit: TextGrowthExceeded.limit(forInputBytes: inputBytes))
    }

    private func normalize(_ text: String, inputBytes: Int, limit: Int) throws -> String {
        let output = try normalizeStep(text, inputBytes: inputBytes, limit: limit)
        try TextGrowthExceeded.check(output, inputBytes: inputBytes, limit: limit)
        return output
    }

    private func normalizeStep(_ text: String, inputBytes: Int, limit: Int) throws -> String {
        switch self {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase: return Self.lowercase(text)
        case .strip(let left, let right): return Self.strip(text, left: left, right: right)
        case .stripAccents: return Self.removeMarks(text)
        case .replace(let pattern, let content): return try pattern.replaceAll(in: text, with: content, limit: limit)
        case .prepend(let prefix):
            if text.isEmpty { return text }
            guard prefix.utf8.count <= limit - text.utf8.count else {
                throw TextGrowthExceeded(inputBytes: inputBytes, limit: limit)
            }
            return prefix + text
        case .byteLevel: return ByteLevelAlphabet.encode(text)
        case .bert(let cleanText, let handleChineseChars, let stripAccents, let lowercase):
            var output = text
            if cleanText { output = Self.bertClean(output) }
            if handleChineseChars { output = Self.spaceAroundChinese(output) }
            // As in the library, accents are stripped when asked, or by default when lowercasing.
            if stripAccents ?? lowercase {
                output = Self.removeMarks(output.decomposedStringWithCanonicalMapping)
            }
            if lowercase { output = Self.lowercase(output) }
            return output
        case .sequence(let normalizers):
            return try normalizers.reduce(text) { try $1.normalize($0, inputBytes: inputBytes, limit: limit) }
        }
    }

    /// Per-scalar full lowercase mapping (Rust's `char::to_lowercase`, no context-sensitive sigma).
    static func lowercase(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text.lowercased() }
        var output = ""
        for scalar in text.unicodeScalars {
            if scalar.isASCII {
                output.unicodeScalars.append(scalar.value >= 65 && scalar.value <= 90 ? Unicode.Scalar(UInt8(scalar.value + 32)) : scalar)
            } else {
                output += scalar.properties.lowercaseMapping
            }
        }
        return output
    }

    static func strip(_ text: String, left: Bool, right: Bool) -> String {
        let scalars = text.unicodeScalars
        var start = scalars.startIndex
        var end = scalars.endIndex
        if left {
            while start < end, scalars[start].isWhitespaceProperty { start = scalars.index(after: start) }
        }
        if right {
            while end > start, scalars[scalars.index(before: end)].isWhitespaceProperty { end = scalars.index(before: end) }
        }
        return String(Substring(scalars[start..<end]))
    }

    static func isMark(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    static func removeMarks(_ text: String) -> String {
        var output = String.UnicodeScalarView()
        for scalar in text.unicodeScalars where !isMark(scalar) { output.append(scalar) }
        return String(output)
    }

    static func isChinese(_ value: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(value) || (0x3400...0x4DBF).contains(value) || (0x20000...0x2A6DF).contains(value)
            || (0x2A700...0x2B73F).contains(value) || (0x2B740...0x2B81F).contains(value)
            || (0x2B920...0x2CEAF).contains(value) || (0xF900...0xFAFF).contains(value)
            || (0x2F800...0x2FA1F).contains(value)
    }

    static func bertClean(_ text: String) -> String {
        var output = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let value = scalar.value
            let isControl: Bool = {
                if value == 0x09 || value == 0x0A || value == 0x0D { return false }
                switch scalar.properties.generalCategory {
                case .control, .format, .privateUse, .surrogate, .unassigned: return true
                default: return false
                }
            }()
            if value == 0 || value == 0xFFFD || isControl { continue }
            let isWhitespace =
                value == 0x09 || value == 0x0A || value == 0x0D || value == 0x20
                || scalar.properties.generalCategory == .spaceSeparator
            output.append(isWhitespace ? " " : scalar)
        }
        return String(output)
    }

    static func spaceAroundChinese(_ text: String) -> String {
        var output = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isChinese(scalar.value) {
                output.append(" ")
                output.append(scalar)
                output.append(" ")
            } else {
                output.append(scalar)
            }
        }
        return String(output)
    }
}
