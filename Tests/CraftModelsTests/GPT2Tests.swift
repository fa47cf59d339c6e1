import Foundation
import SafeTensors
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

@Suite struct GPT2Tests {
    /// `gpt2_bf16` is saved in bfloat16 (kept so in memory; its reference is transformers on that file in float32).
    static let fixtures = ["gpt2", "gpt2_untied_variant", "gpt2_bf16"]

    @Test(arguments: fixtures) func logitsMatchTransformers(name: String) throws {
        let model = try GPT2Model(directory: ModelFixtures.directory(name))
        let reference = try ModelFixtures.reference(name)
        let logits = try model.logits(tokens: reference.ints("input_ids"))
        expectClose(logits, try reference.tensor("logits"), "\(name) logits")
    }

    @Test func rejectsSequencesLongerThanThePositions() throws {
        let model = try GPT2Model(directory: ModelFixtures.directory("gpt2"))
        #expect(model.configuration.positions == 64)
        #expect(throws: ModelError.self) { _ = try model.logits(tokens: Array(repeating: 1, count: 65)) }
    }

    @Test(arguments: fixtures) func greedyGenerationMatchesTransformers(name: String) throws {
        let model = try GPT2Model(directory: ModelFixtures.directory(name))
        let reference = try ModelFixtures.reference(name)
        let prompt = try reference.ints("input_ids")
        let expected = try reference.ints("generated")
        let generated = try generate(model, prompt: prompt, parameters: .init(maxNewTokens: expected.count - prompt.count))
        #expect(prompt + generated == expected)
    }

    @Test func cachedLogitsEqualFullRecompute() throws {
        let model = try GPT2Model(directory: ModelFixtures.directory("gpt2"))
        let tokens = [5, 17, 99, 3, 42, 8]
        let full = try model.logits(tokens: tokens)
        var cache = model.makeCache()
        var pieces: [Tensor] = [try model.logits(tokens: Array(tokens[0..<3]), cache: &cache)]
        for token in tokens[3...] { pieces.append(try model.logits(tokens: [token], cache: &cache)) }
        #expect(cache.length == tokens.count)
        expectClose(Tensor.concatenated(pieces, along: 0), full, relative: 1e-5, "cached logits")
    }

    @Test(arguments: fixtures) func embeddingInputGradientMatchesAutograd(name: String) throws {
        let model = try GPT2Model(directory: ModelFixtures.directory(name))
        let reference = try ModelFixtures.reference(name)
        let embeddings = try reference.tensor("embeddings").requiringGradient()
        let logits = try model.logits(embeddings: embeddings)
        expectClose(logits, try reference.tensor("embeddings_logits"), "\(name) embedding logits")
        let loss = try Tensor.crossEntropy(logits: logits, targets: IndexTensor(try reference.ints("targets")))
        expectClose(loss, try reference.tensor("loss"), "\(name) loss")
        let gradient = loss.gradients(withRespectTo: [embeddings])[0]
        expectClose(gradient, try reference.tensor("embeddings_gradient"), relative: 1e-3, absolute: 1e-6, "\(name) gradient")
    }

    @Test func rejectsTokenOutsideVocabulary() throws {
        let model = try GPT2Model(directory: ModelFixtures.directory("gpt2"))
        #expect(throws: ModelError.self) { _ = try model.logits(tokens: [1, 128]) }
        #expect(throws: ModelError.self) { _ = try model.logits(tokens: []) }
    }
}
