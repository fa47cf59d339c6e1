import CraftCore
import CraftModels
import Foundation
import TensorCore
import Testing
@testable import CraftTraining

@Suite("SigLIP vision tower as a CRAFT-trainable encoder")
struct SiglipEncoderTests {
    static let hidden = 8

    /// A one-layer SigLIP tower without head, random weights under transformers' names.
    static func tower(seed: UInt64) throws -> SiglipVisionModel {
        let configuration = SiglipVisionConfiguration(
            hiddenSize: hidden, intermediateSize: 16, hiddenLayers: 1, attentionHeads: 2, imageSize: 8, patchSize: 4, useHead: false)
        var generator = SplitMix64(seed: seed)
        func random(_ shape: [Int], _ std: Float) -> Tensor { Tensor(randomNormal: shape, standardDeviation: std, generator: &generator) }
        func norm() -> Tensor { Tensor.ones([hidden]) + random([hidden], 0.1) }
        var weights: [String: Tensor] = [
            "embeddings.patch_embedding.weight": random([hidden, 3, 4, 4], 0.2),
            "embeddings.patch_embedding.bias": random([hidden], 0.1),
            "embeddings.position_embedding.weight": random([4, hidden], 0.5),
            "post_layernorm.weight": norm(), "post_layernorm.bias": random([hidden], 0.1),
        ]
        let layer = "encoder.layers.0"
        for projection in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            weights["\(layer).self_attn.\(projection).weight"] = random([hidden, hidden], 0.35)
            weights["\(layer).self_attn.\(projection).bias"] = random([hidden], 0.1)
        }
        for name in ["layer_norm1", "layer_norm2"] {
            weights["\(layer).\(name).weight"] = norm()
            weights["\(layer).\(name).bias"] = random([hidden], 0.1)
        }
        weights["\(layer).mlp.fc1.weight"] = random([16, hidden], 0.35)
        weights["\(layer).mlp.fc1.bias"] = random([16], 0.1)
        weights["\(layer).mlp.fc2.weight"] = random([hidden, 16], 0.25)
        weights["\(layer).mlp.fc2.bias"] = random([hidden], 0.1)
        return try SiglipVisionModel(configuration: configuration, weights: weights)
    }

    static func codebook() throws -> Codebook {
        var generator = SplitMix64(seed: 77)
        return try Codebook(values: Tensor(randomNormal: [16, hidden], generator: &generator).scalars, entries: 16, dimension: hidden, metric: .l2)
    }

    @Test("a codebook of another dimension is refused")
    func codebookDimensionMustMatch() throws {
        let small = try Codebook(values: [0, 1, 1, 0], entries: 2, dimension: 2, metric: .l2)
        #expect(throws: TrainingError.self) { try SiglipTrainableEncoder(tower: Self.tower(seed: 1), codebook: small) }
        #expect(throws: TrainingError.self) { try SiglipTrainableEncoder(tower: Self.tower(seed: 1), codebook: Self.codebook(), quantizeAfterLayer: 2) }
    }

    @Test("training steps reach every tower tensor through the straight-through estimator and change codes")
    func trainerUpdatesTheTower() throws {
        let encoder = try SiglipTrainableEncoder(tower: Self.tower(seed: 3), codebook: Self.codebook())
        var pixelGenerator = SplitMix64(seed: 2024)
        let pixels = Tensor(randomNormal: [2, 3, 8, 8], generator: &pixelGenerator)
        let leaves = encoder.parameters.requiringGradients()
        let forward = try encoder.forward(pixels, parameters: leaves)
        #expect(forward.quantization.codes.shape == [2, 4, 1])
        #expect(forward.pooledFeatures == nil)
        let surrogate = TinySurrogate(vocabulary: TinyTask.classes, codebookDimension: Self.hidden, hidden: 8, seed: 9)
        let answer = try surrogate.score(visual: forward.quantization.quantized.sliced(along: 0, 0..<1).squeezed(0), prompt: "", answer: "red")
        let loss = try answerCrossEntropy([answer])
        let gradients = leaves.gradients(of: loss)
        for name in ["embeddings.patch_embedding.weight", "encoder.layers.0.mlp.fc1.weight", "post_layernorm.weight"] {
            #expect(gradients[name]!.scalars.contains { $0 != 0 }, "\(name) got no gradient")
        }

        var configuration = TrainerConfiguration()
        configuration.objective = CraftObjective(usesContrastive: false)
        configuration.learningRate = 0.05
        configuration.batchSize = 3
        configuration.epochs = 2
        let examples = try TinyTask().examples(0..<6)
        let inputs: @Sendable (TrainingExample) throws -> Tensor = { example in
            var generator = SplitMix64(seed: UInt64(example.line))
            return Tensor(randomNormal: [3, 8, 8], generator: &generator)
        }
        var trainer = try Trainer(encoder: encoder, surrogate: surrogate, textEmbedder: nil, inputs: inputs, configuration: configuration)
        var records: [TrainingLogRecord] = []
        let summary = try trainer.train(training: TrainingDataset(examples: examples), validation: nil) { records.append($0.record) }
        #expect(summary.steps == 4 && records.count == 4)
        #expect(records.allSatisfy { ($0.loss ?? .nan).isFinite && ($0.gradientNorm ?? 0) > 0 })
        #expect(summary.parameters["embeddings.patch_embedding.weight"]!.scalars != encoder.parameters["embeddings.patch_embedding.weight"]!.scalars)
        #expect(trainer.encoder.parameters["encoder.layers.0.mlp.fc1.weight"]!.scalars == summary.parameters["encoder.layers.0.mlp.fc1.weight"]!.scalars)
    }
}

