import CraftModels
import Foundation
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
