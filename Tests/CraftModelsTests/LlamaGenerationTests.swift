import Foundation
import TensorCore
import Testing
@testable import CraftModels

@Suite struct LlamaGenerationTests {
    let prompt = [3, 14, 15, 92]

    func model() throws -> LlamaModel { try LlamaModel(directory: ModelFixtures.directory("llama_tied")) }

    @Test func topKOfOneIsGreedy() throws {
        let model = try model()
        let greedy = try generate(model, prompt: prompt, parameters: .init(maxNewTokens: 5))
        let sampled = try generate(model, prompt: prompt, parameters: .init(maxNewTokens: 5, temperature: 1.3, topK: 1, seed: 9))
        #expect(sampled == greedy)
    }

    @Test func sameSeedSameTokensAndSeedsDiffer() throws {
        let model = try model()
        let parameters = GenerationParameters(maxNewTokens: 8, temperature: 2, topP: 0.95, seed: 42)
        let first = try generate(model, prompt: prompt, parameters: parameters)
        let again = try generate(model, prompt: prompt, parameters: parameters)
        #expect(first == again && first.count == 8)
        var differs = false
        for seed in UInt64(1)...6 {
            var other = parameters
            other.seed = seed
            if try generate(model, prompt: prompt, parameters: other) != first { differs = true }
        }
        #expect(differs, "six other seeds all gave the same sampled tokens at temperature 2")
    }

    @Test func stopsAtAStopTokenAndIncludesIt() throws {
        let model = try model()
        let greedy = try generate(model, prompt: prompt, parameters: .init(maxNewTokens: 6))
        let stop = greedy[2]
        let firstStop = try #require(greedy.firstIndex(of: stop))
        let stopped = try generate(model, prompt: prompt, parameters: .init(maxNewTokens: 6, stopTokens: [stop]))
        #expect(stopped == Array(greedy[...firstStop]))
    }

    @Test func tinyTopPKeepsOnlyTheMostLikelyToken() {
        var generator = TensorCore.SplitMix64(seed: 1)
        let logits: [Float] = [0.1, 3, 2.9, -1]
        for _ in 0..<20 {
            let token = sampleToken(logits, parameters: .init(maxNewTokens: 1, temperature: 1, topP: 0.01), generator: &generator)
            #expect(token == 1)
        }
        // With top-k 2 only ids 1 and 2 can come out.
        for _ in 0..<50 {
            let token = sampleToken(logits, parameters: .init(maxNewTokens: 1, temperature: 5, topK: 2), generator: &generator)
            #expect(token == 1 || token == 2)
        }
    }

    @Test func invalidParametersAreErrors() throws {
        let model = try model()
        #expect(throws: ModelError.self) { _ = try generate(model, prompt: prompt, parameters: .init(maxNewTokens: -1)) }
        #expect(throws: ModelError.self) { _ = try generate(model, prompt: prompt, parameters: .init(maxNewTokens: 2, temperature: -1)) }
        #expect(throws: ModelError.self) { _ = try generate(model, prompt: prompt, parameters: .init(maxNewTokens: 2, temperature: 1, topP: 0)) }
        #expect(throws: ModelError.self) { _ = try generate(model, prompt: [], parameters: .init(maxNewTokens: 2)) }
    }
}
