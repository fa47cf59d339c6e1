// Training a language backend (a Llama or GPT-2 decoder and its projector from codebook space) to
// answer about visual vectors: the answer cross-entropy of a Hugging Face causal LM with labels -100
// outside the answer (as LanguageBackendSurrogate scores CRAFT's L_SAL), AdamW, cosine schedule,
// global-norm clipping, mini-batches in a seeded order.
import CraftCore
import CraftModels
import Foundation
import TensorCore

/// One example for backend training: visual vectors in codebook space, a prompt and its answer.
public struct BackendTrainingExample: Sendable {
    /// Codebook-space vectors `[tokens, D]` (for example an image's code vectors).
    public var visual: Tensor
    /// The prompt text after the visual tokens.
    public var prompt: String
    /// The answer the backend should generate.
    public var answer: String

    /// Creates an example.
    public init(visual: Tensor, prompt: String, answer: String) {
        self.visual = visual
        self.prompt = prompt
        self.answer = answer
    }
}

/// The options of backend training; the optimiser's (``OptimizationOptions``) read and set as its own.
@dynamicMemberLookup
public struct BackendTrainerConfiguration: Sendable, Codable, Equatable {
    /// Which tensors are trained.
    public enum Parts: String, Sendable, Codable {
        /// Only the projector's weight and bias; the decoder stays frozen.
        case projector
        /// The projector and every decoder tensor.
        case all
    }

    /// Which tensors are trained.
    public var parts: Parts = .all
    /// Learning rate (1e-3), warmup, epochs (1), batch size (8), clipping, AdamW and the order seed (0).
    public var optimization: OptimizationOptions
    /// The token ending every answer; `nil` takes the backend's smallest end-of-sequence id, so greedy
    /// generation learns to stop (no token is appended when the backend has none).
    public var endOfSequenceToken: Int?
    /// Visual-token dropout: the share of examples, drawn afresh for each epoch and example from the
    /// seed, whose visual vectors are thinned to a random subset kept in their original order (as a
    /// token pruner keeps them), so a backend with learned absolute positions meets pruned images in
    /// training. 0 (the default) turns it off.
    public var visualTokenDropout: Double = 0
    /// The smallest share of visual tokens a thinned example keeps: it keeps `round(r·N)` of its `N`
    /// tokens (at least one), `r` uniform in `[minimumKeptTokenShare, 1)`.
    public var minimumKeptTokenShare: Double = 0.5
    /// Whether the output projection runs only over the rows that predict the answer (the default;
    /// the loss reads no other row, so the result agrees to float32 rounding) or over every position,
    /// as runs made before this option did (for reproducing them byte for byte).
    public var scoresAnswerRowsOnly = true

    /// Creates a configuration with the defaults above.
    public init(parts: Parts = .all, learningRate: Float = 1e-3, epochs: Int = 1, batchSize: Int = 8, seed: UInt64 = 0) {
        self.parts = parts
        optimization = OptimizationOptions(learningRate: learningRate, epochs: epochs, batchSize: batchSize, seed: seed)
    }

    /// The options of ``optimization``, read and set as this configuration's own.
    public subscript<Value>(dynamicMember field: WritableKeyPath<OptimizationOptions, Value>) -> Value {
        get { optimization[keyPath: field] }
        set { optimization[keyPath: field] = newValue }
    }

    /// Checks ranges.
    ///
    /// - Throws: ``TrainingError`` (`invalidConfiguration`) naming the first bad option.
    public func validate() throws {
        try optimization.validate(run: "backend ", suggestedLearningRate: "1e-3")
        try requireOption(visualTokenDropout >= 0 && visualTokenDropout <= 1,
                          "the visual-token dropout is \(visualTokenDropout); use a share in [0, 1] such as 0.5 (0 turns it off)")
        try requireOption(minimumKeptTokenShare > 0 && minimumKeptTokenShare <= 1,
                          "the minimum kept token share is \(minimumKeptTokenShare); use a share in (0, 1] such as 0.5")
    }
}

/// What the backend trainer reports after each optimiser step (its loss: the batch's mean answer
/// cross-entropy).
public typealias BackendTrainingProgress = PretrainingProgress

/// A trained backend and its tensors, ready to be written as a bundle.
public struct BackendTrainingResult: Sendable {
    /// The backend rebuilt from the trained tensors (same tokenizer, codebook, prefix and EOS ids).
    public var backend: DecoderBackend
    /// The decoder's tensors by canonical name (``LlamaModel`` or ``GPT2Model`` names, as their
    /// `init(configuration:weights:)` and ``ModelWriting`` take them).
    public var decoderWeights: [String: Tensor]
    /// The projector weight `[hiddenSize, D]`.
    public var projectorWeight: Tensor
    /// The projector bias `[hiddenSize]`, when the backend has one.
    public var projectorBias: Tensor?
    /// The loss of each optimiser step.
    public var losses: [Float]
}

/// Trains a ``DecoderBackend`` whose decoder is a ``LlamaModel`` or a ``GPT2Model``: its projector
/// alone (``BackendTrainerConfiguration/Parts/projector``) or projector and decoder together.
///
/// Each example becomes the sequence the backend sees at inference: its prefix tokens, the projected
/// visual vectors, the prompt's tokens, then the answer's tokens followed by the end-of-sequence token
/// (so greedy generation stops after the answer). The loss is ``answerCrossEntropy(_:)`` over the
/// answer and end-of-sequence positions of the batch (labels shifted by one, mean over all answer
/// tokens of the batch). Text is tokenized once, as ``DecoderBackend`` does (no special tokens).
/// Each step rebuilds the decoder from the parameters as differentiable leaves, then AdamW updates them
/// with the cosine schedule and global-norm clipping. Examples are shuffled each epoch with a
/// ``SplitMix64`` stream of the seed, so a run is reproducible.
///
/// ```swift
/// let trainer = try BackendTrainer(backend: backend, configuration: .init(parts: .all, epochs: 20))
/// let result = try trainer.train(examples) { print($0.step, $0.loss) }
/// try ModelWriting.write(try LlamaModel(configuration: c, weights: result.decoderWeights), to: dir)
/// ```
public struct BackendTrainer: Sendable {
    /// The decoder architectures the trainer rebuilds from parameters.
    enum Decoder: Sendable {
        case llama(LlamaConfiguration)
        case gpt2(GPT2Configuration)

        func model(_ weights: [String: Tensor]) throws -> any CausalLanguageModel {
            switch self {
            case .llama(let configuration):
                return try LlamaModel(configuration: configuration, weights: weights, origin: "the trained Llama parameters")
            case .gpt2(let configuration):
                return try GPT2Model(configuration: configuration, weights: weights, origin: "the trained GPT-2 parameters")
            }
        }
    }

    /// An example with its text tokenized.
    struct TokenizedExample: Sendable {
        var visual: Tensor
        var prompt: [Int]
        var answer: [Int]
    }

    static let projectorWeightName = "projector.weight"
    static let projectorBiasName = "projector.bias"

    /// The backend training starts from.
    public let backend: DecoderBackend
    /// The options.
    public let configuration: BackendTrainerConfiguration
    let decoder: Decoder
    let endOfSequence: Int?

    /// Prepares training of `backend`.
    ///
    /// - Throws: ``TrainingError`` (`invalidConfiguration`) when the backend's decoder is neither a
    ///   ``LlamaModel`` nor a ``GPT2Model``, an option is out of range, or the end-of-sequence id is
    ///   outside the vocabulary.
    public init(backend: DecoderBackend, configuration: BackendTrainerConfiguration) throws {
        try configuration.validate()
        if let llama = backend.model as? LlamaModel {
            decoder = .llama(llama.configuration)
        } else if let gpt2 = backend.model as? GPT2Model {
            decoder = .gpt2(gpt2.configuration)
        } else {
            throw TrainingError(.invalidConfiguration, "backend training supports Llama and GPT-2 decoders, not \(type(of: backend.model)); build the DecoderBackend on a LlamaModel or GPT2Model")
        }
        let endOfSequence = configuration.endOfSequenceToken ?? backend.endOfSequenceTokens.min()
        if let token = endOfSequence, token < 0 || token >= backend.vocabularySize {
            throw TrainingError(.invalidConfiguration, "the end-of-sequence id \(token) is outside the vocabulary of \(backend.vocabularySize)")
        }
        self.backend = backend
        self.configuration = configuration
        self.endOfSequence = endOfSequence
    }

    /// The decoder's current tensors by canonical name.
    var decoderWeights: [String: Tensor] {
        switch decoder {
        case .llama: return (backend.model as? LlamaModel)?.parameters ?? [:]
        case .gpt2: return (backend.model as? GPT2Model)?.parameters ?? [:]
        }
    }

    /// The starting parameters: trainable ones, and the frozen rest (the decoder when only the projector trains).
    func initialParameters() -> (trainable: ParameterSet, frozen: [String: Tensor]) {
        var projector = [Self.projectorWeightName: backend.projectorWeight]
        if let bias = backend.projectorBias { projector[Self.projectorBiasName] = bias }
        switch configuration.parts {
        case .projector:
            return (ParameterSet(projector), decoderWeights)
        case .all:
            return (ParameterSet(decoderWeights.merging(projector) { first, _ in first }), [:])
        }
    }

    /// Tokenizes the examples and checks them.
    func tokenized(_ examples: [BackendTrainingExample]) throws -> [TokenizedExample] {
        try examples.enumerated().map { index, example in
            guard example.visual.rank == 2, example.visual.shape[1] == backend.codebookDimension else {
                throw TrainingError(.invalidDataset, "backend example \(index) has visual vectors shaped \(example.visual.shape); they must be [tokens, \(backend.codebookDimension)]")
            }
            let prompt = try backend.tokenizer.encode(example.prompt, addSpecialTokens: false)
            let answer = try backend.tokenizer.encode(example.answer, addSpecialTokens: false) + (endOfSequence.map { [$0] } ?? [])
            guard !answer.isEmpty else {
                throw TrainingError(.invalidDataset, "backend example \(index) has an empty answer and no end-of-sequence token; give every example an answer")
            }
            let length = backend.prefixTokens.count + example.visual.shape[0] + prompt.count + answer.count
            guard length <= backend.contextLength else {
                throw TrainingError(.invalidDataset, "backend example \(index) takes \(length) positions but the backend's context holds \(backend.contextLength); shorten its prompt or answer")
            }
            guard backend.prefixTokens.count + example.visual.shape[0] + prompt.count >= 1 else {
                throw TrainingError(.invalidDataset, "backend example \(index) has no visual vectors, prompt or prefix before its answer; nothing would predict the first answer token")
            }
            return TokenizedExample(visual: example.visual.detached(), prompt: prompt, answer: answer)
        }
    }

    /// Visual-token dropout of example `example` in epoch `epoch`: with probability
    /// ``BackendTrainerConfiguration/visualTokenDropout`` (a ``SplitMix64`` stream of the seed, the
    /// epoch and the example's index), a random `round(r·N)` of the `N` rows, `r` uniform in
    /// `[minimumKeptTokenShare, 1)`, in their original order; otherwise `visual` unchanged.
    func thinned(_ visual: Tensor, epoch: Int, example: Int) throws -> Tensor {
        var generator = SplitMix64(seed: configuration.seed &+ 0xD1B5_4A32_D192_ED03 &* UInt64(epoch + 1) &+ UInt64(example) &* 0x9E37_79B9)
        func uniform() -> Double { Double(generator.next() >> 11) / Double(1 << 53) }
        let count = visual.shape[0]
        guard uniform() < configuration.visualTokenDropout, count > 1 else { return visual }
        let share = configuration.minimumKeptTokenShare + (1 - configuration.minimumKeptTokenShare) * uniform()
        let kept = Swift.min(count, Swift.max(1, Int((Double(count) * share).rounded())))
        var order = Array(0..<count)
        for position in 0..<kept {
            order.swapAt(position, position + Int(generator.next() % UInt64(count - position)))
        }
        return try visual.rows(at: IndexTensor(Array(order[0..<kept]).sorted()))
    }

    /// The mean answer cross-entropy of `batch` under the backend built from `parameters` (trainable
    /// leaves merged with the frozen tensors).
    func loss(_ batch: [TokenizedExample], trainable: ParameterSet, frozen: [String: Tensor]) throws -> Tensor {
        var weights = frozen
        var projectorWeight = backend.projectorWeight
        var projectorBias = backend.projectorBias
        for name in trainable.names {
            let tensor = trainable[name]!
            switch name {
            case Self.projectorWeightName: projectorWeight = tensor
            case Self.projectorBiasName: projectorBias = tensor
            default: weights[name] = tensor
            }
        }
        let model = try decoder.model(weights)
        let prefix = backend.prefixTokens.isEmpty ? nil : try model.embed(tokens: backend.prefixTokens)
        var sequences: [AnswerSequence] = []
        for example in batch {
            var pieces: [Tensor] = prefix.map { [$0] } ?? []
            if example.visual.shape[0] > 0 { pieces.append(example.visual.linear(weight: projectorWeight, bias: projectorBias)) }
            if !example.prompt.isEmpty { pieces.append(try model.embed(tokens: example.prompt)) }
            pieces.append(try model.embed(tokens: example.answer))
            let embeddings = Tensor.concatenated(pieces, along: 0)
            let start = backend.prefixTokens.count + example.visual.shape[0] + example.prompt.count
            let first = configuration.scoresAnswerRowsOnly && start >= 1 ? start - 1 : 0
            var cache = model.makeCache()
            let logits = try model.logits(embeddings: embeddings, positionIDs: nil, fromRow: first, cache: &cache)
            sequences.append(AnswerSequence(logits: logits, answerTokens: example.answer.map { Int32($0) }, answerStart: start,
                                            firstPosition: first))
        }
        return try answerCrossEntropy(sequences)
    }

    /// The loss of `examples` as one batch and its gradients with respect to the trainable tensors.
    func lossAndGradients(_ examples: [BackendTrainingExample]) throws -> (loss: Float, gradients: ParameterSet) {
        let (trainable, frozen) = initialParameters()
        let leaves = trainable.requiringGradients()
        let value = try loss(try tokenized(examples), trainable: leaves, frozen: frozen)
        return (value.scalar, leaves.gradients(of: value))
    }

    /// Trains on `examples` and returns the trained backend and its tensors.
    ///
    /// - Parameters:
    ///   - examples: the training examples (at least one).
    ///   - progress: called after every optimiser step.
    /// - Throws: ``TrainingError`` (`invalidDataset`) for an example that does not fit the backend,
    ///   (`invalidLossInput`) when the loss becomes non-finite; ``ModelError`` from the decoder.
    public func train(
        _ examples: [BackendTrainingExample], progress: ((BackendTrainingProgress) -> Void)? = nil
    ) throws -> BackendTrainingResult {
        guard !examples.isEmpty else {
            throw TrainingError(.invalidDataset, "backend training got no examples; pass at least one")
        }
        let data = try tokenized(examples)
        var (parameters, frozen) = initialParameters()
        let batchSize = configuration.batchSize
        let losses = try configuration.optimization.optimise(
            &parameters, run: "backend ", batchesPerEpoch: (data.count + batchSize - 1) / batchSize,
            batches: { generator in
                let order = Self.shuffled(data.count, generator: &generator)
                return stride(from: 0, to: data.count, by: batchSize).map {
                    Array(order[$0..<Swift.min($0 + batchSize, data.count)])
                }
            },
            loss: { epoch, indices, leaves in
                let batch = try indices.map { index in
                    var example = data[index]
                    if configuration.visualTokenDropout > 0 {
                        example.visual = try thinned(example.visual, epoch: epoch, example: index)
                    }
                    return example
                }
                return try loss(batch, trainable: leaves, frozen: frozen)
            },
            progress: { progress?($0) })
        for name in parameters.names where name != Self.projectorWeightName && name != Self.projectorBiasName {
            frozen[name] = parameters[name]!
        }
        let projectorWeight = parameters[Self.projectorWeightName]!
        let projectorBias = parameters[Self.projectorBiasName]
        let model = try decoder.model(frozen)
        let trained = try DecoderBackend(
            model: model, tokenizer: backend.tokenizer, codebook: backend.codebook, projectorWeight: projectorWeight,
            projectorBias: projectorBias, contextLength: backend.contextLength, prefixTokens: backend.prefixTokens,
            endOfSequenceTokens: backend.endOfSequenceTokens)
        return BackendTrainingResult(backend: trained, decoderWeights: frozen, projectorWeight: projectorWeight,
                                     projectorBias: projectorBias, losses: losses)
    }

    /// The share of `examples` whose greedy answer from `backend` equals the expected answer, ignoring
    /// case and surrounding white space.
    ///
    /// - Parameter maximumNewTokens: the most tokens generated per answer.
    public static func accuracy(of backend: DecoderBackend, on examples: [BackendTrainingExample], maximumNewTokens: Int = 16) throws -> Double {
        guard !examples.isEmpty else { return 0 }
        var correct = 0
        for example in examples {
            let answer = try backend.generate([.vectors(example.visual), .text(example.prompt)],
                                              options: GenerationOptions(maximumNewTokens: maximumNewTokens))
            if AnswerScoring.matches(answer.text, expected: example.answer) { correct += 1 }
        }
        return Double(correct) / Double(examples.count)
    }

    /// A seeded permutation of `0..<count` (Fisher–Yates).
    static func shuffled(_ count: Int, generator: inout SplitMix64) -> [Int] {
        var order = Array(0..<count)
        guard count > 1 else { return order }
        for index in stride(from: count - 1, to: 0, by: -1) {
            let other = Int(generator.next() % UInt64(index + 1))
            order.swapAt(index, other)
        }
        return order
    }
}
