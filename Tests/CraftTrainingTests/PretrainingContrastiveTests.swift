import CraftModels
import Foundation
import SafeTensors
import TensorCore
import Testing
import TestSupport
@testable import CraftTraining

@Suite struct PretrainingContrastiveTests {
    static let colours: [[Float]] = [[1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1]]
    static let names = ["red", "green", "blue", "gold"]

    /// Images whose three channels are the class colour plus noise, with the colour's name.
    func pairs(perClass: Int, seed: UInt64) -> (pixels: Tensor, texts: [String], classes: [Int]) {
        var generator = SplitMix64(seed: seed)
        var images: [Tensor] = [], texts: [String] = [], classes: [Int] = []
        for _ in 0..<perClass {
            for c in 0..<4 {
                let colour = Tensor(Self.colours[c], shape: [1, 3, 1, 1]).expanded(to: [1, 3, 8, 8])
                images.append(colour + Tensor(randomNormal: [1, 3, 8, 8], standardDeviation: 0.5, generator: &generator))
                texts.append(Self.names[c])
                classes.append(c)
            }
        }
        return (Tensor.concatenated(images, along: 0), texts, classes)
    }

    func towers(seed: UInt64) throws -> (SiglipVisionModel, SiglipTextModel) {
        let visionConfiguration = SiglipVisionConfiguration(hiddenSize: 16, intermediateSize: 32, hiddenLayers: 1, attentionHeads: 2,
                                                            imageSize: 8, patchSize: 4)
        let textConfiguration = SiglipTextConfiguration(vocabularySize: 20, hiddenSize: 16, intermediateSize: 32, hiddenLayers: 1,
                                                        attentionHeads: 2, maxPositionEmbeddings: 4, padTokenID: 0)
        return (try SiglipVisionModel(configuration: visionConfiguration, weights: ModelInitialization.siglipVision(visionConfiguration, seed: seed)),
                try SiglipTextModel(configuration: textConfiguration, weights: ModelInitialization.siglipText(textConfiguration, seed: seed + 1)))
    }

    @Test func lossFallsAndImagesRetrieveTheirColourName() throws {
        let tokenizer = try BackendFixture.tokenizer()
        let tokenize: @Sendable (String) throws -> [Int] = { try tokenizer.encode($0, addSpecialTokens: false) }
        let (vision, text) = try towers(seed: 1)
        var configuration = ContrastivePretrainerConfiguration(learningRate: 1e-2, epochs: 20, batchSize: 8, seed: 2)
        configuration.warmupSteps = 2
        let pretrainer = try ContrastivePretrainer(vision: vision, text: text, padToken: 0, tokenize: tokenize, configuration: configuration)
        let training = pairs(perClass: 8, seed: 10)
        var reported = 0
        let result = try pretrainer.train(pixels: training.pixels, texts: training.texts) { progress in
            reported += 1
            #expect(progress.totalSteps == 80)
        }
        #expect(reported == 80 && result.losses.count == 80)
        let first: Float = result.losses.prefix(4).reduce(0, +)
        let last: Float = result.losses.suffix(4).reduce(0, +)
        #expect(last < 0.5 * first, "losses \(result.losses)")
        #expect(result.logitScale != configuration.initialLogitScale && result.logitBias != configuration.initialLogitBias)

        let held = pairs(perClass: 4, seed: 20)
        let before = try ContrastivePretrainer.retrieve(vision: vision, text: text, pixels: held.pixels, texts: Self.names,
                                                        padToken: 0, tokenize: tokenize)
        let after = try ContrastivePretrainer.retrieve(vision: result.vision, text: result.text, pixels: held.pixels, texts: Self.names,
                                                       padToken: 0, tokenize: tokenize)
        let accuracy = Double(zip(after, held.classes).filter { $0 == $1 }.count) / Double(held.classes.count)
        let chance = Double(zip(before, held.classes).filter { $0 == $1 }.count) / Double(held.classes.count)
        #expect(accuracy >= 0.9, "retrieval accuracy \(accuracy) (before training \(chance))")
        // The trained towers keep their names and shapes (they write as checkpoints directly).
        #expect(Set(result.vision.parameters.keys) == Set(vision.parameters.keys))
        #expect(Set(result.text.parameters.keys) == Set(text.parameters.keys))
    }

    @Test func gradientOfTheLogitBiasMatchesFiniteDifferences() throws {
        let tokenizer = try BackendFixture.tokenizer()
        let (vision, text) = try towers(seed: 3)
        let pretrainer = try ContrastivePretrainer(vision: vision, text: text, padToken: 0,
                                                   tokenize: { try tokenizer.encode($0, addSpecialTokens: false) },
                                                   configuration: ContrastivePretrainerConfiguration(batchSize: 4))
        let batch = pairs(perClass: 1, seed: 4)
        let tokens = try pretrainer.tokenRows(batch.texts)
        let parameters = pretrainer.initialParameters()
        let leaves = parameters.requiringGradients()
        let loss = try pretrainer.loss(pixels: batch.pixels, tokens: tokens, parameters: leaves)
        let gradients = leaves.gradients(of: loss)
        for (name, delta) in [("logit_bias", Float(1e-2)), ("logit_scale", Float(1e-2)), ("vision.head.probe", Float(1e-2))] {
            var plus = parameters, minus = parameters
            let base = parameters[name]!
            var bumped = base.scalars, lowered = base.scalars
            bumped[0] += delta
            lowered[0] -= delta
            try plus.update(name, to: Tensor(bumped, shape: base.shape))
            try minus.update(name, to: Tensor(lowered, shape: base.shape))
            let numeric = (try pretrainer.loss(pixels: batch.pixels, tokens: tokens, parameters: plus).scalar
                - pretrainer.loss(pixels: batch.pixels, tokens: tokens, parameters: minus).scalar) / (2 * delta)
            let analytic = gradients[name]!.scalars[0]
            // Float32 central differences: about 1e-3 of absolute noise on top of the relative error.
            #expect(abs(numeric - analytic) <= 2e-2 * abs(analytic) + 1e-3, "\(name): autodiff \(analytic), finite difference \(numeric)")
            #expect(analytic != 0, "\(name) has no gradient")
        }
    }

    /// contrastive.safetensors: transformers.SiglipModel's loss (return_loss=True) and torch.autograd's gradients.
    @Test func lossAndGradientsMatchTransformersSiglipModel() throws {
        let url = try #require(Bundle.module.url(forResource: "contrastive", withExtension: "safetensors", subdirectory: "Fixtures/pretraining"))
        let file = try SafeTensorsFile(contentsOf: url)
        func tensor(_ name: String) throws -> Tensor { Tensor(try file.floats(name), shape: try file.info(name).shape) }
        var visionWeights: [String: Tensor] = [:], textWeights: [String: Tensor] = [:]
        for name in file.names where name.hasPrefix("param.vision.") { visionWeights[String(name.dropFirst("param.vision.".count))] = try tensor(name) }
        for name in file.names where name.hasPrefix("param.text.") { textWeights[String(name.dropFirst("param.text.".count))] = try tensor(name) }
        let visionConfiguration = SiglipVisionConfiguration(hiddenSize: 16, intermediateSize: 24, hiddenLayers: 1, attentionHeads: 2,
                                                            imageSize: 8, patchSize: 4)
        let textConfiguration = SiglipTextConfiguration(vocabularySize: 20, hiddenSize: 16, intermediateSize: 24, hiddenLayers: 1,
                                                        attentionHeads: 2, maxPositionEmbeddings: 6, projectionSize: 16)
        let vision = try SiglipVisionModel(configuration: visionConfiguration, weights: visionWeights)
        let text = try SiglipTextModel(configuration: textConfiguration, weights: textWeights)
        var configuration = ContrastivePretrainerConfiguration(batchSize: 4)
        configuration.initialLogitScale = try tensor("param.logit_scale").scalars[0]
        configuration.initialLogitBias = try tensor("param.logit_bias").scalars[0]
        let pretrainer = try ContrastivePretrainer(vision: vision, text: text, padToken: 0, tokenize: { _ in [] }, configuration: configuration)
        let ids = try tensor("input_ids").scalars.map { Int($0) }
        let tokens = (0..<4).map { Array(ids[($0 * 6)..<(($0 + 1) * 6)]) }
        let leaves = pretrainer.initialParameters().requiringGradients()
        let loss = try pretrainer.loss(pixels: try tensor("pixels"), tokens: tokens, parameters: leaves)
        let expectedLoss = try tensor("loss").scalars[0]
        #expect(abs(loss.scalar - expectedLoss) <= 1e-5 * abs(expectedLoss), "loss \(loss.scalar) vs transformers \(expectedLoss)")
        let gradients = leaves.gradients(of: loss)
        let expectedNames = Set(file.names.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst("grad.".count)) })
        #expect(Set(gradients.names) == expectedNames)
        for name in gradients.names {
            let expected = try tensor("grad." + name)
            let actual = try #require(gradients[name])
            #expect(actual.shape == expected.shape, "\(name) shape")
            // 1e-4 of the tensor's largest gradient: much smaller elements carry Float32 noise of the sums.
            // The key biases' true gradient is zero (softmax ignores a shift shared by all keys): both
            // sides hold noise below 1e-7 there, hence the absolute floor.
            let scale = expected.scalars.map { abs($0) }.max() ?? 0
            let (ok, report) = approximatelyEqual(actual.scalars, expected.scalars, relative: 1e-4, absolute: Swift.max(1e-4 * scale, 1e-6))
            #expect(ok, "gradient \(name): \(report)")
        }
    }

    @Test func badInputsAreErrors() throws {
        let (vision, text) = try towers(seed: 1)
        let tokenize: @Sendable (String) throws -> [Int] = { _ in [3, 4] }
        let configuration = ContrastivePretrainerConfiguration(batchSize: 4)
        let pretrainer = try ContrastivePretrainer(vision: vision, text: text, padToken: 0, tokenize: tokenize, configuration: configuration)
        #expect(throws: TrainingError.self) { try pretrainer.train(pixels: Tensor.zeros([2, 3, 8, 8]), texts: ["a"]) }
        #expect(throws: TrainingError.self) { try pretrainer.train(pixels: Tensor.zeros([2, 3, 4, 4]), texts: ["a", "b"]) }
        let outside = try ContrastivePretrainer(vision: vision, text: text, padToken: 0, tokenize: { _ in [25] }, configuration: configuration)
        #expect(throws: TrainingError.self) { try outside.train(pixels: Tensor.zeros([2, 3, 8, 8]), texts: ["a", "b"]) }
        #expect(throws: TrainingError.self) {
            try ContrastivePretrainer(vision: vision, text: text, padToken: 99, tokenize: tokenize, configuration: configuration)
        }
        let headless = SiglipVisionConfiguration(hiddenSize: 16, intermediateSize: 32, hiddenLayers: 1, attentionHeads: 2, imageSize: 8,
                                                 patchSize: 4, useHead: false)
        let noHead = try SiglipVisionModel(configuration: headless, weights: ModelInitialization.siglipVision(headless, seed: 1))
        #expect(throws: TrainingError.self) {
            try ContrastivePretrainer(vision: noHead, text: text, padToken: 0, tokenize: tokenize, configuration: configuration)
        }
    }
}
