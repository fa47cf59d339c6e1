// Patterns and splitting, ported from Hugging Face tokenizers (tokenizers/src/tokenizer/pattern.rs and
// NormalizedString::split in normalizer.rs). Text is handled as Unicode scalars (Rust `char`s), never
// as Swift `Character`s, and compared byte for byte, never by canonical equivalence.
import Foundation

/// How a split treats the delimiters it finds (the library's `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable, CaseIterable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// A compiled ICU regular expression; `NSRegularExpression` is immutable and safe to share.
///
/// ICU backtracks, so a hostile pattern from a tokenizer file (`(a|aa)+$`, `([\s\S]*)*x`) can take
/// exponential time on ordinary text. Every evaluation therefore runs under a step budget that grows
/// linearly with the text (``progressBudget(forUTF16Count:)``): ICU reports progress about every
/// 10 000 backtracking steps and at each start position it tries, and once the reports exceed the
/// budget the search stops and ``matches(in:)`` throws ``TokenizerError/Code/patternTooSlow`` naming
/// the file, the JSON path and the pattern. Patterns as tokenizers write them (alternations of
/// classes and runs) use a few steps per character and stay far below the budget.
final class CompiledRegex: @unchecked Sendable {
    let expression: NSRegularExpression
    let pattern: String
    /// The tokenizer file and the JSON path the pattern came from, for error messages.
    let source: String
    let path: String
    /// A hand-written matcher giving the same matches, for the GPT-2 and Llama-3 split patterns.
    let known: KnownSplitPattern?

    /// Compiles a pattern written for Oniguruma (the library's regex engine) as an ICU pattern.
    ///
    /// Oniguruma's Unicode `\s` is the White_Space property and `\w` is letters, marks, decimal
    /// digits and connector punctuation; ICU's differ slightly, so both are spelled out.
    init(oniguruma pattern: String, source: String, path: String, allowHandWritten: Bool = true) throws {
        self.pattern = pattern
        self.source = source
        self.path = path
        known = allowHandWritten ? KnownSplitPattern(pattern: pattern) : nil
        let translated = Self.translate(pattern, word: "\\p{L}\\p{M}\\p{Nd}\\p{Pc}")
        do {
            expression = try NSRegularExpression(pattern: translated, options: [])
        } catch {
            throw TokenizerError(
                .invalidPattern,
                "\(source): \(path) holds the regular expression \"\(pattern)\", which does not compile; fix the pattern.")
        }
    }

    /// Rewrites `\s`/`\S` and `\w`/`\W` as explicit Unicode sets (`word` is the set for `\w`).
    static func translate(_ pattern: String, word: String) -> String {
        let space = "\\p{White_Space}"
        var output = ""
        var inClass = 0
        var scalars = pattern.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            if scalar == "\\" {
                guard let next = scalars.next() else {
                    output.unicodeScalars.append(scalar)
                    break
                }
                switch next {
                case "s": output += inClass > 0 ? space : "[\(space)]"
                case "S": output += inClass > 0 ? "[^\(space)]" : "[^\(space)]"
                case "w": output += inClass > 0 ? word : "[\(word)]"
                case "W": output += "[^\(word)]"
                default:
                    output.unicodeScalars.append(scalar)
                    output.unicodeScalars.append(next)
                }
                continue
            }
            if scalar == "[" { inClass += 1 }
            if scalar == "]", inClass > 0 { inClass -= 1 }
            output.unicodeScalars.append(scalar)
        }
        return output
    }

    /// The progress reports a search over `count` UTF-16 units may make before it is stopped: two per
    /// unit (ICU reports each start position it tries, and each match) plus one per 10 units and a
    /// base of 200. One report beyond the start positions is about 10 000 backtracking steps, so
    /// this allows about 2 million steps plus 1 000 per character: a few milliseconds of work on a
    /// prompt, far more than any linear pattern needs, and at most a few hundred milliseconds before
    /// a catastrophic one is stopped.
    static func progressBudget(forUTF16Count count: Int) -> Int {
        200 + 2 * count + count / 10
    }

    /// The ranges of all non-overlapping matches, left to right.
    ///
    /// Foundation's `Range(_:in:)` refuses bounds inside a grapheme cluster (a letter followed by a
    /// combining mark), so UTF-16 offsets are converted to scalar positions here, walking forward.
    ///
    /// - Throws: ``TokenizerError`` with code `patternTooSlow` when the search exceeds its step budget
    ///   or ICU gives up (its backtracking stack is full).
    func matches(in text: String) throws -> [Range<String.Index>] {
        if let known { return known.matches(in: text) }
        let utf16 = text.utf16
        let whole = NSRange(location: 0, length: utf16.count)
        let budget = Self.progressBudget(forUTF16Count: utf16.count)
        var reports = 0
        var exceeded = false
        var failed = false
        var found: [NSRange] = []
        expression.enumerateMatches(in: text, options: [.reportProgress, .reportCompletion], range: whole) { match, flags, stop in
            if let match {
                found.append(match.range)
                return
            }
            if flags.contains(.internalError) { failed = true }
            if flags.contains(.progress) {
                reports += 1
                if reports > budget {
                    exceeded = true
                    stop.pointee = true
                }
            }
        }
        if exceeded || failed {
            throw TokenizerError(
                .patternTooSlow,
                "\(source): the regular expression \"\(pattern)\" at \(path) \(exceeded ? "needed more than its step budget" : "exhausted the regex engine's backtracking memory") on a text of \(utf16.count) UTF-16 code units; it backtracks catastrophically (nested or overlapping repetition): fix or remove the pattern in the tokenizer file.")
        }
        var index = utf16.startIndex
        var offset = 0
        func position(_ target: Int) -> String.Index? {
            guard target >= offset, let moved = utf16.index(index, offsetBy: target - offset, limitedBy: utf16.endIndex)
            else { return nil }
            index = moved
            offset = target
            return moved.samePosition(in: text.unicodeScalars)
        }
        var ranges: [Range<String.Index>] = []
        for range in found {
            guard range.location != NSNotFound, let start = position(range.location),
                let end = position(range.location + range.length)
            else { continue }
            ranges.append(start..<end)
        }
        return ranges
    }
}

/// A normalizer or decoder grew a text past ``TextGrowthExceeded/limit(forInputBytes:)`` (a long
/// `Replace` or `Prepend` content repeated for every match, or chained replacements that double the
/// text); ``Tokenizer`` turns it into a ``TokenizerError`` naming the file.
struct TextGrowthExceeded: Error {
    let inputBytes: Int
    let limit: Int

    /// The most UTF-8 bytes normalizing or decoding may produce from `inputBytes`: 64 times the
    /// input plus 1 MiB. Real normalizers grow a text by a small factor (NFKC by at most 18 per
    /// character, the BERT normalizer by 3); anything beyond is a hostile or broken file.
    static func limit(forInputBytes inputBytes: Int) -> Int {
        let (scaled, overflow) = inputBytes.multipliedReportingOverflow(by: 64)
        return overflow ? .max : scaled.addingReportingOverflow(1 << 20).overflow ? .max : scaled + (1 << 20)
    }

    /// Throws when `text` is longer than `limit` UTF-8 bytes.
    static func check(_ text: String, inputBytes: Int, limit: Int) throws {
        if text.utf8.count > limit { throw TextGrowthExceeded(inputBytes: inputBytes, limit: limit) }
    }
}

/// What a split or a replacement looks for: a literal string or a regular expression.
enum TextPattern: Sendable {
    case literal(String)
    case regex(CompiledRegex)

    /// Reads a `{"String": "..."}` or `{"Regex": "..."}` pattern.
    init(_ reader: JSONReader) throws {
        if let literal = reader.child("String") {
            self = .literal(try literal.string())
        } else if let regex = reader.child("Regex") {
            self = .regex(try CompiledRegex(oniguruma: try regex.string(), source: reader.source, path: regex.path))
        } else {
            throw reader.fail("must be {\"String\": ...} or {\"Regex\": ...}")
        }
    }

    /// Splits `text` into consecutive ranges covering all of it, each flagged as a match or not.
    func findMatches(in text: String) throws -> [(range: Range<String.Index>, isMatch: Bool)] {
        switch self {
        case .literal(let needle):
            if needle.isEmpty { return [(text.startIndex..<text.endIndex, false)] }
            return Self.cover(text, matches: Self.literalMatches(of: needle, in: text))
        case .regex(let regex):
            return Self.cover(text, matches: try regex.matches(in: text))
        }
    }

    /// Replaces every match of the literal `needle` with `content` (the decoders' fixed replacements,
    /// which never grow the text).
    static func replaceLiteral(_ needle: String, in text: String, with content: String) -> String {
        (try? replaceLiteral(needle, in: text, with: content, limit: .max)) ?? text
    }

    /// Replaces every match of the literal `needle` with `content`, stopping with
    /// ``TextGrowthExceeded`` once the output passes `limit` UTF-8 bytes.
    static func replaceLiteral(_ needle: String, in text: String, with content: String, limit: Int) throws -> String {
        if let first = needle.utf8.first, !text.utf8.contains(first) { return text }
        let pieces: [(range: Range<String.Index>, isMatch: Bool)] = needle.isEmpty
            ? [(text.startIndex..<text.endIndex, false)] : cover(text, matches: literalMatches(of: needle, in: text))
        return try assemble(text, pieces, content, limit: limit)
    }

    /// Replaces every match with `content` (the library's `NormalizedString::replace`).
    ///
    /// - Throws: ``TokenizerError`` (`patternTooSlow`) when a regular expression exceeds its budget;
    ///   ``TextGrowthExceeded`` when the output passes `limit` UTF-8 bytes (a long `content` repeated
    ///   for every match), checked as it is built.
    func replaceAll(in text: String, with content: String, limit: Int = .max) throws -> String {
        if case .literal(let needle) = self { return try Self.replaceLiteral(needle, in: text, with: content, limit: limit) }
        return try Self.assemble(text, try findMatches(in: text), content, limit: limit)
    }

    private static func assemble(
        _ text: String, _ pieces: [(range: Range<String.Index>, isMatch: Bool)], _ content: String, limit: Int
    ) throws -> String {
        var output = ""
        for piece in pieces {
            if piece.isMatch {
                output += content
            } else {
                output.unicodeScalars.append(contentsOf: text.unicodeScalars[piece.range])
            }
            if output.utf8.count > limit { throw TextGrowthExceeded(inputBytes: text.utf8.count, limit: limit) }
        }
        return output
    }

    static func literalMatches(of needle: String, in text: String) -> [Range<String.Index>] {
        let pattern = Array(needle.unicodeScalars)
        let scalars = text.unicodeScalars
        var result: [Range<String.Index>] = []
        var index = scalars.startIndex
        while index < scalars.endIndex {
            var probe = index
            var matched = true
            for scalar in pattern {
                guard probe < scalars.endIndex, scalars[probe] == scalar else {
                    matched = false
                    break
                }
                probe = scalars.index(after: probe)
            }
            if matched {
                result.append(index..<probe)
                index = probe
            } else {
                index = scalars.index(after: index)
            }
        }
        return result
    }

    /// Turns match ranges into a covering of the text (the library's `find_matches`).
    static func cover(_ text: String, matches: [Range<String.Index>]) -> [(range: Range<String.Index>, isMatch: Bool)] {
        if text.isEmpty { return [(text.startIndex..<text.endIndex, false)] }
        var pieces: [(range: Range<String.Index>, isMatch: Bool)] = []
        pieces.reserveCapacity(matches.count * 2 + 1)
        var previous = text.startIndex
        for match in matches {
            if previous != match.lowerBound { pieces.append((previous..<match.lowerBound, false)) }
            pieces.append((match, true))
            previous = match.upperBound
        }
        if previous != text.endIndex { pieces.append((previous..<text.endIndex, false)) }
        return pieces
    }

    /// Each scalar for which `predicate` holds is its own match (the library's `Fn(char) -> bool` pattern).
    static func scalarMatches(in text: String, where predicate: (Unicode.Scalar) -> Bool)
        -> [(range: Range<String.Index>, isMatch: Bool)]
    {
        if text.isEmpty { return [(text.startIndex..<text.endIndex, false)] }
        let scalars = text.unicodeScalars
        var pieces: [(range: Range<String.Index>, isMatch: Bool)] = []
        var lastOffset = scalars.startIndex
        var index = scalars.startIndex
        while index < scalars.endIndex {
            let next = scalars.index(after: index)
            if predicate(scalars[index]) {
                if lastOffset < index { pieces.append((lastOffset..<index, false)) }
                pieces.append((index..<next, true))
                lastOffset = next
            }
            index = next
        }
        if lastOffset < scalars.endIndex { pieces.append((lastOffset..<scalars.endIndex, false)) }
        return pieces
    }
}

/// Applies a split behavior to a covering of `text` and returns the kept, non-empty pieces, each
/// flagged when it starts at the beginning of `text`.
func splitPieces(
    _ text: String, _ matches: [(range: Range<String.Index>, isMatch: Bool)], behavior: SplitBehavior,
    invert: Bool = false
) -> [(text: String, isFirst: Bool)] {
    let matches = invert ? matches.map { ($0.range, !$0.isMatch) } : matches
    var splits: [(range: Range<String.Index>, remove: Bool)] = []
    splits.reserveCapacity(matches.count)
    switch behavior {
    case .isolated:
        splits = matches.map { ($0.range, false) }
    case .removed:
        splits = matches.map { ($0.range, $0.isMatch) }
    case .contiguous:
        var previousMatch = false
        for (range, isMatch) in matches {
            if isMatch == previousMatch, let last = splits.last {
                splits[splits.count - 1] = (last.range.lowerBound..<range.upperBound, false)
            } else {
                splits.append((range, false))
            }
            previousMatch = isMatch
        }
    case .mergedWithPrevious:
        var previousMatch = false
        for (range, isMatch) in matches {
            if isMatch && !previousMatch, let last = splits.last {
                splits[splits.count - 1] = (last.range.lowerBound..<range.upperBound, false)
            } else {
                splits.append((range, false))
            }
            previousMatch = isMatch
        }
    case .mergedWithNext:
        var previousMatch = false
        for (range, isMatch) in matches.reversed() {
            if isMatch && !previousMatch, let last = splits.last {
                splits[splits.count - 1] = (range.lowerBound..<last.range.upperBound, false)
            } else {
                splits.append((range, false))
            }
            previousMatch = isMatch
        }
        splits.reverse()
    }
    var pieces: [(text: String, isFirst: Bool)] = []
    pieces.reserveCapacity(splits.count)
    for split in splits where !split.remove && !split.range.isEmpty {
        pieces.append((String(Substring(text.unicodeScalars[split.range])), split.range.lowerBound == text.startIndex))
    }
    return pieces
}

/// GPT-2's reversible mapping between bytes and printable characters (`bytes_to_unicode`).
enum ByteLevelAlphabet {
    /// The character for each byte.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var extra: UInt32 = 0
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(256 + extra) ?? " "
                extra += 1
            }
        }
        return table
    }()

    /// The byte for each character of the alphabet.
    static let scalarToByte: [UInt32: UInt8] = {
        var table: [UInt32: UInt8] = [:]
        for (byte, scalar) in byteToScalar.enumerated() { table[scalar.value] = UInt8(byte) }
        return table
    }()

    /// Maps every UTF-8 byte of `text` to its character.
    static func encode(_ text: String) -> String {
        var output = String.UnicodeScalarView()
        for byte in text.utf8 { output.append(byteToScalar[Int(byte)]) }
        return String(output)
    }
}

extension Unicode.Scalar {
    /// Rust's `char::is_whitespace` (the White_Space property).
    var isWhitespaceProperty: Bool { properties.isWhitespace }
}
