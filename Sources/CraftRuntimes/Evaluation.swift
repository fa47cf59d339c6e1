// Scoring answers for `craft eval`: normalised exact match, and the summary of an evaluation run.
import Foundation

/// Normalised exact match: the score `craft eval` gives an answer against the expected one.
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

/// One scored item of an evaluation.
public struct EvaluationItem: Sendable, Equatable, Codable {
    /// The image as written in the dataset (a path relative to it, or an index for table encoders).
    public var image: String
    /// The prompt asked.
    public var prompt: String
    /// The generated answer.
    public var answer: String
    /// The expected answer from the dataset.
    public var expected: String
    /// Whether the answer matches the expected one (``AnswerScoring``).
    public var correct: Bool

    /// Creates an item, scoring `answer` against `expected`.
    public init(image: String, prompt: String, answer: String, expected: String) {
        self.image = image
        self.prompt = prompt
        self.answer = answer
        self.expected = expected
        self.correct = AnswerScoring.matches(answer, expected: expected)
    }
}

/// The totals of an evaluation: accuracy, counts and mean latency.
public struct EvaluationSummary: Sendable, Equatable {
    /// The scored items in dataset order.
    public var items: [EvaluationItem]
    /// The keep ratio the visual tokens were pruned to (1 = no pruning).
    public var keepRatio: Double
    /// The mean wall-clock time per item (image load, encode, prune, generate), in milliseconds.
    public var meanLatencyMilliseconds: Double

    /// Creates a summary.
    public init(items: [EvaluationItem], keepRatio: Double, meanLatencyMilliseconds: Double) {
        self.items = items
        self.keepRatio = keepRatio
        self.meanLatencyMilliseconds = meanLatencyMilliseconds
    }

    /// The number of correct items.
    public var correct: Int { items.filter(\.correct).count }
    /// The number of items.
    public var total: Int { items.count }
    /// `correct / total`, 0 when there are no items.
    public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }
}
