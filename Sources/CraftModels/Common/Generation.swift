// Greedy and sampled decoding with a KV cache (transformers' `generate` with temperature, top-k and
// top-p warpers), seeded so a run is reproducible.
import Foundation
import TensorCore

/// How ``generate(_:prompt:parameters:)`` picks tokens.
public struct GenerationParameters: Sendable, Equatable {
    /// The most tokens to add after the prompt.
    public var maxNewTokens: Int
    /// 0 for greedy decoding (argmax, lowest id on ties); otherwise logits are divided by it before sampling.
    public var temperature: Float = 0
    /// Keep only the `topK` most likely tokens when sampling (`nil` or 0: all).
    public var topK: Int?
    /// Keep the smallest set of most likely tokens whose probability reaches `topP` (`nil` or 1: all).
    public var topP: Float?
    /// The seed of the sampling generator (SplitMix64).
    public var seed: UInt64 = 0
    /// Generation stops after emitting one of these (the stop token is included in the result).
    public var stopTokens: Set<Int> = []

    /// Creates parameters; the defaults give greedy decoding.
    public init(maxNewTokens: Int, temperature: Float = 0, topK: Int? = nil, topP: Float? = nil, seed: UInt64 = 0,
                stopTokens: Set<Int> = []) {
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.stopTokens = stopTokens
    }
}

/// Generates tokens after `prompt`, feeding only the new token at each step through the model's KV cache.
///
/// - Returns: the new token ids (without the prompt), ending at a stop token or after `maxNewTokens`.
/// - Throws: ``ModelError`` with code `invalidInput` for an empty prompt, an id outside the vocabulary,
///   or invalid parameters.
public func generate(_ model: some CausalLanguageModel, prompt: [Int], parameters: GenerationParameters) throws(ModelError) -> [Int] {
    try parameters.validate()
    var generator = SplitMix64(seed: parameters.seed)
    var cache = model.makeCache()
    var output: [Int] = []
    var next = prompt
    while output.count < parameters.maxNewTokens {
        let logits = try ModelError.converting { try withoutGradients { try model.lastLogits(tokens: next, cache: &cache) } }
        let token = parameters.pick(logits.scalars, generator: &generator)
        output.append(token)
        if parameters.stopTokens.contains(token) { break }
        next = [token]
    }
    return output
}

/// Generates after each of `prompts` at once: each step decodes every unfinished sequence together,
/// sharing one read of the weights per group of up to `Tensor.smallRowLimit` sequences
/// (``CausalLanguageModel/lastLogits(batch:caches:)``). Each sequence gets exactly the tokens
/// ``generate(_:prompt:parameters:)`` gives it alone (its own sampling generator, same seed).
///
/// - Returns: the new token ids of each prompt, in order.
public func generate(_ model: some CausalLanguageModel, prompts: [[Int]], parameters: GenerationParameters) throws(ModelError) -> [[Int]] {
    try parameters.validate()
    var caches = prompts.map { _ in model.makeCache() }
    var generators = prompts.map { _ in SplitMix64(seed: parameters.seed) }
    var outputs = prompts.map { _ in [Int]() }
    var next = prompts
    var active = parameters.maxNewTokens > 0 ? Array(prompts.indices) : []
    while !active.isEmpty {
        let tokens = active.map { next[$0] }
        let logits = try ModelError.converting {
            try withoutGradients {
                try KVCache.withSubset(&caches, active) { stepCaches throws(ModelError) in
                    try model.lastLogits(batchTokens: tokens, caches: &stepCaches)
                }
            }
        }
        var still: [Int] = []
        for (slot, index) in active.enumerated() {
            let token = parameters.pick(logits.sliced(along: 0, slot..<(slot + 1)).scalars, generator: &generators[index])
            outputs[index].append(token)
            next[index] = [token]
            if !parameters.stopTokens.contains(token) && outputs[index].count < parameters.maxNewTokens { still.append(index) }
        }
        active = still
    }
    return outputs
}

extension GenerationParameters {
    /// Checks the parameters.
    func validate() throws(ModelError) {
        guard maxNewTokens >= 0 else {
            throw ModelError(.invalidInput, "maxNewTokens is \(maxNewTokens); pass zero or more")
        }
        guard temperature >= 0, temperature.isFinite else {
            throw ModelError(.invalidInput, "temperature \(temperature) must be zero (greedy) or positive")
        }
        if let topP, !(topP > 0 && topP <= 1) {
            throw ModelError(.invalidInput, "top-p \(topP) must be in (0, 1]")
        }
        if let topK, topK < 0 { throw ModelError(.invalidInput, "top-k \(topK) must be zero (off) or positive") }
    }

    /// The next token from one row of logits: greedy at temperature 0, else sampled.
    func pick(_ logits: [Float], generator: inout SplitMix64) -> Int {
        temperature == 0 ? greedyToken(logits) : sampleToken(logits, parameters: self, generator: &generator)
    }
}

/// The argmax of `logits`, lowest id on ties.
func greedyToken(_ logits: [Float]) -> Int {
    var best = 0
    for index in logits.indices where logits[index] > logits[best] { best = index }
    return best
}

/// Samples from `softmax(logits / temperature)` restricted by top-k then top-p (transformers' order).
func sampleToken<G: RandomNumberGenerator>(_ logits: [Float], parameters: GenerationParameters, generator: inout G) -> Int {
    // Candidates sorted by logit (descending), stable so ties keep the lowest id first.
    var order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
    if let topK = parameters.topK, topK > 0, topK < order.count { order = Array(order.prefix(topK)) }
    let scaled = order.map { Double(logits[$0] / parameters.temperature) }
    let top = scaled.first ?? 0
    var probabilities = scaled.map { Foundation.exp($0 - top) }
    let total = probabilities.reduce(0, +)
    probabilities = probabilities.map { $0 / total }
    if let topP = parameters.topP, topP < 1 {
        var cumulative = 0.0
        var keep = 0
        for p in probabilities {
            keep += 1
            cumulative += p
            if cumulative >= Double(topP) { break }
        }
        order = Array(order.prefix(keep))
        probabilities = Array(probabilities.prefix(keep))
        let kept = probabilities.reduce(0, +)
        probabilities = probabilities.map { $0 / kept }
    }
    let draw = Double(generator.next() >> 11) * 0x1.0p-53
    var cumulative = 0.0
    for (index, p) in probabilities.enumerated() {
        cumulative += p
        if draw < cumulative { return order[index] }
    }
    return order[order.count - 1]
}

extension ModelError {
    /// Runs `body`, passing a ``ModelError`` on and wrapping anything else (which the model code
    /// does not throw) as `invalidInput`: for closures through untyped `rethrows` helpers.
    static func converting<Result>(_ body: () throws -> Result) throws(ModelError) -> Result {
        do {
            return try body()
        } catch let error as ModelError {
            throw error
        } catch {
            throw ModelError(.invalidInput, "generation failed: \(error)")
        }
    }
}
