// Continuous batching over a DecoderBackend: sequences join between steps, each step decodes one token
// of every sequence with the weights read once for all of them, and finished sequences leave.
import CraftCore
import TensorCore

extension DecoderBackend: ContinuousBatchingBackend {
    public func makeDecodingBatch() -> any DecodingBatch { DecoderBatch(backend: self) }
}

/// The ``DecodingBatch`` of a ``DecoderBackend``: one KV cache per sequence; ``join(_:)`` prefills
/// the new prompts together, ``step()`` feeds every sequence its last token in one call of
/// ``CausalLanguageModel/lastLogits(batchTokens:caches:)``. Each sequence's logits have the bits it
/// gets alone, so its tokens are those of ``DecoderBackend/generate(_:options:)`` on its prompt.
struct DecoderBatch: DecodingBatch {
    let backend: DecoderBackend
    private(set) var activeIDs: [Int] = []
    private var caches: [KVCache] = []
    private var sequences: [Decoding] = []

    init(backend: DecoderBackend) { self.backend = backend }

    mutating func join(_ requests: [DecodingRequest]) throws -> [DecodingStep] {
        var seen = Set(activeIDs)
        for request in requests {
            try Self.validate(request.options)
            guard seen.insert(request.id).inserted else {
                throw ModelError(.invalidInput, "sequence id \(request.id) is already decoding in this batch; give each request its own id")
            }
        }
        guard !requests.isEmpty else { return [] }
        let model = backend.model
        return try withoutGradients {
            let prompts = try requests.map { request in
                let prompt = try backend.embeddings(for: request.prompt, visualPositionIDs: request.options.visualPositionIDs)
                try backend.checkContext(prompt.positionIDs)
                return prompt
            }
            var newCaches = requests.map { _ in model.makeCache() }
            let logits = try model.lastLogits(batch: prompts.map(\.embeddings), positionIDs: prompts.map(\.positionIDs), caches: &newCaches)
            var steps: [DecodingStep] = []
            for (row, request) in requests.enumerated() {
                var sequence = Decoding(id: request.id, options: request.options)
                let step = try sequence.advance(logits.sliced(along: 0, row..<(row + 1)).scalars, nextPosition: newCaches[row].nextPosition, backend: backend)
                steps.append(step)
                if step.finished == nil {
                    activeIDs.append(request.id)
                    caches.append(newCaches[row])
                    sequences.append(sequence)
                }
            }
            return steps
        }
    }

    mutating func step() throws -> [DecodingStep] {
        guard !activeIDs.isEmpty else { return [] }
        let model = backend.model
        return try withoutGradients {
            let logits = try model.lastLogits(batchTokens: sequences.map { [$0.tokens[$0.tokens.count - 1]] }, caches: &caches)
            var steps: [DecodingStep] = []
            var finished: Set<Int> = []
            for row in sequences.indices {
                let step = try sequences[row].advance(
                    logits.sliced(along: 0, row..<(row + 1)).scalars, nextPosition: caches[row].nextPosition, backend: backend)
                steps.append(step)
                if step.finished != nil { finished.insert(row) }
            }
            if !finished.isEmpty { remove(rows: finished) }
            return steps
        }
    }

    mutating func leave(_ id: Int) {
        guard let row = activeIDs.firstIndex(of: id) else { return }
        remove(rows: [row])
    }

    private mutating func remove(rows: Set<Int>) {
        let kept = activeIDs.indices.filter { !rows.contains($0) }
        activeIDs = kept.map { activeIDs[$0] }
        caches = kept.map { caches[$0] }
        sequences = kept.map { sequences[$0] }
    }

    static func validate(_ options: GenerationOptions) throws(ModelError) {
        guard options.maximumNewTokens >= 0, options.temperature >= 0, options.temperature.isFinite, options.topK >= 0 else {
            throw ModelError(.invalidInput, "generation options need maximumNewTokens ≥ 0, a finite temperature ≥ 0 and topK ≥ 0")
        }
    }

    /// One sequence being generated: its tokens, its options and its sampler.
    private struct Decoding {
        let id: Int
        let options: GenerationOptions
        let parameters: GenerationParameters
        var tokens: [Int] = []
        var generator: SplitMix64

        init(id: Int, options: GenerationOptions) {
            self.id = id
            self.options = options
            parameters = GenerationParameters(
                maxNewTokens: options.maximumNewTokens, temperature: options.temperature, topK: options.topK, seed: options.seed)
            generator = SplitMix64(seed: options.seed)
        }

        /// Reads the logits after the last position: finishes (length, full context, end of sequence,
        /// stop sequence) or gives the next token to feed.
        mutating func advance(_ logits: [Float], nextPosition: Int, backend: DecoderBackend) throws -> DecodingStep {
            if tokens.count >= options.maximumNewTokens {
                return DecodingStep(id: id, token: nil, finished: try backend.finish(tokens, .length))
            }
            if nextPosition >= backend.contextLength {
                return DecodingStep(id: id, token: nil, finished: try backend.finish(tokens, .contextFull))
            }
            let token = parameters.pick(logits, generator: &generator)
            if backend.endOfSequenceTokens.contains(token) {
                return DecodingStep(id: id, token: nil, finished: try backend.finish(tokens, .endOfSequence))
            }
            tokens.append(token)
            return DecodingStep(id: id, token: Int32(token), finished: try backend.stopped(tokens, options))
        }
    }
}
