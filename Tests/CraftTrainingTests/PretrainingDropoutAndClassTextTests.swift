import CraftCore
import CraftModels
import Foundation
import TensorCore
import Testing
import TestSupport
@testable import CraftTraining

/// Visual-token dropout of BackendTrainer and the class-text mode of ContrastivePretrainer.
@Suite struct PretrainingDropoutAndClassTextTests {
    @Test func tokenDropoutThinsSomeExamplesInOrderAndIsSeeded() throws {
        let fixture = try BackendFixture.load("gpt2")
        var configuration = BackendTrainerConfiguration(parts: .projector, learningRate: 1e-2, epochs: 1, batchSize: 1, seed: 8)
        configuration.visualTokenDropout = 0.5
        let trainer = try BackendTrainer(backend: fixture.backend, configuration: configuration)
        // Rows numbered 0..<10 show which tokens were kept.
        let visual = Tensor((0..<40).map { Float($0 / 4) }, shape: [10, 4])
        var thinned = 0
        for example in 0..<40 {
            let kept = try trainer.thinned(visual, epoch: 1, example: example)
            let rows = stride(from: 0, to: kept.scalarCount, by: 4).map { Int(kept.scalars[$0]) }
            #expect(rows == rows.sorted() && Set(rows).count == rows.count)
            #expect(rows.count >= 5 && rows.count <= 10)
            if rows.count < 10 { thinned += 1 }
            // Same (epoch, example) → same draw; the stream depends on the epoch.
            #expect(try trainer.thinned(visual, epoch: 1, example: example).scalars == kept.scalars)
        }
        #expect(thinned >= 10 && thinned <= 30, "\(thinned) of 40 thinned at rate 0.5")
        let other = (0..<40).map { try? trainer.thinned(visual, epoch: 2, example: $0).shape[0] }
        let first = (0..<40).map { try? trainer.thinned(visual, epoch: 1, example: $0).shape[0] }
        #expect(other != first)

        // Off by default: the run equals a run with rate 0; on, it is reproducible and differs.
        let plain = BackendTrainerConfiguration(parts: .projector, learningRate: 1e-2, epochs: 2, batchSize: 1, seed: 8)
        #expect(plain.visualTokenDropout == 0)
        var always = plain
        always.visualTokenDropout = 1
        always.minimumKeptTokenShare = 0.5
        let base = try BackendTrainer(backend: fixture.backend, configuration: plain).train(fixture.examples)
        let dropped = try BackendTrainer(backend: fixture.backend, configuration: always).train(fixture.examples)
        let again = try BackendTrainer(backend: fixture.backend, configuration: always).train(fixture.examples)
        #expect(dropped.losses == again.losses)
        #expect(dropped.losses != base.losses)

        var bad = plain
        bad.visualTokenDropout = 1.5
        #expect(throws: TrainingError.self) { try BackendTrainer(backend: fixture.backend, configuration: bad) }
        bad = plain
        bad.minimumKeptTokenShare = 0
        #expect(throws: TrainingError.self) { try BackendTrainer(backend: fixture.backend, configuration: bad) }
    }

    @Test func classSigmoidLossIsTheBatchLossWhenClassesAreTheBatchTexts() throws {
        var generator = SplitMix64(seed: 3)
        let images = Tensor(randomNormal: [4, 6], generator: &generator)
        let texts = Tensor(randomNormal: [4, 6], generator: &generator)
        let scale = Tensor([Float(1.7)], shape: [1]), bias = Tensor([Float(-2.5)], shape: [1])
        let batch = try sigmoidContrastiveLoss(imageEmbeddings: images, textEmbeddings: texts, logitScale: scale, logitBias: bias)
        let classes = try ContrastivePretrainer.classSigmoidLoss(imageEmbeddings: images, classEmbeddings: texts, labels: [0, 1, 2, 3],
                                                                 logitScale: scale, logitBias: bias)
        let same = approximatelyEqual(classes.scalars, batch.scalars, relative: 1e-5, absolute: 1e-6)
        #expect(same.ok, "\(same.report)")
        // Two images of class 1: both are positives of text 1 (by hand, from the definition).
        let labelled = try ContrastivePretrainer.classSigmoidLoss(imageEmbeddings: images, classEmbeddings: texts, labels: [1, 1, 0, 3],
                                                                  logitScale: scale, logitBias: bias)
        func normalized(_ t: Tensor) -> [[Double]] {
            (0..<t.shape[0]).map { row in
                let values = (0..<t.shape[1]).map { Double(t.scalars[row * t.shape[1] + $0]) }
                let norm = values.map { $0 * $0 }.reduce(0, +).squareRoot()
                return values.map { $0 / norm }
            }
        }
        let (a, b) = (normalized(images), normalized(texts))
        var expected = 0.0
        for (row, label) in [1, 1, 0, 3].enumerated() {
            for column in 0..<4 {
                let logit = exp(1.7) * zip(a[row], b[column]).map { $0 * $1 }.reduce(0, +) - 2.5
                let sign = column == label ? 1.0 : -1.0
                expected -= log(1 / (1 + exp(-sign * logit)))
            }
        }
        let byHand = approximatelyEqual(labelled.scalars, [Float(expected / 4)], relative: 1e-5, absolute: 1e-6)
        #expect(byHand.ok, "\(byHand.report)")
        #expect(throws: TrainingError.self) {
            try ContrastivePretrainer.classSigmoidLoss(imageEmbeddings: images, classEmbeddings: texts, labels: [0, 1, 2, 4],
                                                       logitScale: scale, logitBias: bias)
        }
    }

    @Test func classTextTrainingTeachesImagesTheirClassText() throws {
        let tokenizer = try BackendFixture.tokenizer()
        let tokenize: @Sendable (String) throws -> [Int] = { try tokenizer.encode($0, addSpecialTokens: false) }
        let suite = PretrainingContrastiveTests()
        let (vision, text) = try suite.towers(seed: 1)
        var configuration = ContrastivePretrainerConfiguration(learningRate: 1e-2, epochs: 20, batchSize: 8, seed: 2)
        configuration.warmupSteps = 2
        configuration.initialLogitBias = -Float(log(3.0))
        let pretrainer = try ContrastivePretrainer(vision: vision, text: text, padToken: 0, tokenize: tokenize, configuration: configuration)
        let training = suite.pairs(perClass: 8, seed: 10)
        let result = try pretrainer.train(pixels: training.pixels, labels: training.classes, classTexts: PretrainingContrastiveTests.names)
        #expect(result.losses.count == 80)
        let first: Float = result.losses.prefix(4).reduce(0, +)
        let last: Float = result.losses.suffix(4).reduce(0, +)
        #expect(last < 0.5 * first, "losses \(result.losses)")
        let held = suite.pairs(perClass: 4, seed: 20)
        let after = try ContrastivePretrainer.retrieve(vision: result.vision, text: result.text, pixels: held.pixels,
                                                       texts: PretrainingContrastiveTests.names, padToken: 0, tokenize: tokenize)
        let accuracy = Double(zip(after, held.classes).filter { $0 == $1 }.count) / Double(held.classes.count)
        #expect(accuracy >= 0.9, "retrieval accuracy \(accuracy)")

        #expect(throws: TrainingError.self) {
            try pretrainer.train(pixels: training.pixels, labels: training.classes.map { $0 + 1 }, classTexts: PretrainingContrastiveTests.names)
        }
        #expect(throws: TrainingError.self) {
            try pretrainer.train(pixels: training.pixels, labels: Array(training.classes.dropLast()), classTexts: PretrainingContrastiveTests.names)
        }
        #expect(throws: TrainingError.self) {
            try pretrainer.train(pixels: training.pixels, labels: training.classes.map { _ in 0 }, classTexts: ["red"])
        }
    }
}
