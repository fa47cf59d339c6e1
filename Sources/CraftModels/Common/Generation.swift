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
    guard parameters.maxNewTokens >= 0 else {
        throw ModelError(.invalidInput, "maxNewTokens is \(parameters.maxNewTokens); pass zero or more")
    }
    guard parameters.temperature >= 0, parameters.temperature.isFinite else {
        throw ModelError(.invalidInput, "temperature \(parameters.temperature) must be zero (greedy) or positive")
    }
    if let topP = parameters.topP, !(topP > 0 && topP <= 1) {
        throw ModelError(.invalidInput, "top-p \(topP) must be in (0, 1]")
    }
    if let topK = parameters.topK, topK < 0 { throw ModelError(.invalidInput, "top-k \(topK) must be zero (off) or positive") }
    var generator = SplitMix64(seed: parameters.seed)
    var cache = model.makeCache()
    var output: [Int] = []
    var next = prompt
    while output.count < parameters.maxNewTokens {
        let logits: Tensor
        do {
            logits = try withoutGradients { try model.lastLogits(tokens: next, cache: &cache) }
        } catch let error as ModelError {
            throw error
        } catch {
            throw ModelError(.invalidInput, "generation failed: \(error)")
        }
        let last = logits.sliced(along: 0, (logits.shape[0] - 1)..<logits.shape[0]).scalars
        let token = parameters.temperature == 0
            ? greedyToken(last)
            : sampleToken(last, parameters: parameters, generator: &generator)
        output.append(token)
        if parameters.stopTokens.contains(token) { break }
        next = [token]
    }
    return output
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
