import Foundation
import TensorCore
import Testing
@testable import CraftModels

/// Several sequences decoded in one pass: each sequence's logits have exactly the bits it gets alone,
/// whatever else is in the batch (other prompts, other lengths, more sequences than one pass takes),
/// on float32 and half-precision weights, Llama/Qwen2 and GPT-2 layouts.
@Suite struct BatchedDecodingTests {
    static let fixtures = ["llama_tied", "qwen2_tied_bf16", "llama_untied_f16", "gpt2", "gpt2_bf16"]

    static func model(_ name: String) throws -> any CausalLanguageModel {
        let directory = try ModelFixtures.directory(name)
        return name.hasPrefix("gpt2") ? try GPT2Model(directory: directory) : try LlamaModel(directory: directory)
    }

    /// Prompts of different lengths (one longer than a pass's 8 rows, so it runs alone).
    static let prompts: [[Int]] = [[5, 17, 99], [1], [42, 8, 15, 16, 23, 4, 7, 9, 11, 12], [3, 3], [60, 61], [7], [8, 9, 10], [2], [100], [50, 51]]

    @Test(arguments: fixtures) func batchedLogitsAreBitIdenticalToAlone(name: String) throws {
        let model = try Self.model(name)
        // Alone: each prompt, then two single-token steps.
        var alone: [[[Float]]] = []
        for prompt in Self.prompts {
            var cache = model.makeCache()
            var rows = [try withoutGradients { try model.lastLogits(tokens: prompt, cache: &cache) }.scalars]
            for token in [4, 9] { rows.append(try withoutGradients { try model.lastLogits(tokens: [token], cache: &cache) }.scalars) }
            alone.append(rows)
        }
        // Together: all prompts in one call, then all steps in one call each.
        var caches = Self.prompts.map { _ in model.makeCache() }
        var together = [try withoutGradients { try model.lastLogits(batchTokens: Self.prompts, caches: &caches) }]
        for token in [4, 9] {
            together.append(try withoutGradients { try model.lastLogits(batchTokens: Self.prompts.map { _ in [token] }, caches: &caches) })
        }
        for (step, logits) in together.enumerated() {
            #expect(logits.shape == [Self.prompts.count, model.vocabularySize])
            for sequence in Self.prompts.indices {
                let row = logits.sliced(along: 0, sequence..<(sequence + 1)).scalars
                #expect(row == alone[sequence][step], "\(name): sequence \(sequence), step \(step)")
            }
        }
        #expect(caches.map(\.length) == Self.prompts.map { $0.count + 2 })
    }

    @Test(arguments: fixtures) func batchedGenerationEqualsGenerationAlone(name: String) throws {
        let model = try Self.model(name)
        for parameters in [GenerationParameters(maxNewTokens: 6), GenerationParameters(maxNewTokens: 5, temperature: 0.8, topK: 20, seed: 3)] {
            let batched = try generate(model, prompts: Self.prompts, parameters: parameters)
            let alone = try Self.prompts.map { try generate(model, prompt: $0, parameters: parameters) }
            #expect(batched == alone, "\(name) \(parameters)")
        }
        // A stop token ends one sequence early while the others go on.
        let first = try generate(model, prompt: Self.prompts[0], parameters: .init(maxNewTokens: 6))
        let stopped = try generate(model, prompts: Self.prompts, parameters: .init(maxNewTokens: 6, stopTokens: [first[1]]))
        let end = try #require(first.firstIndex(of: first[1]))
        #expect(stopped[0] == Array(first[...end]))
    }

    @Test func mismatchedBatchesAreTypedErrors() throws {
        let model = try Self.model("llama_tied")
        var caches = [model.makeCache()]
        #expect(throws: ModelError.self) { _ = try model.lastLogits(batchTokens: [[1], [2]], caches: &caches) }
        var none: [KVCache] = []
        #expect(throws: ModelError.self) { _ = try model.lastLogits(batchTokens: [], caches: &none) }
    }
}
