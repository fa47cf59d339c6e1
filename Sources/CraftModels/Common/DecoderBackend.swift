// A `SurrogateBackend` (a `LanguageBackend` that can also train encoders, docs/architecture.md) built from
// a decoder (Llama, Qwen2, GPT-2), its tokenizer, the codebook it reads and a frozen projector from
// codebook space to the decoder's hidden size: linear, or LLaVA/VILA's two-layer MLP with GELU.
import CraftCore
import Foundation
import TensorCore

/// A language backend that reads visual tokens through a frozen projector, over any
/// ``CausalLanguageModel``.
///
/// A prompt's segments become input embeddings in order: text and token ids through the decoder's
/// embedding table, visual tokens and codebook-space vectors through the projector: linear
/// (`vectors · weightᵀ + bias`), or `mlp2x_gelu` (that, then exact GELU, then ``mlpOutput``) as
/// LLaVA's and VILA's `mm_projector`. Visual tokens use their `features` when present (so gradients reach
/// the encoder), otherwise the codebook vectors of their codes.
///
/// ```swift
/// let backend = try DecoderBackend(model: llama, tokenizer: tokenizer, codebook: codebook,
///                                  projectorWeight: w, projectorBias: b, prefixTokens: [1], endOfSequenceTokens: [2])
/// let answer = try backend.generate([.visual(tokens), .text("What is this?")], options: .init(maximumNewTokens: 8))
/// ```
public struct DecoderBackend: SurrogateBackend {
    /// The decoder.
    public let model: any CausalLanguageModel
    /// Its tokenizer.
    public let tokenizer: Tokenizer
    /// The codebook the backend reads (its hash is ``codebookHash``).
    public let codebook: any CodebookSpace
    /// `[hiddenSize, D]` projector weight.
    public let projectorWeight: Tensor
    /// `[hiddenSize]` projector bias, or `nil`.
    public let projectorBias: Tensor?
    /// The second layer of an `mlp2x_gelu` projector (`[hiddenSize, hiddenSize]`), applied after an
    /// exact GELU; `nil` for a linear projector.
    public let mlpOutput: ProjectorLayer?
    /// The most positions a prompt plus its generation may occupy.
    public let contextLength: Int
    /// Token ids put before every prompt (for example a BOS token); outside every segment range.
    public let prefixTokens: [Int]
    /// Ids that end generation (not included in the result).
    public let endOfSequenceTokens: Set<Int>
    /// The smallest of ``endOfSequenceTokens`` (what ``BackendTrainer`` appends to every answer).
    public var endOfAnswerToken: Int32? { endOfSequenceTokens.min().map { Int32($0) } }

    /// Creates a backend, checking that the projector fits the codebook and the decoder.
    ///
    /// - Throws: ``ModelError`` (`shapeMismatch`) when the projector is not `[hiddenSize, D]` (and the bias
    ///   `[hiddenSize]`), or (`invalidInput`) for a non-positive context length or a prefix id outside
    ///   the vocabulary.
    public init(model: any CausalLanguageModel, tokenizer: Tokenizer, codebook: any CodebookSpace, projectorWeight: Tensor,
                projectorBias: Tensor? = nil, mlpOutput: ProjectorLayer? = nil, contextLength: Int, prefixTokens: [Int] = [],
                endOfSequenceTokens: Set<Int> = []) throws(ModelError) {
        guard projectorWeight.shape == [model.hiddenSize, codebook.dimension] else {
            throw ModelError(.shapeMismatch, "the projector weight has shape \(projectorWeight.shape) but must be [\(model.hiddenSize), \(codebook.dimension)] (decoder hidden size, codebook dimension)")
        }
        if let projectorBias, projectorBias.shape != [model.hiddenSize] {
            throw ModelError(.shapeMismatch, "the projector bias has shape \(projectorBias.shape) but must be [\(model.hiddenSize)]")
        }
        if let mlpOutput {
            guard mlpOutput.weight.shape == [model.hiddenSize, model.hiddenSize] else {
                throw ModelError(.shapeMismatch, "the projector's second layer has shape \(mlpOutput.weight.shape) but must be [\(model.hiddenSize), \(model.hiddenSize)]")
            }
            if let bias = mlpOutput.bias, bias.shape != [model.hiddenSize] {
                throw ModelError(.shapeMismatch, "the projector's second bias has shape \(bias.shape) but must be [\(model.hiddenSize)]")
            }
        }
        guard contextLength > 0 else { throw ModelError(.invalidInput, "the context length \(contextLength) must be positive") }
        if let bad = prefixTokens.first(where: { $0 < 0 || $0 >= model.vocabularySize }) {
            throw ModelError(.invalidInput, "prefix token \(bad) is outside the vocabulary of \(model.vocabularySize)")
        }
        self.model = model
        self.tokenizer = tokenizer
        self.codebook = codebook
        self.projectorWeight = projectorWeight.detached()
        self.projectorBias = projectorBias?.detached()
        self.mlpOutput = mlpOutput.map { ProjectorLayer(weight: $0.weight.detached(), bias: $0.bias?.detached()) }
        self.contextLength = contextLength
        self.prefixTokens = prefixTokens
        self.endOfSequenceTokens = endOfSequenceTokens
    }

    public var codebookHash: String { codebook.hash }
    public var codebookDimension: Int { codebook.dimension }
    public var hiddenSize: Int { model.hiddenSize }
    public var vocabularySize: Int { model.vocabularySize }

    /// The decoder's shape for counting prefill FLOPs: read from ``LlamaModel`` and ``GPT2Model``
    /// configurations, `nil` for other ``CausalLanguageModel``s.
    public var decoderShape: DecoderShape? {
        if let llama = model as? LlamaModel {
            let c = llama.configuration
            return DecoderShape(
                layers: c.hiddenLayers, hidden: c.hiddenSize, heads: c.attentionHeads, kvHeads: c.kvHeads,
                mlpSize: c.intermediateSize, vocabulary: c.vocabularySize, gatedMLP: true, headDimension: c.headDimension)
        }
        if let gpt2 = model as? GPT2Model {
            let c = gpt2.configuration
            return DecoderShape(
                layers: c.layers, hidden: c.hiddenSize, heads: c.heads, kvHeads: c.heads,
                mlpSize: c.innerSize, vocabulary: c.vocabularySize, gatedMLP: false)
        }
        return nil
    }

    /// The positions `prompt` occupies: ``prefixTokens`` plus every segment, text tokenized as
    /// ``generate(_:options:)`` tokenizes it.
    public func promptPositions(_ prompt: [PromptSegment]) throws -> Int {
        var total = prefixTokens.count
        for segment in prompt {
            switch segment {
            case .text(let text): total += try tokenizer.encode(text, addSpecialTokens: false).count
            case .tokens(let ids): total += ids.count
            case .visual(let tokens): total += tokens.count
            case .vectors(let vectors): total += vectors.shape.first ?? 0
            }
        }
        return total
    }

    public func tokenize(_ text: String) throws -> [Int32] {
        try tokenizer.encode(text, addSpecialTokens: false).map { Int32($0) }
    }

    public func detokenize(_ tokens: [Int32]) throws -> String {
        try tokenizer.decode(tokens.map { Int($0) })
    }

    public func project(_ codebookVectors: Tensor) throws -> Tensor {
        guard codebookVectors.rank == 2, codebookVectors.shape[1] == codebook.dimension else {
            throw ModelError(.invalidInput, "codebook-space vectors have shape \(codebookVectors.shape) but the projector takes [count, \(codebook.dimension)]")
        }
        let first = codebookVectors.linear(weight: projectorWeight, bias: projectorBias)
        guard let mlpOutput else { return first }
        return first.gelu().linear(weight: mlpOutput.weight, bias: mlpOutput.bias)
    }

    /// The input embeddings of a prompt, the rows each segment occupies, and the rows' position ids
    /// when `visualPositionIDs` is `.original` (`nil`: consecutive, the rows' own indices).
    ///
    /// With `.original`, a visual segment starting at position id `offset` gives its token at grid
    /// index `g` the id `offset + g` and moves the next segment to `offset + rows · columns`.
    func embeddings(
        for prompt: [PromptSegment], visualPositionIDs: VisualPositionIDs = .consecutive
    ) throws -> (embeddings: Tensor, ranges: [Range<Int>], positionIDs: [Int]?) {
        var pieces: [Tensor] = []
        var ranges: [Range<Int>] = []
        var row = 0
        var ids: [Int] = []
        var nextID = 0
        /// Appends a segment's rows; `originalIDs` gives their ids and the id after the segment.
        func append(_ piece: Tensor?, originalIDs: (ids: [Int], next: Int)? = nil) {
            let count = piece?.shape[0] ?? 0
            if let piece, count > 0 { pieces.append(piece) }
            ranges.append(row..<(row + count))
            ids += originalIDs?.ids ?? Array(nextID..<(nextID + count))
            nextID = originalIDs?.next ?? nextID + count
            row += count
        }
        if !prefixTokens.isEmpty {
            pieces.append(try model.embed(tokens: prefixTokens))
            row = prefixTokens.count
            ids = Array(0..<row)
            nextID = row
        }
        for segment in prompt {
            switch segment {
            case .text(let text):
                let tokenIDs = try tokenizer.encode(text, addSpecialTokens: false)
                append(tokenIDs.isEmpty ? nil : try model.embed(tokens: tokenIDs))
            case .tokens(let tokenIDs):
                append(tokenIDs.isEmpty ? nil : try model.embed(tokens: tokenIDs.map { Int($0) }))
            case .visual(let tokens):
                guard tokens.codebookHash == codebookHash else {
                    throw ModelError(.invalidInput, "visual tokens use codebook \(tokens.codebookHash) but this backend reads \(codebookHash); pair it with an encoder of the same codebook")
                }
                let vectors = tokens.count > 0 ? try project(tokens.features ?? codebook.embed(tokens.codes)) : nil
                if visualPositionIDs == .original {
                    // Grid index g at offset + g; the next segment continues after the unpruned grid.
                    let columns = tokens.grid.columns
                    append(vectors, originalIDs: (tokens.positions.map { nextID + $0.row * columns + $0.column },
                                                  nextID + tokens.grid.rows * columns))
                } else {
                    append(vectors)
                }
            case .vectors(let vectors):
                append(vectors.shape.first == 0 ? nil : try project(vectors))
            }
        }
        guard !pieces.isEmpty else { throw ModelError(.invalidInput, "the prompt is empty; give at least one text, token or visual segment") }
        guard row <= contextLength else {
            throw ModelError(.invalidInput, "the prompt takes \(row) positions but the backend's context holds \(contextLength); shorten the text or prune visual tokens")
        }
        return (Tensor.concatenated(pieces, along: 0), ranges, visualPositionIDs == .original ? ids : nil)
    }

    public func logits(for prompt: [PromptSegment]) throws -> PromptLogits {
        try logits(for: prompt, visualPositionIDs: .consecutive)
    }

    /// The logits of a prompt like ``logits(for:)``, with the visual tokens numbered as
    /// `visualPositionIDs` says (docs/token-pruning.md, "Position ids").
    ///
    /// - Throws: ``ModelError`` as ``logits(for:)``; (`unsupported`) for `.original` when the model
    ///   takes no explicit position ids, (`invalidInput`) when the original ids pass the context.
    public func logits(for prompt: [PromptSegment], visualPositionIDs: VisualPositionIDs) throws -> PromptLogits {
        let (embeddings, ranges, ids) = try embeddings(for: prompt, visualPositionIDs: visualPositionIDs)
        try checkContext(ids)
        var cache = model.makeCache()
        return PromptLogits(logits: try model.logits(embeddings: embeddings, positionIDs: ids, cache: &cache), segmentRanges: ranges)
    }

    /// The logits of the rows that predict the last segment (the output projection runs over those
    /// rows only; see ``SurrogateBackend/answerLogits(for:)``).
    public func answerLogits(for prompt: [PromptSegment]) throws -> PromptLogits {
        try answerLogits(forBatch: [prompt])[0]
    }

    /// The answer rows of several prompts from one call of the model
    /// (``CausalLanguageModel/logits(batch:positionIDs:fromRows:caches:)``): a Llama, Qwen2 or GPT-2
    /// decoder runs them together and reads each weight once for the batch.
    public func answerLogits(forBatch prompts: [[PromptSegment]]) throws -> [PromptLogits] {
        var inputs: [Tensor] = [], ranges: [[Range<Int>]] = [], ids: [[Int]?] = []
        for prompt in prompts {
            let (embeddings, segmentRanges, positionIDs) = try embeddings(for: prompt, visualPositionIDs: .consecutive)
            try checkContext(positionIDs)
            inputs.append(embeddings)
            ranges.append(segmentRanges)
            ids.append(positionIDs)
        }
        let firsts = ranges.map(PromptLogits.answerFirstPosition)
        var caches = inputs.map { _ in model.makeCache() }
        let logits = try model.logits(batch: inputs, positionIDs: ids, fromRows: firsts, caches: &caches)
        return prompts.indices.map { PromptLogits(logits: logits[$0], segmentRanges: ranges[$0], firstPosition: firsts[$0]) }
    }

    /// Llama, Qwen2 and GPT-2 decoders take original visual position ids.
    public var supportsOriginalVisualPositionIDs: Bool { model.acceptsPositionIDs }

    /// Checks that explicit position ids stay inside the context.
    func checkContext(_ ids: [Int]?) throws(ModelError) {
        guard let last = ids?.last, last >= contextLength else { return }
        throw ModelError(.invalidInput, "with original visual position ids the prompt reaches position \(last + 1) but the backend's context holds \(contextLength); shorten the text or use consecutive position ids")
    }

    public func generate(_ prompt: [PromptSegment], options: GenerationOptions) throws -> GeneratedText {
        try generate(batch: [prompt], options: options)[0]
    }

    /// Decodes the prompts together in a ``DecodingBatch``: one prefill call (prompts longer than a
    /// pass run alone), then one step for every unfinished sequence at a time, sharing each weight
    /// read among up to 8 sequences (``CausalLanguageModel/lastLogits(batch:caches:)``). Each
    /// sequence's logits have the bits it gets alone, so each result equals
    /// ``generate(_:options:)`` on that prompt.
    public func generate(batch prompts: [[PromptSegment]], options: GenerationOptions) throws -> [GeneratedText] {
        var batch = DecoderBatch(backend: self)
        var results: [GeneratedText?] = Array(repeating: nil, count: prompts.count)
        var steps = try batch.join(prompts.enumerated().map { DecodingRequest(id: $0.offset, prompt: $0.element, options: options) })
        while true {
            for step in steps { if let finished = step.finished { results[step.id] = finished } }
            guard !batch.isEmpty else { break }
            steps = try batch.step()
        }
        return results.map { $0! }
    }

    /// The result when a stop sequence has appeared in the decoded text, cut before it.
    func stopped(_ tokens: [Int], _ options: GenerationOptions) throws -> GeneratedText? {
        guard !options.stopSequences.isEmpty else { return nil }
        let text = try tokenizer.decode(tokens)
        let hits = options.stopSequences.filter { !$0.isEmpty }.compactMap { text.range(of: $0) }
        guard let first = hits.min(by: { $0.lowerBound < $1.lowerBound }) else { return nil }
        return GeneratedText(text: String(text[..<first.lowerBound]), tokens: tokens.map { Int32($0) }, finishReason: .stopSequence)
    }

    func finish(_ tokens: [Int], _ reason: FinishReason) throws -> GeneratedText {
        GeneratedText(text: try tokenizer.decode(tokens), tokens: tokens.map { Int32($0) }, finishReason: reason)
    }
}

/// One linear layer of a projector: `weight` `[output, input]` and an optional `bias` `[output]`.
public struct ProjectorLayer: Sendable {
    public var weight: Tensor
    public var bias: Tensor?
    public init(weight: Tensor, bias: Tensor? = nil) {
        self.weight = weight
        self.bias = bias
    }
}
