// Added tokens, ported from Hugging Face tokenizers (tokenizers/src/tokenizer/added_vocabulary.rs):
// they are found in the text before normalization and pre-tokenization, leftmost-longest.
import Foundation

/// A token from the `added_tokens` list of tokenizer.json.
struct AddedToken: Sendable {
    var id: Int
    var content: String
    var singleWord: Bool
    var leftStrip: Bool
    var rightStrip: Bool
    var normalized: Bool
    var special: Bool
}

/// Either a matched added token or text still to tokenize.
enum Segment {
    case token(Int)
    case text(String, atStart: Bool)
}

/// Finds added tokens in text, like the library's Aho-Corasick tries in leftmost-longest mode.
struct AddedTokenMatcher: Sendable {
    /// For each first byte, the candidate patterns (bytes, token index), longest first.
    private var candidates: [[(bytes: [UInt8], token: Int)]] = Array(repeating: [], count: 256)
    private let tokens: [AddedToken]
    private(set) var isEmpty = true

    /// - Parameter patterns: the text to look for, for each token (the content, normalized if asked).
    init(tokens: [AddedToken], patterns: [String]) {
        self.tokens = tokens
        for (index, pattern) in patterns.enumerated() where !pattern.isEmpty {
            let bytes = Array(pattern.utf8)
            candidates[Int(bytes[0])].append((bytes, index))
            isEmpty = false
        }
        for byte in 0..<256 {
            // Longest first; equal lengths keep the first given (special tokens come first).
            candidates[byte] = candidates[byte].enumerated().sorted {
                $0.element.bytes.count != $1.element.bytes.count
                    ? $0.element.bytes.count > $1.element.bytes.count : $0.offset < $1.offset
            }.map(\.element)
        }
    }

    /// Splits `text` into matched added tokens and the text around them.
    func split(_ text: String, atStart: Bool) -> [Segment] {
        if isEmpty || text.isEmpty { return text.isEmpty ? [] : [.text(text, atStart: atStart)] }
        let bytes = Array(text.utf8)
        // 1. Leftmost-longest, non-overlapping matches.
        var matches: [(start: Int, end: Int, token: Int)] = []
        var position = 0
        while position < bytes.count {
            var found: (end: Int, token: Int)?
            for candidate in candidates[Int(bytes[position])] {
                let end = position + candidate.bytes.count
                if end <= bytes.count, bytes[position..<end].elementsEqual(candidate.bytes) {
                    found = (end, candidate.token)
                    break
                }
            }
            if let found {
                matches.append((position, found.end, found.token))
                position = found.end
            } else {
                position += 1
            }
        }
        if matches.isEmpty { return [.text(text, atStart: atStart)] }
        // 2. Word-boundary and whitespace-stripping rules.
        var segments: [Segment] = []
        var startOffset = 0
        for match in matches {
            var start = match.start
            var stop = match.end
            let token = tokens[match.token]
            if token.singleWord {
                let startSpace = start == 0 || !Self.endsWithWord(bytes, before: start)
                let stopSpace = stop == bytes.count || !Self.startsWithWord(bytes, at: stop)
                if !startSpace || !stopSpace { continue }
            }
            if token.leftStrip {
                start = max(Self.whitespaceStart(bytes, before: start), startOffset)
            }
            if token.rightStrip {
                stop = Self.whitespaceEnd(bytes, from: stop)
            }
            if startOffset < start {
                segments.append(.text(Self.string(bytes[startOffset..<start]), atStart: atStart && startOffset == 0))
            }
            segments.append(.token(token.id))
            startOffset = stop
        }
        if startOffset < bytes.count {
            segments.append(.text(Self.string(bytes[startOffset...]), atStart: atStart && startOffset == 0))
        }
        return segments
    }

    private static func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// The scalar that ends just before byte offset `end` (decoding backwards, so no prefix is copied).
    private static func scalar(endingAt end: Int, in bytes: [UInt8]) -> (scalar: Unicode.Scalar, start: Int)? {
        guard end > 0 else { return nil }
        var start = end - 1
        while start > 0, end - start < 4, bytes[start] & 0xC0 == 0x80 { start -= 1 }
        guard let scalar = String(decoding: bytes[start..<end], as: UTF8.self).unicodeScalars.first else { return nil }
        return (scalar, start)
    }

    /// The scalar that starts at byte offset `start`.
    private static func scalar(startingAt start: Int, in bytes: [UInt8]) -> (scalar: Unicode.Scalar, end: Int)? {
        guard start < bytes.count else { return nil }
        let lead = bytes[start]
        let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
        let end = min(start + length, bytes.count)
        guard let scalar = String(decoding: bytes[start..<end], as: UTF8.self).unicodeScalars.first else { return nil }
        return (scalar, end)
    }

    private static func endsWithWord(_ bytes: [UInt8], before end: Int) -> Bool {
        guard let last = scalar(endingAt: end, in: bytes) else { return false }
        return PreTokenizer.isWord(last.scalar)
    }

    private static func startsWithWord(_ bytes: [UInt8], at start: Int) -> Bool {
        guard let first = scalar(startingAt: start, in: bytes) else { return false }
        return PreTokenizer.isWord(first.scalar)
    }

    /// The byte offset where the whitespace ending at `end` begins.
    private static func whitespaceStart(_ bytes: [UInt8], before end: Int) -> Int {
        var offset = end
        while let previous = scalar(endingAt: offset, in: bytes), previous.scalar.isWhitespaceProperty {
            offset = previous.start
        }
        return offset
    }

    /// The byte offset where the whitespace starting at `from` ends.
    private static func whitespaceEnd(_ bytes: [UInt8], from: Int) -> Int {
        var offset = from
        while let next = scalar(startingAt: offset, in: bytes), next.scalar.isWhitespaceProperty {
            offset = next.end
        }
        return offset
    }
}
