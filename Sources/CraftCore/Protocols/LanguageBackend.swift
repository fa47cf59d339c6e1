import TensorCore

/// One piece of a prompt for a ``LanguageBackend``.
public enum PromptSegment: Sendable {
    /// Text, tokenized by the backend (with its prompt template applied by the backend).
    case text(String)
    /// Token ids already in the backend's vocabulary (for example the answer tokens of a training
    /// example, whose logits the surrogate alignment loss scores).
    case tokens([Int32])
    /// An image's visual tokens. The backend projects `features` when present (so gradients flow to
    /// the encoder), otherwise the codebook vectors of `codes`.
    case visual(VisualTokens)
    /// Codebook-space vectors `[count, D]` (for example `z_q_hat`), projected like visual tokens.
    case vectors(Tensor)
}

/// How to generate text.
public struct GenerationOptions: Sendable, Equatable {
    /// The most tokens to generate.
    public var maximumNewTokens: Int = 32
    /// Softmax temperature; 0 means greedy decoding (deterministic).
    public var temperature: Float = 0
    /// Sample only among the `topK` most likely tokens (0 = no limit); ignored when greedy.
    public var topK: Int = 0
    /// Stop after any of these strings appears in the output (it is not included).
    public var stopSequences: [String] = []
    /// The seed of the sampler, so sampled generation is reproducible.
    public var seed: UInt64 = 0
    /// How visual tokens are numbered in the decoder: consecutively (the default) or by their grid
    /// index, so pruned tokens keep the positions they had before pruning (docs/token-pruning.md).
    /// Only backends with ``LanguageBackend/supportsOriginalVisualPositionIDs`` take `.original`.
    public var visualPositionIDs: VisualPositionIDs = .consecutive

    /// Creates options; defaults give greedy decoding of at most 32 tokens.
    public init(
        maximumNewTokens: Int = 32, temperature: Float = 0, topK: Int = 0, stopSequences: [String] = [], seed: UInt64 = 0,
        visualPositionIDs: VisualPositionIDs = .consecutive
    ) {
        self.maximumNewTokens = maximumNewTokens
        self.temperature = temperature
        self.topK = topK
        self.stopSequences = stopSequences
        self.seed = seed
        self.visualPositionIDs = visualPositionIDs
    }
}

/// How a backend numbers the decoder positions of an image's visual tokens (docs/token-pruning.md,
/// "Position ids").
///
/// With every token present the two agree. After pruning, `.consecutive` closes the gaps (the kept
/// tokens take positions `offset, offset + 1, …` and the text follows right after them), while
/// `.original` gives the token at grid index `g = row · columns + column` position `offset + g` and
/// starts the text after it at `offset + rows · columns`, as if nothing had been pruned.
public enum VisualPositionIDs: String, Sendable, Codable, CaseIterable {
    /// Kept tokens are renumbered `offset, offset + 1, …` (the default).
    case consecutive
    /// Kept tokens keep the position ids they have in the unpruned prompt.
    case original
}

/// Why generation stopped.
public enum FinishReason: String, Sendable, Codable {
    /// The model produced its end-of-sequence token.
    case endOfSequence = "eos"
    /// A stop sequence appeared.
    case stopSequence = "stop"
    /// ``GenerationOptions/maximumNewTokens`` was reached.
    case length
    /// The context length was reached.
    case contextFull = "context"
}

/// Generated text and the tokens behind it.
public struct GeneratedText: Sendable, Equatable {
    /// The decoded text (without the prompt).
    public var text: String
    /// The generated token ids.
    public var tokens: [Int32]
    /// Why generation stopped.
    public var finishReason: FinishReason

    /// Creates a result.
    public init(text: String, tokens: [Int32], finishReason: FinishReason) {
        self.text = text
        self.tokens = tokens
        self.finishReason = finishReason
    }
}

/// The logits of a whole prompt, with where each segment landed.
public struct PromptLogits: Sendable {
    /// Next-token logits `[rows, vocabulary]`: row `t` predicts the token at position
    /// `firstPosition + t + 1`.
    public var logits: Tensor
    /// The positions each input segment occupies, in order (template tokens the backend adds fall
    /// outside every range).
    public var segmentRanges: [Range<Int>]
    /// The position row 0 of `logits` stands for: 0 when every position has logits, more when only
    /// the last rows were computed (``SurrogateBackend/answerLogits(for:)``).
    public var firstPosition: Int

    /// Creates logits.
    public init(logits: Tensor, segmentRanges: [Range<Int>], firstPosition: Int = 0) {
        self.logits = logits
        self.segmentRanges = segmentRanges
        self.firstPosition = firstPosition
    }

    /// The first position whose logits ``SurrogateBackend/answerLogits(for:)`` keeps: the one before
    /// the last segment (0 when there is none before it).
    public static func answerFirstPosition(_ segmentRanges: [Range<Int>]) -> Int {
        Swift.max((segmentRanges.last?.lowerBound ?? 1) - 1, 0)
    }
}

/// A language model that reads a codebook's visual tokens and answers prompts about them
/// (docs/architecture.md). Runtimes (Llama, GPT-2, …) implement it; so can anything that generates
/// text from visual tokens (a lookup table, a remote model), since serving needs only this.
///
/// It declares the codebook hash it was trained to read; the compatibility checker refuses to wire
/// it to an encoder with another hash. A backend that can also serve as CRAFT's training surrogate
/// implements ``SurrogateBackend`` (projector and differentiable logits) as well.
///
/// ```swift
/// let answer = try backend.generate(
///     [.visual(tokens), .text("What is in the image?")], options: GenerationOptions(maximumNewTokens: 16))
/// ```
public protocol LanguageBackend: Sendable {
    /// The hash of the codebook this backend reads (``CodebookSpace/hash``).
    var codebookHash: String { get }
    /// The most positions a prompt plus its generation may occupy.
    var contextLength: Int { get }
    /// The token ids of `text` in this backend's vocabulary (no template, no special tokens).
    func tokenize(_ text: String) throws -> [Int32]
    /// Text for token ids.
    func detokenize(_ tokens: [Int32]) throws -> String
    /// Generates text after the prompt.
    func generate(_ prompt: [PromptSegment], options: GenerationOptions) throws -> GeneratedText
    /// Generates text after each of several prompts, with the same options; each result is what
    /// ``generate(_:options:)`` gives that prompt alone. Backends that decode several sequences
    /// together (Craft's decoders) share work across them. Has a default implementation (one prompt
    /// at a time).
    func generate(batch prompts: [[PromptSegment]], options: GenerationOptions) throws -> [GeneratedText]
    /// The shape of the decoder, for counting prefill FLOPs (``PruningCost``); `nil` when unknown.
    /// Has a default implementation (`nil`).
    var decoderShape: DecoderShape? { get }
    /// The number of decoder positions `prompt` occupies, including tokens the backend adds before
    /// every prompt. Has a default implementation (the segments alone).
    func promptPositions(_ prompt: [PromptSegment]) throws -> Int
    /// Whether the backend honours ``GenerationOptions/visualPositionIDs`` `.original` (Craft's
    /// Llama, Qwen2 and GPT-2 backends do). Has a default implementation (`false`); callers such as
    /// the pipeline refuse `.original` for a backend without it rather than let it renumber silently.
    var supportsOriginalVisualPositionIDs: Bool { get }
}

extension GenerationOptions {
    /// Throws when these options ask `backend` for original visual position ids it cannot give.
    ///
    /// - Throws: ``CraftCoreError`` (`invalidParameter`) naming the backend type.
    public func checkVisualPositionIDs(supportedBy backend: any LanguageBackend) throws {
        guard visualPositionIDs == .original, !backend.supportsOriginalVisualPositionIDs else { return }
        throw CraftCoreError(
            .invalidParameter,
            "the backend (\(type(of: backend))) cannot keep the original position ids of pruned visual tokens; drop --keep-position-ids (or use visualPositionIDs .consecutive) with this backend")
    }
}

/// A ``LanguageBackend`` that can serve as CRAFT's frozen training surrogate: it accepts
/// codebook-space vectors (``PromptSegment/vectors(_:)`` or ``VisualTokens/features``) through its
/// projector and gives differentiable logits, so the surrogate alignment loss back-propagates through
/// the frozen backend into the encoder.
public protocol SurrogateBackend: LanguageBackend {
    /// The dimension D of the codebook-space vectors the projector takes.
    var codebookDimension: Int { get }
    /// The hidden size of the language model (the projector's output).
    var hiddenSize: Int { get }
    /// The vocabulary size V of the logits.
    var vocabularySize: Int { get }
    /// The frozen projector from codebook space `[count, D]` to embeddings `[count, hiddenSize]`.
    /// Differentiable with respect to its input.
    func project(_ codebookVectors: Tensor) throws -> Tensor
    /// Next-token logits for every position of the prompt, recorded for differentiation with respect
    /// to any visual features or vectors in it (the backend's own weights are frozen).
    ///
    /// - Throws: when the visual tokens' codebook hash differs from ``LanguageBackend/codebookHash``,
    ///   or the prompt exceeds ``LanguageBackend/contextLength``.
    func logits(for prompt: [PromptSegment]) throws -> PromptLogits
    /// ``logits(for:)`` of only the rows that predict the last segment's tokens (the answer the
    /// alignment loss scores): positions from the one before the last segment to the end, with
    /// ``PromptLogits/firstPosition`` saying where they start. The output projection then runs over a
    /// few rows instead of the whole prompt (with a 32k vocabulary, a sixth of a training step's
    /// arithmetic); the rows agree with a whole-prompt call to float32 rounding (a product over fewer
    /// rows may take other kernels). Has a default implementation (every row computed, then the last
    /// ones kept).
    func answerLogits(for prompt: [PromptSegment]) throws -> PromptLogits
    /// ``answerLogits(for:)`` of several prompts, in order. A backend that runs them through its model
    /// together (larger matrix products, and the output projection's weights read once for all)
    /// implements it; results agree with one call per prompt to float32 rounding. Has a default
    /// implementation (one prompt at a time).
    func answerLogits(forBatch prompts: [[PromptSegment]]) throws -> [PromptLogits]
    /// The token that ends an answer (the end-of-sequence id the backend was trained to emit after
    /// one); the alignment loss scores it after the answer tokens. `nil` when the backend has none.
    /// Has a default implementation (`nil`).
    var endOfAnswerToken: Int32? { get }
}

extension SurrogateBackend {
    /// No end-of-answer token.
    public var endOfAnswerToken: Int32? { nil }

    /// Every row computed, then the ones from the position before the last segment kept.
    public func answerLogits(for prompt: [PromptSegment]) throws -> PromptLogits {
        let whole = try logits(for: prompt)
        let first = PromptLogits.answerFirstPosition(whole.segmentRanges)
        let rows = whole.logits.shape.first ?? 0
        guard first > 0, first < rows else { return whole }
        return PromptLogits(logits: whole.logits.sliced(along: 0, first..<rows), segmentRanges: whole.segmentRanges, firstPosition: first)
    }

    /// One prompt at a time.
    public func answerLogits(forBatch prompts: [[PromptSegment]]) throws -> [PromptLogits] {
        try prompts.map { try answerLogits(for: $0) }
    }
}

// MARK: - Cost accounting (optional)

extension LanguageBackend {
    /// One prompt at a time.
    public func generate(batch prompts: [[PromptSegment]], options: GenerationOptions) throws -> [GeneratedText] {
        try prompts.map { try generate($0, options: options) }
    }

    /// The shape of the decoder behind this backend, for counting prefill FLOPs (``PruningCost``);
    /// `nil` when the backend does not describe one (the default).
    public var decoderShape: DecoderShape? { nil }

    /// `false`: a backend takes only consecutive visual position ids unless it says otherwise.
    public var supportsOriginalVisualPositionIDs: Bool { false }

    /// The number of positions `prompt` occupies in the decoder: text tokens, token ids, visual
    /// tokens and vectors, plus whatever the backend puts before every prompt.
    ///
    /// The default counts the segments alone (text through ``tokenize(_:)``); backends that add
    /// tokens of their own (a BOS token) provide their own count.
    public func promptPositions(_ prompt: [PromptSegment]) throws -> Int {
        try prompt.reduce(0) { total, segment in
            switch segment {
            case .text(let text): total + (try tokenize(text)).count
            case .tokens(let ids): total + ids.count
            case .visual(let tokens): total + tokens.count
            case .vectors(let vectors): total + (vectors.shape.first ?? 0)
            }
        }
    }
}

// MARK: - Continuous batching (optional)

/// A ``LanguageBackend`` that decodes sequences one step at a time in a ``DecodingBatch``, so that
/// sequences join a running batch and leave it between steps (continuous batching: `craft serve`
/// decodes concurrent requests together this way, docs/serve.md).
///
/// Each sequence's tokens are the ones ``LanguageBackend/generate(_:options:)`` gives its prompt
/// alone, whatever else is in the batch and whenever it joined.
public protocol ContinuousBatchingBackend: LanguageBackend {
    /// An empty batch of this backend.
    func makeDecodingBatch() -> any DecodingBatch
}

/// Sequences being decoded together (``ContinuousBatchingBackend``). Not thread-safe: one thread
/// drives a batch at a time.
///
/// ```swift
/// var batch = backend.makeDecodingBatch()
/// var steps = try batch.join([DecodingRequest(id: 1, prompt: segments, options: options)])
/// while !batch.isEmpty { steps = try batch.step() }   // each step: one token of every sequence
/// ```
public protocol DecodingBatch {
    /// The ids of the sequences still decoding, in order.
    var activeIDs: [Int] { get }
    /// Prefills the prompts of `requests` together and adds them to the batch; the result has one
    /// ``DecodingStep`` per request, in order: its first token, or its result when it finished at
    /// once (then it does not join).
    ///
    /// - Throws: when a request's options are invalid, an id is already in the batch, or a prompt
    ///   cannot be read (too long for the context, visual tokens of another codebook); the batch is
    ///   then unchanged.
    mutating func join(_ requests: [DecodingRequest]) throws -> [DecodingStep]
    /// Decodes one token of every sequence in the batch: one ``DecodingStep`` per sequence, in
    /// ``activeIDs`` order; finished sequences leave the batch.
    mutating func step() throws -> [DecodingStep]
    /// Removes a sequence (its client left, or its time ran out); an unknown id is ignored.
    mutating func leave(_ id: Int)
}

extension DecodingBatch {
    /// Whether no sequence is decoding.
    public var isEmpty: Bool { activeIDs.isEmpty }
}

/// A prompt to decode in a ``DecodingBatch``, under an id of the caller's choosing.
public struct DecodingRequest: Sendable {
    /// The caller's id for the sequence, unique in the batch.
    public var id: Int
    /// The prompt.
    public var prompt: [PromptSegment]
    /// How this sequence is generated (each sequence has its own).
    public var options: GenerationOptions

    /// Creates a request.
    public init(id: Int, prompt: [PromptSegment], options: GenerationOptions) {
        self.id = id
        self.prompt = prompt
        self.options = options
    }
}

/// What one step did to one sequence of a ``DecodingBatch``: a new token, or the end.
public struct DecodingStep: Sendable, Equatable {
    /// The sequence's id.
    public var id: Int
    /// The token generated at this step (`nil` when the sequence finished without one).
    public var token: Int32?
    /// The whole result when the sequence finished at this step (it has then left the batch).
    public var finished: GeneratedText?

    /// Creates a step.
    public init(id: Int, token: Int32?, finished: GeneratedText?) {
        self.id = id
        self.token = token
        self.finished = finished
    }
}
