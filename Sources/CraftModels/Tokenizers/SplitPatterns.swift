// Hand-written matchers for the two split patterns that byte-level tokenizers use, equivalent to the
// Oniguruma regexes in Hugging Face tokenizers (pre_tokenizers/byte_level.rs for GPT-2; the Llama-3
// tokenizer.json Split pattern) but several times faster than running them through ICU.
// Each branch below mirrors one alternative of the pattern, tried in order, greedy, with the
// backtracking the regex engine would do.

/// Character classes used by the patterns.
private enum ScalarClass {
    case letter, number, space, other

    init(_ scalar: Unicode.Scalar) {
        if scalar.isASCII {
            let value = scalar.value
            switch value {
            case 0x41...0x5A, 0x61...0x7A: self = .letter
            case 0x30...0x39: self = .number
            case 0x09...0x0D, 0x20: self = .space
            default: self = .other
            }
            return
        }
        let properties = scalar.properties
        if properties.isWhitespace {
            self = .space
            return
        }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: self = .letter
        case .decimalNumber, .letterNumber, .otherNumber: self = .number
        default: self = .other
        }
    }
}

/// The split patterns with a hand-written matcher.
enum KnownSplitPattern: Sendable {
    case gpt2
    case llama3

    static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    init?(pattern: String) {
        if pattern.utf8.elementsEqual(gpt2SplitPattern.utf8) {
            self = .gpt2
        } else if pattern.utf8.elementsEqual(Self.llama3Pattern.utf8) {
            self = .llama3
        } else {
            return nil
        }
    }

    /// The match ranges, left to right; like the regex, they cover the whole text.
    func matches(in text: String) -> [Range<String.Index>] {
        let scalars = Array(text.unicodeScalars)
        var indices: [String.Index] = []
        indices.reserveCapacity(scalars.count + 1)
        var index = text.unicodeScalars.startIndex
        while index < text.unicodeScalars.endIndex {
            indices.append(index)
            index = text.unicodeScalars.index(after: index)
        }
        indices.append(text.unicodeScalars.endIndex)
        let classes = scalars.map(ScalarClass.init)
        var ranges: [Range<String.Index>] = []
        var position = 0
        while position < scalars.count {
            let end: Int
            switch self {
            case .gpt2: end = Self.gpt2Match(scalars, classes, at: position)
            case .llama3: end = Self.llama3Match(scalars, classes, at: position)
            }
            ranges.append(indices[position]..<indices[end])
            position = end
        }
        return ranges
    }

    private static func run(_ classes: [ScalarClass], of kind: ScalarClass, from start: Int) -> Int {
        var end = start
        while end < classes.count, classes[end] == kind { end += 1 }
        return end
    }

    /// `\s+(?!\S)|\s+` at a whitespace position.
    private static func whitespaceMatch(_ classes: [ScalarClass], at position: Int) -> Int {
        let end = run(classes, of: .space, from: position)
        if end == classes.count { return end }
        // The lookahead fails before a non-space; giving back one space satisfies it if any remain.
        return end - 1 > position ? end - 1 : end
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    static fileprivate func gpt2Match(_ scalars: [Unicode.Scalar], _ classes: [ScalarClass], at position: Int) -> Int {
        let count = scalars.count
        if scalars[position] == "'", position + 1 < count {
            let next = scalars[position + 1]
            if next == "s" || next == "t" || next == "m" || next == "d" { return position + 2 }
            if position + 2 < count {
                let third = scalars[position + 2]
                if (next == "r" || next == "v") && third == "e" { return position + 3 }
                if next == "l" && third == "l" { return position + 3 }
            }
        }
        var start = position
        if scalars[position] == " ", position + 1 < count, classes[position + 1] != .space {
            start = position + 1
        }
        switch classes[start] {
        case .letter: return run(classes, of: .letter, from: start)
        case .number: return run(classes, of: .number, from: start)
        case .other: return run(classes, of: .other, from: start)
        case .space: return whitespaceMatch(classes, at: position)
        }
    }

    private static func isLineBreak(_ scalar: Unicode.Scalar) -> Bool { scalar == "\r" || scalar == "\n" }

    private static func caseFoldEquals(_ scalar: Unicode.Scalar, _ lower: Unicode.Scalar) -> Bool {
        if scalar == lower { return true }
        if scalar.isASCII, scalar.value + 32 == lower.value { return true }
        // Oniguruma case-folds LATIN SMALL LETTER LONG S and KELVIN SIGN to s and k.
        return (lower == "s" && scalar == "\u{017F}")
    }

    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    static fileprivate func llama3Match(_ scalars: [Unicode.Scalar], _ classes: [ScalarClass], at position: Int) -> Int {
        let count = scalars.count
        if scalars[position] == "'", position + 1 < count {
            let next = scalars[position + 1]
            for letter: Unicode.Scalar in ["s", "t", "m", "d"] where caseFoldEquals(next, letter) { return position + 2 }
            if position + 2 < count {
                let third = scalars[position + 2]
                if (caseFoldEquals(next, "r") || caseFoldEquals(next, "v")) && caseFoldEquals(third, "e") {
                    return position + 3
                }
                if caseFoldEquals(next, "l") && caseFoldEquals(third, "l") { return position + 3 }
            }
        }
        let current = classes[position]
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if current == .letter { return run(classes, of: .letter, from: position) }
        if current != .number, !isLineBreak(scalars[position]), position + 1 < count, classes[position + 1] == .letter {
            return run(classes, of: .letter, from: position + 1)
        }
        // \p{N}{1,3}
        if current == .number {
            var end = position + 1
            while end < count, end < position + 3, classes[end] == .number { end += 1 }
            return end
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        var start = position
        if scalars[position] == " ", position + 1 < count, classes[position + 1] == .other { start = position + 1 }
        if classes[start] == .other {
            var end = run(classes, of: .other, from: start)
            while end < count, isLineBreak(scalars[end]) { end += 1 }
            return end
        }
        // \s*[\r\n]+ : the whitespace run up to and including its last line break.
        let spaceEnd = run(classes, of: .space, from: position)
        var lastBreak = -1
        for index in position..<spaceEnd where isLineBreak(scalars[index]) { lastBreak = index }
        if lastBreak >= 0 { return lastBreak + 1 }
        return whitespaceMatch(classes, at: position)
    }
}
