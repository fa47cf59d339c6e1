// The surrogate alignment loss's token part: next-token cross-entropy over the answer tokens only, as a
// Hugging Face causal LM with labels = input_ids where prompt positions are -100 (shift by one, mean over
// the answer tokens of the whole batch: F.cross_entropy(logits[:-1], labels[1:], ignore_index=-100)).
import TensorCore

/// One sequence the surrogate scored: its logits and which positions hold the answer.
public struct AnswerSequence: Sendable {
    /// Next-token logits `[rows, vocabulary]`: row `t` predicts the token at position
    /// `firstPosition + t + 1`.
    public var logits: Tensor
    /// The answer token ids, in order.
    public var answerTokens: [Int32]
    /// The position of the first answer token in the sequence (after the visual and prompt tokens).
    public var answerStart: Int
    /// The position row 0 of `logits` stands for: 0 when every position was scored, more when the
    /// surrogate computed only the rows that predict the answer (``SurrogateBackend/answerLogits(for:)``).
    public var firstPosition: Int

    /// Creates a scored sequence.
    public init(logits: Tensor, answerTokens: [Int32], answerStart: Int, firstPosition: Int = 0) {
        self.logits = logits
        self.answerTokens = answerTokens
        self.answerStart = answerStart
        self.firstPosition = firstPosition
    }

    /// The number of positions of the sequence (its last is the last row of `logits`).
    public var length: Int { firstPosition + (logits.shape.first ?? 0) }

    /// The label of each row of `logits` but the last, after the shift by one: the answer token where
    /// the next position is an answer position, ``ignoreIndex`` elsewhere (visual and prompt tokens).
    public var shiftedLabels: [Int32] {
        let rows = logits.shape.first ?? 0
        var labels = [Int32](repeating: ignoreIndex, count: Swift.max(rows - 1, 0))
        for (offset, token) in answerTokens.enumerated() {
            let row = answerStart + offset - 1 - firstPosition
            if row >= 0 && row < rows - 1 { labels[row] = token }
        }
        return labels
    }
}

/// The label that marks a position the loss skips (PyTorch's default `ignore_index`).
public let ignoreIndex: Int32 = -100

/// Mean next-token cross-entropy of the answer tokens over a batch of sequences.
///
/// Prompt and visual positions are masked with ``ignoreIndex`` and the labels are shifted by one (the
/// logits at `t` are scored against the token at `t + 1`); the mean is over all answer tokens of the
/// batch, so a long answer weighs more than a short one, as in Hugging Face training.
///
/// - Throws: ``TrainingError`` (`invalidLossInput`) when a sequence's logits are not `[length, V]`,
///   the vocabularies differ, an answer does not fit in its sequence (or starts at position 0, which
///   no logit predicts), a token is outside the vocabulary, or no sequence has an answer token.
public func answerCrossEntropy(_ sequences: [AnswerSequence]) throws -> Tensor {
    guard let vocabulary = sequences.first?.logits.shape.last else {
        throw TrainingError(.invalidLossInput, "answer cross-entropy got no sequences; pass at least one scored sequence")
    }
    var rows: [Tensor] = []
    var labels: [Int32] = []
    for (index, sequence) in sequences.enumerated() {
        let shape = sequence.logits.shape
        guard shape.count == 2, shape[1] == vocabulary else {
            throw TrainingError(.invalidLossInput, "sequence \(index) has logits shaped \(shape); every sequence needs [length, \(vocabulary)]")
        }
        let length = sequence.length
        guard sequence.answerStart >= 1, sequence.answerStart + sequence.answerTokens.count <= length else {
            throw TrainingError(
                .invalidLossInput,
                "sequence \(index): answer of \(sequence.answerTokens.count) tokens at position \(sequence.answerStart) does not fit in \(length) positions after at least one prompt position")
        }
        guard sequence.firstPosition >= 0, sequence.answerStart - 1 >= sequence.firstPosition else {
            throw TrainingError(
                .invalidLossInput,
                "sequence \(index): the logits start at position \(sequence.firstPosition) but the answer at position \(sequence.answerStart) needs the row of position \(sequence.answerStart - 1)")
        }
        if let bad = sequence.answerTokens.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
            throw TrainingError(.invalidLossInput, "sequence \(index): answer token \(bad) is outside the vocabulary of \(vocabulary)")
        }
        guard !sequence.answerTokens.isEmpty else { continue }
        // Only the rows that predict an answer token are scored (the others are ignored, so leaving
        // them out changes no bit of the loss or its gradient, and saves copying `[T, V]` logits).
        let first = sequence.answerStart - 1 - sequence.firstPosition
        rows.append(sequence.logits.sliced(along: 0, first..<(first + sequence.answerTokens.count)))
        labels += sequence.answerTokens
    }
    guard !labels.isEmpty else {
        throw TrainingError(.invalidLossInput, "answer cross-entropy found no answer tokens in \(sequences.count) sequences; every example needs a non-empty answer")
    }
    let logits = rows.count == 1 ? rows[0] : Tensor.concatenated(rows, along: 0)
    return try Tensor.crossEntropy(logits: logits, targets: IndexTensor(labels), ignoreIndex: ignoreIndex)
}
