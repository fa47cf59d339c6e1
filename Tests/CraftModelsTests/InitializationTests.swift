import Foundation
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

/// Tiny configurations of the four architectures shared by the initialisation and writing tests.
enum TinyConfigurations {
    static var llama: LlamaConfiguration {
        var c = LlamaConfiguration(hiddenSize: 16, intermediateSize: 24, hiddenLayers: 2, attentionHeads: 4, kvHeads: 2,
                                   vocabularySize: 40, ropeTheta: 500)
        c.attentionBias = true
        c.mlpBias = true
        c.maxPositionEmbeddings = 32
        c.bosTokenID = 1
        c.eosTokenIDs = [2]
        return c
    }
    static var llamaTied: LlamaConfiguration {
        LlamaConfiguration(hiddenSize: 16, intermediateSize: 24, hiddenLayers: 1, attentionHeads: 2, vocabularySize: 40,
                           tieWordEmbeddings: true)
    }
    static var gpt2: GPT2Configuration {
        var c = GPT2Configuration(hiddenSize: 16, layers: 2, heads: 4, positions: 16, vocabularySize: 40)
        c.eosTokenIDs = [2]
        return c
    }
    static var gpt2Untied: GPT2Configuration {
        var c = GPT2Configuration(hiddenSize: 16, layers: 1, heads: 2, positions: 16, vocabularySize: 40, innerSize: 20)
        c.tieWordEmbeddings = false
        return c
    }
    static var vision: SiglipVisionConfiguration {
        SiglipVisionConfiguration(hiddenSize: 16, intermediateSize: 24, hiddenLayers: 2, attentionHeads: 4, imageSize: 8, patchSize: 4)
    }
    static var visionNoHead: SiglipVisionConfiguration {
        SiglipVisionConfiguration(hiddenSize: 16, intermediateSize: 24, hiddenLayers: 1, attentionHeads: 2, imageSize: 8, patchSize: 4,
                                  useHead: false)
    }
    static var text: SiglipTextConfiguration {
        SiglipTextConfiguration(vocabularySize: 40, hiddenSize: 16, intermediateSize: 24, hiddenLayers: 2, attentionHeads: 4,
                                maxPositionEmbeddings: 8, projectionSize: 12, padTokenID: 0)
    }
}

/// The standard deviation of a tensor's values.
func standardDeviation(_ tensor: Tensor) -> Float {
    let values = tensor.scalars
    let mean = values.reduce(0, +) / Float(values.count)
    return (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)).squareRoot()
}

@Suite struct InitializationTests {
    /// Expects two weight sets to have the same names and bit-identical values.
    func expectIdentical(_ a: [String: Tensor], _ b: [String: Tensor], _ what: String) {
        #expect(Set(a.keys) == Set(b.keys), "\(what): names differ")
        for (name, tensor) in a {
            #expect(tensor.shape == b[name]?.shape && tensor.scalars == b[name]?.scalars, "\(what): \(name) differs")
        }
    }

    /// Expects the random (non-constant) tensors of two seeds to differ.
    func expectSeedMatters(_ a: [String: Tensor], _ b: [String: Tensor], _ what: String) {
        let random = a.keys.filter { name in Set(a[name]!.scalars).count > 1 }
        #expect(!random.isEmpty)
        for name in random { #expect(a[name]!.scalars != b[name]!.scalars, "\(what): \(name) does not depend on the seed") }
    }

    @Test func llamaWeightsBuildTheModelAndFollowTheSeed() throws {
        for configuration in [TinyConfigurations.llama, TinyConfigurations.llamaTied] {
            let weights = ModelInitialization.llama(configuration, seed: 11)
            let model = try LlamaModel(configuration: configuration, weights: weights)
            #expect(model.parameters.count == weights.count)
            expectIdentical(weights, ModelInitialization.llama(configuration, seed: 11), "llama same seed")
            expectSeedMatters(weights, ModelInitialization.llama(configuration, seed: 12), "llama")
            let logits = try model.logits(tokens: [1, 5, 9])
            #expect(logits.shape == [3, 40] && logits.scalars.allSatisfy { $0.isFinite })
        }
        let weights = ModelInitialization.llama(TinyConfigurations.llama, seed: 3)
        #expect(weights["model.layers.0.input_layernorm.weight"]!.scalars.allSatisfy { $0 == 1 })
        #expect(weights["model.layers.1.self_attn.q_proj.bias"]!.scalars.allSatisfy { $0 == 0 })
        #expect(weights["lm_head.weight"] != nil && ModelInitialization.llama(TinyConfigurations.llamaTied, seed: 3)["lm_head.weight"] == nil)
        let embedding = weights["model.embed_tokens.weight"]!
        #expect(abs(standardDeviation(embedding) - 0.02) < 0.002, "embedding std \(standardDeviation(embedding))")
    }

    @Test func gpt2WeightsBuildTheModelAndScaleResidualProjections() throws {
        for configuration in [TinyConfigurations.gpt2, TinyConfigurations.gpt2Untied] {
            let weights = ModelInitialization.gpt2(configuration, seed: 5)
            let model = try GPT2Model(configuration: configuration, weights: weights)
            #expect(model.parameters.count == weights.count)
            expectIdentical(weights, ModelInitialization.gpt2(configuration, seed: 5), "gpt2 same seed")
            expectSeedMatters(weights, ModelInitialization.gpt2(configuration, seed: 6), "gpt2")
            #expect(try model.logits(tokens: [3, 4]).scalars.allSatisfy { $0.isFinite })
        }
        // c_proj weights get 0.02 / sqrt(2 · n_layer) = 0.01 with two layers; c_fc keeps 0.02.
        let weights = ModelInitialization.gpt2(TinyConfigurations.gpt2, seed: 5)
        let projection = Tensor.concatenated([weights["h.0.mlp.c_proj.weight"]!, weights["h.1.mlp.c_proj.weight"]!], along: 0)
        #expect(abs(standardDeviation(projection) - 0.01) < 0.0012, "c_proj std \(standardDeviation(projection))")
        let up = Tensor.concatenated([weights["h.0.mlp.c_fc.weight"]!, weights["h.1.mlp.c_fc.weight"]!], along: 0)
        #expect(abs(standardDeviation(up) - 0.02) < 0.0024, "c_fc std \(standardDeviation(up))")
        #expect(weights["ln_f.bias"]!.scalars.allSatisfy { $0 == 0 } && weights["ln_f.weight"]!.scalars.allSatisfy { $0 == 1 })
    }

    @Test func siglipVisionWeightsIncludeTheHeadOnlyWhenConfigured() throws {
        for configuration in [TinyConfigurations.vision, TinyConfigurations.visionNoHead] {
            let weights = ModelInitialization.siglipVision(configuration, seed: 9)
            let model = try SiglipVisionModel(configuration: configuration, weights: weights)
            #expect(model.hasHead == configuration.useHead)
            #expect(weights.keys.contains { $0.hasPrefix("head.") } == configuration.useHead)
            expectIdentical(weights, ModelInitialization.siglipVision(configuration, seed: 9), "vision same seed")
            expectSeedMatters(weights, ModelInitialization.siglipVision(configuration, seed: 10), "vision")
            var generator = TensorCore.SplitMix64(seed: 1)
            let output = try model(pixelValues: Tensor(randomNormal: [2, 3, 8, 8], generator: &generator))
            #expect(output.lastHiddenState.shape == [2, 4, 16] && output.lastHiddenState.scalars.allSatisfy { $0.isFinite })
            #expect((output.poolerOutput?.shape == [2, 16]) == configuration.useHead)
        }
        // Xavier-uniform stays inside ±sqrt(6 / (fan_in + fan_out)); the patch convolution is LeCun-normal.
        let weights = ModelInitialization.siglipVision(TinyConfigurations.vision, seed: 9)
        let bound = (6 / Float(16 + 16)).squareRoot()
        let query = weights["encoder.layers.0.self_attn.q_proj.weight"]!.scalars
        #expect(query.allSatisfy { abs($0) <= bound } && query.contains { abs($0) > 0.8 * bound })
        #expect(weights["encoder.layers.1.mlp.fc1.bias"]!.scalars.allSatisfy { $0 != 0 && abs($0) < 1e-4 })
        let patch = weights["embeddings.patch_embedding.weight"]!
        #expect(patch.shape == [16, 3, 4, 4])
        #expect(abs(standardDeviation(patch) - 1 / Float(48).squareRoot()) < 0.02, "patch std \(standardDeviation(patch))")
    }

    @Test func siglipTextWeightsBuildTheModel() throws {
        let configuration = TinyConfigurations.text
        let weights = ModelInitialization.siglipText(configuration, seed: 4)
        let model = try SiglipTextModel(configuration: configuration, weights: weights)
        #expect(model.parameters.count == weights.count && weights["head.weight"]?.shape == [12, 16])
        expectIdentical(weights, ModelInitialization.siglipText(configuration, seed: 4), "text same seed")
        expectSeedMatters(weights, ModelInitialization.siglipText(configuration, seed: 5), "text")
        let output = try model(tokens: [[3, 4, 5, 0, 0, 0, 0, 0]])
        #expect(output.poolerOutput.shape == [1, 12] && output.poolerOutput.scalars.allSatisfy { $0.isFinite })
    }
}
