// Scoring an answer against the expected one: normalised exact match, the same everywhere.

/// Normalised exact match: the one score Craft gives an answer against the expected one (`craft eval`,
/// the trainer's validation accuracy and best-epoch choice, the experiment's tables).
///
/// Both texts are normalised the same way, then compared for equality:
/// 1. lowercased;
/// 2. leading and trailing whitespace (and newlines) trimmed;
/// 3. every run of inner whitespace collapsed to one space;
/// 4. trailing punctuation (`.`, `,`, `!`, `?`, `;`, `:` and any other Unicode punctuation) stripped,
///    then trailing whitespace trimmed again.
///
/// ```swift
/// AnswerScoring.matches("  A   Cat. ", expected: "a cat")   // true
/// ```
public enum AnswerScoring {
    /// The normalised form of `text` (see ``AnswerScoring``).
    public static func normalized(_ text: String) -> String {
        let words = text.lowercased().split(whereSeparator: { $0.isWhitespace || $0.isNewline })
        var result = words.joined(separator: " ")
        while let last = result.last, last.isPunctuation || last.isWhitespace { result.removeLast() }
        return result
    }

    /// Whether `answer` equals `expected` after both are normalised.
    public static func matches(_ answer: String, expected: String) -> Bool {
        normalized(answer) == normalized(expected)
    }
}
