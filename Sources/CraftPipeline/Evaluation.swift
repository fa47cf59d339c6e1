// The summary of an evaluation run for `craft eval`; answers are scored by CraftCore's AnswerScoring.
import CraftCore
import Foundation

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

/// What answering one item cost: visual tokens before and after pruning, the counted prefill FLOPs
/// with and without pruning, and the measured latency.
///
/// FLOPs are counted, not measured: ``PruningCost`` over the backend's ``DecoderShape`` for a prompt of
/// ``textTokens`` text positions plus the visual tokens, output head at the last position only (as
/// generation's prefill computes it). They are `nil` when the backend describes no decoder shape.
public struct InferenceMeasurement: Sendable, Equatable, Codable {
    /// The visual tokens the encoder produced.
    public var visualTokensBefore: Int
    /// The visual tokens given to the backend after pruning.
    public var visualTokensAfter: Int
    /// The prompt positions that are not visual tokens (template text, the prompt, prefix tokens).
    public var textTokens: Int
    /// Counted prefill FLOPs with every visual token, or `nil` when the decoder shape is unknown.
    public var prefillFLOPsFull: Double?
    /// Counted prefill FLOPs with the kept visual tokens, or `nil` when the decoder shape is unknown.
    public var prefillFLOPsPruned: Double?
    /// Wall-clock time from the decoded image to the generated answer (encode, prune, prefill, decode),
    /// in milliseconds.
    public var latencyMilliseconds: Double

    /// Creates a measurement.
    public init(
        visualTokensBefore: Int, visualTokensAfter: Int, textTokens: Int, prefillFLOPsFull: Double?,
        prefillFLOPsPruned: Double?, latencyMilliseconds: Double
    ) {
        self.visualTokensBefore = visualTokensBefore
        self.visualTokensAfter = visualTokensAfter
        self.textTokens = textTokens
        self.prefillFLOPsFull = prefillFLOPsFull
        self.prefillFLOPsPruned = prefillFLOPsPruned
        self.latencyMilliseconds = latencyMilliseconds
    }

    /// `1 − pruned / full` of the counted prefill FLOPs; `nil` when they are unknown, 0 when full is 0.
    public var prefillFLOPsSavedFraction: Double? {
        guard let full = prefillFLOPsFull, let pruned = prefillFLOPsPruned else { return nil }
        return full > 0 ? 1 - pruned / full : 0
    }
}

/// The totals of an evaluation: accuracy, counts, visual tokens, counted FLOPs and latency.
public struct EvaluationSummary: Sendable, Equatable {
    /// The scored items in dataset order.
    public var items: [EvaluationItem]
    /// The keep ratio the visual tokens were pruned to (1 = no pruning).
    public var keepRatio: Double
    /// The mean wall-clock time per item, in milliseconds.
    public var meanLatencyMilliseconds: Double
    /// The median wall-clock time per item, in milliseconds (the mean of the middle two for an even
    /// count; 0 without items).
    public var medianLatencyMilliseconds: Double
    /// The per-item measurements, in dataset order (empty when the summary was made from a latency alone).
    public var measurements: [InferenceMeasurement]

    /// Creates a summary from a mean latency alone (the median is set to the same value).
    public init(items: [EvaluationItem], keepRatio: Double, meanLatencyMilliseconds: Double) {
        self.items = items
        self.keepRatio = keepRatio
        self.meanLatencyMilliseconds = meanLatencyMilliseconds
        self.medianLatencyMilliseconds = meanLatencyMilliseconds
        self.measurements = []
    }

    /// Creates a summary from one measurement per item, computing the mean and median latency.
    public init(items: [EvaluationItem], keepRatio: Double, measurements: [InferenceMeasurement]) {
        self.items = items
        self.keepRatio = keepRatio
        self.measurements = measurements
        let latencies = measurements.map(\.latencyMilliseconds).sorted()
        meanLatencyMilliseconds = latencies.isEmpty ? 0 : latencies.reduce(0, +) / Double(latencies.count)
        if latencies.isEmpty {
            medianLatencyMilliseconds = 0
        } else if latencies.count % 2 == 1 {
            medianLatencyMilliseconds = latencies[latencies.count / 2]
        } else {
            medianLatencyMilliseconds = (latencies[latencies.count / 2 - 1] + latencies[latencies.count / 2]) / 2
        }
    }

    /// The number of correct items.
    public var correct: Int { items.filter(\.correct).count }
    /// The number of items.
    public var total: Int { items.count }
    /// `correct / total`, 0 when there are no items.
    public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }

    /// The mean visual tokens per item before pruning (0 without measurements).
    public var meanVisualTokensBefore: Double { mean(measurements.map { Double($0.visualTokensBefore) }) }
    /// The mean visual tokens per item after pruning (0 without measurements).
    public var meanVisualTokensAfter: Double { mean(measurements.map { Double($0.visualTokensAfter) }) }
    /// The mean counted prefill FLOPs per item without pruning; `nil` unless every item has them.
    public var meanPrefillFLOPsFull: Double? { meanIfAll(measurements.map(\.prefillFLOPsFull)) }
    /// The mean counted prefill FLOPs per item with pruning; `nil` unless every item has them.
    public var meanPrefillFLOPsPruned: Double? { meanIfAll(measurements.map(\.prefillFLOPsPruned)) }
    /// `1 − Σ pruned / Σ full` over the items' counted prefill FLOPs; `nil` when they are unknown.
    public var prefillFLOPsSavedFraction: Double? {
        guard let full = meanPrefillFLOPsFull, let pruned = meanPrefillFLOPsPruned else { return nil }
        return full > 0 ? 1 - pruned / full : 0
    }

    private func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }

    private func meanIfAll(_ values: [Double?]) -> Double? {
        let known = values.compactMap { $0 }
        guard !values.isEmpty, known.count == values.count else { return nil }
        return mean(known)
    }
}
