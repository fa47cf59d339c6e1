import CraftCore
import TensorCore

/// The differentiable forward of an encoder being trained: the straight-through quantization of the
/// batch and, optionally, pooled image features for the contrastive term.
public struct EncoderForward: Sendable {
    /// The straight-through quantization, shaped `[batch, tokens, D]`.
    public var quantization: StraightThroughQuantization
    /// Pooled image features `[batch, E]` in the text tower's embedding space; `nil` turns `L_con` off.
    public var pooledFeatures: Tensor?

    /// Creates a forward result.
    public init(quantization: StraightThroughQuantization, pooledFeatures: Tensor?) {
        self.quantization = quantization
        self.pooledFeatures = pooledFeatures
    }
}

/// An encoder CRAFT trains: named parameters and a forward pass that uses the parameters it is given
/// (so the trainer can pass differentiable leaves and compare with the base encoder).
public protocol TrainableEncoder: Sendable {
    /// The current parameters.
    var parameters: ParameterSet { get }
    /// The number of entries K of the codebook the encoder quantizes into (for usage statistics).
    var codebookEntries: Int { get }
    /// Replaces the parameters (same names and shapes).
    mutating func setParameters(_ parameters: ParameterSet) throws
    /// The forward pass over a batch of inputs `[batch, ...]` with `parameters` in place of the stored ones.
    func forward(_ inputs: Tensor, parameters: ParameterSet) throws -> EncoderForward
    /// `L_commit` of a forward's quantization. Has a default implementation (`mean ‖z_e − stopgrad(z_q)‖²`,
    /// the depth-1 loss); encoders with a residual codebook use its per-level loss
    /// (`Codebook.commitmentLoss(_:)`).
    func commitmentLoss(_ quantization: StraightThroughQuantization) -> Tensor
}

extension TrainableEncoder {
    /// `mean ‖z_e − stopgrad(z_q)‖²`.
    public func commitmentLoss(_ quantization: StraightThroughQuantization) -> Tensor {
        Tensor.meanSquaredError(quantization.encoderOutput, quantization.codeVectors.stopGradient())
    }
}

/// The frozen surrogate language model the alignment term scores answers with.
public protocol TrainingSurrogate: Sendable {
    /// The logits of `[visual tokens, prompt, answer]` with where the answer starts; differentiable
    /// with respect to `visual` (`[tokens, D]`, the straight-through `z_q_hat`).
    func score(visual: Tensor, prompt: String, answer: String) throws -> AnswerSequence
    /// ``score(visual:prompt:answer:)`` of a micro-batch, in order (`visual[i]` `[tokens, D]`). A
    /// surrogate that runs the examples through its model together implements it (results agree with
    /// one call per example to float32 rounding). Has a default implementation (one at a time).
    func score(visual: [Tensor], prompts: [String], answers: [String]) throws -> [AnswerSequence]
    /// The surrogate's (greedy) answer to `prompt` about `visual`, for validation accuracy.
    func answer(visual: Tensor, prompt: String) throws -> String
}

extension TrainingSurrogate {
    /// One example at a time.
    public func score(visual: [Tensor], prompts: [String], answers: [String]) throws -> [AnswerSequence] {
        try checkBatch(visual, prompts, answers)
        return try visual.indices.map { try score(visual: visual[$0], prompt: prompts[$0], answer: answers[$0]) }
    }

    /// Checks that a micro-batch has one prompt and one answer per visual input.
    ///
    /// - Throws: ``TrainingError`` (`invalidLossInput`) when the counts differ.
    public func checkBatch(_ visual: [Tensor], _ prompts: [String], _ answers: [String]) throws {
        guard prompts.count == visual.count, answers.count == visual.count else {
            throw TrainingError(.invalidLossInput, "a scored batch needs one prompt and one answer per image; got \(visual.count) images, \(prompts.count) prompts and \(answers.count) answers")
        }
    }
}

extension AnswerSequence {
    /// The scored sequences of `prompts`, each followed by its answer's tokens and the backend's
    /// end-of-answer token (the last segment, which the alignment loss scores): the answer rows of all
    /// of them in one call of the backend (``SurrogateBackend/answerLogits(forBatch:)``), or, with
    /// `answerRowsOnly` false, every row of one prompt at a time.
    ///
    /// - Throws: what the backend throws; ``TrainingError`` (`invalidLossInput`) when it places the
    ///   segments other than one range per segment.
    public static func scored(
        by backend: any SurrogateBackend, prompts: [[PromptSegment]], answers: [String], answerRowsOnly: Bool = true
    ) throws -> [AnswerSequence] {
        let tokens = try answers.map { try backend.tokenize($0) + (backend.endOfAnswerToken.map { [$0] } ?? []) }
        let full = prompts.indices.map { prompts[$0] + [PromptSegment.tokens(tokens[$0])] }
        let results = answerRowsOnly ? try backend.answerLogits(forBatch: full) : try full.map { try backend.logits(for: $0) }
        return try results.indices.map { index in
            let result = results[index]
            guard result.segmentRanges.count == full[index].count, let answerRange = result.segmentRanges.last else {
                throw TrainingError(.invalidLossInput, "the surrogate returned \(result.segmentRanges.count) segment ranges for \(full[index].count) segments")
            }
            return AnswerSequence(logits: result.logits, answerTokens: tokens[index], answerStart: answerRange.lowerBound,
                                  firstPosition: result.firstPosition)
        }
    }
}

/// A frozen text tower giving the contrastive term's text embeddings.
public protocol TextEmbedder: Sendable {
    /// Embeddings `[texts.count, E]` of the texts (no gradient is needed).
    func embed(_ texts: [String]) throws -> Tensor
}

/// Any ``SurrogateBackend`` used as the training surrogate: scores `[.vectors(z_q_hat), .text(prompt),
/// .tokens(answer)]` and answers with greedy generation.
public struct LanguageBackendSurrogate: TrainingSurrogate {
    /// The frozen backend.
    public let backend: any SurrogateBackend
    /// The most tokens generated for a validation answer.
    public var maximumAnswerTokens: Int

    /// Wraps a backend.
    public init(backend: any SurrogateBackend, maximumAnswerTokens: Int = 16) {
        self.backend = backend
        self.maximumAnswerTokens = maximumAnswerTokens
    }

    /// Scores the answer tokens, then the backend's end-of-answer token, after the visual vectors and the prompt.
    public func score(visual: Tensor, prompt: String, answer: String) throws -> AnswerSequence {
        try score(visual: [visual], prompts: [prompt], answers: [answer])[0]
    }

    /// Scores a micro-batch in one call of the backend (``SurrogateBackend/answerLogits(forBatch:)``).
    public func score(visual: [Tensor], prompts: [String], answers: [String]) throws -> [AnswerSequence] {
        try checkBatch(visual, prompts, answers)
        return try AnswerSequence.scored(by: backend, prompts: visual.indices.map { [.vectors(visual[$0]), .text(prompts[$0])] },
                                         answers: answers)
    }

    /// Greedy generation after the visual vectors and the prompt.
    public func answer(visual: Tensor, prompt: String) throws -> String {
        try backend.generate([.vectors(visual), .text(prompt)], options: GenerationOptions(maximumNewTokens: maximumAnswerTokens)).text
    }
}
