import CraftCore
import CraftModels
import Foundation
import SafeTensors
import TensorCore
import Testing
import TestSupport
@testable import CraftTraining

/// The tiny backends of scripts/pretraining_fixtures.py (backend_llama/gpt2.safetensors, backend.tokenizer.json).
enum BackendFixture {
    static let prompts = [("what colour is it ?", "red"), ("the image shows", "a big cat")]

    static func url(_ name: String, _ ext: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures/pretraining"))
    }
    static func tokenizer() throws -> Tokenizer { try Tokenizer(contentsOf: try url("backend.tokenizer", "json")) }
    static func codebook(dimension: Int = 4) throws -> Codebook {
        var generator = SplitMix64(seed: 99)
        return try Codebook(values: Tensor(randomNormal: [8, dimension], generator: &generator).scalars, entries: 8, dimension: dimension, metric: .l2)
    }

    static var llamaConfiguration: LlamaConfiguration {
        var c = LlamaConfiguration(hiddenSize: 8, intermediateSize: 12, hiddenLayers: 2, attentionHeads: 2, kvHeads: 1, headDimension: 4,
                                   vocabularySize: 20, ropeTheta: 100)
        c.maxPositionEmbeddings = 64
        return c
    }
    static var gpt2Configuration: GPT2Configuration { GPT2Configuration(hiddenSize: 8, layers: 2, heads: 2, positions: 32, vocabularySize: 20) }

    struct Loaded {
        var backend: DecoderBackend
        var examples: [BackendTrainingExample]
        var file: SafeTensorsFile
        func tensor(_ name: String) throws -> Tensor { Tensor(try file.floats(name), shape: try file.info(name).shape) }
    }

    static func load(_ kind: String) throws -> Loaded {
        let file = try SafeTensorsFile(contentsOf: try url("backend_\(kind)", "safetensors"))
        func tensor(_ name: String) throws -> Tensor { Tensor(try file.floats(name), shape: try file.info(name).shape) }
        var weights: [String: Tensor] = [:]
        for name in file.names where name.hasPrefix("decoder.") { weights[String(name.dropFirst("decoder.".count))] = try tensor(name) }
        let model: any CausalLanguageModel = kind == "llama"
            ? try LlamaModel(configuration: llamaConfiguration, weights: weights)
            : try GPT2Model(configuration: gpt2Configuration, weights: weights)
        let backend = try DecoderBackend(model: model, tokenizer: try tokenizer(), codebook: try codebook(),
                                         projectorWeight: try tensor("projector.weight"), projectorBias: try tensor("projector.bias"),
                                         contextLength: 32, prefixTokens: [1], endOfSequenceTokens: [2])
        let examples = try prompts.enumerated().map { index, pair in
            BackendTrainingExample(visual: try tensor("visual.\(index)"), prompt: pair.0, answer: pair.1)
        }
        return Loaded(backend: backend, examples: examples, file: file)
    }
}

@Suite struct PretrainingBackendTests {
    @Test(arguments: ["llama", "gpt2"])
    func gradientsMatchTorchAutograd(kind: String) throws {
        let fixture = try BackendFixture.load(kind)
        let trainer = try BackendTrainer(backend: fixture.backend, configuration: BackendTrainerConfiguration(parts: .all))
        let (loss, gradients) = try trainer.lossAndGradients(fixture.examples)
        let expectedLoss = try fixture.tensor("loss").scalars[0]
        #expect(abs(loss - expectedLoss) <= 1e-5 * abs(expectedLoss), "\(kind) loss \(loss) vs torch \(expectedLoss)")
        let expectedNames = Set(fixture.file.names.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst("grad.".count)) })
        #expect(Set(gradients.names) == expectedNames)
        for name in gradients.names {
            let expected = try fixture.tensor("grad." + name)
            let actual = try #require(gradients[name])
            #expect(actual.shape == expected.shape, "\(kind) \(name) shape")
            // 1e-4 of the tensor's largest gradient: elements far smaller than that carry Float32 noise of the sums.
            let scale = expected.scalars.map { abs($0) }.max() ?? 0
            let (ok, report) = approximatelyEqual(actual.scalars, expected.scalars, relative: 1e-4, absolute: 1e-4 * scale)
            #expect(ok, "\(kind) gradient \(name): \(report)")
        }
        // Training only the projector: the same projector gradients, nothing else.
        let projectorOnly = try BackendTrainer(backend: fixture.backend, configuration: BackendTrainerConfiguration(parts: .projector))
        let (projectorLoss, projectorGradients) = try projectorOnly.lossAndGradients(fixture.examples)
        #expect(projectorGradients.names == ["projector.bias", "projector.weight"])
        #expect(projectorLoss == loss)
        #expect(projectorGradients["projector.weight"]!.scalars == gradients["projector.weight"]!.scalars)
    }

    @Test func trainingSequencesAreTheBackendsInferenceSequences() throws {
        let fixture = try BackendFixture.load("llama")
        let trainer = try BackendTrainer(backend: fixture.backend, configuration: BackendTrainerConfiguration())
        let example = fixture.examples[1]
        let (loss, _) = try trainer.lossAndGradients([example])
        // The backend's own layout: prefix, projected vectors, prompt text, answer tokens + EOS.
        let answer = try fixture.backend.tokenize(example.answer) + [2]
        let scored = try fixture.backend.logits(for: [.vectors(example.visual), .text(example.prompt), .tokens(answer)])
        let expected = try answerCrossEntropy([AnswerSequence(logits: scored.logits, answerTokens: answer, answerStart: scored.segmentRanges[2].lowerBound)])
        #expect(abs(loss - expected.scalar) <= 1e-6 * abs(expected.scalar), "\(loss) vs \(expected.scalar)")
    }

    @Test("scoring only the answer's rows agrees with every row to float32 rounding, for every trained tensor")
    func answerRowsAgreeWithEveryRow() throws {
        let fixture = try BackendFixture.load("llama")
        var configuration = BackendTrainerConfiguration()
        let rows = try BackendTrainer(backend: fixture.backend, configuration: configuration).lossAndGradients(fixture.examples)
        configuration.scoresAnswerRowsOnly = false
        let every = try BackendTrainer(backend: fixture.backend, configuration: configuration).lossAndGradients(fixture.examples)
        expectAgreementToRounding(every.loss, every.gradients.tensors, rows.loss, rows.gradients.tensors)
    }

    /// Four classes of random visual vectors, each answered with a colour word.
    func colourTask(seed: UInt64, perClass: Int) -> [BackendTrainingExample] {
        var generator = SplitMix64(seed: 1234)
        let prototypes = (0..<4).map { _ in Tensor(randomNormal: [2, 4], generator: &generator) }
        var noise = SplitMix64(seed: seed)
        let colours = ["red", "green", "blue", "gold"]
        return (0..<perClass).flatMap { _ in
            (0..<4).map { c in
                BackendTrainingExample(visual: prototypes[c] + Tensor(randomNormal: [2, 4], standardDeviation: 0.3, generator: &noise),
                                       prompt: "what colour is it ?", answer: colours[c])
            }
        }
    }

    @Test(arguments: ["llama", "gpt2"])
    func learnsToNameTheClassOfVisualVectors(kind: String) throws {
        let model: any CausalLanguageModel
        if kind == "llama" {
            let c = LlamaConfiguration(hiddenSize: 16, intermediateSize: 32, hiddenLayers: 1, attentionHeads: 2, vocabularySize: 20)
            model = try LlamaModel(configuration: c, weights: ModelInitialization.llama(c, seed: 1))
        } else {
            let c = GPT2Configuration(hiddenSize: 16, layers: 1, heads: 2, positions: 32, vocabularySize: 20)
            model = try GPT2Model(configuration: c, weights: ModelInitialization.gpt2(c, seed: 1))
        }
        var generator = SplitMix64(seed: 5)
        let backend = try DecoderBackend(model: model, tokenizer: try BackendFixture.tokenizer(), codebook: try BackendFixture.codebook(),
                                         projectorWeight: Tensor(randomNormal: [16, 4], standardDeviation: 0.1, generator: &generator),
                                         projectorBias: Tensor.zeros([16]), contextLength: 32, prefixTokens: [1], endOfSequenceTokens: [2])
        let training = colourTask(seed: 1, perClass: 6)
        let held = colourTask(seed: 2, perClass: 3)
        let before = try BackendTrainer.accuracy(of: backend, on: held)
        var configuration = BackendTrainerConfiguration(parts: .all, learningRate: 2e-2, epochs: 24, batchSize: 8, seed: 3)
        configuration.warmupSteps = 3
        var steps = 0
        let result = try BackendTrainer(backend: backend, configuration: configuration).train(training) { progress in
            steps = progress.step
            #expect(progress.totalSteps == 72)
        }
        #expect(steps == 72 && result.losses.count == 72)
        let firstLosses: Float = result.losses.prefix(3).reduce(0, +)
        let lastLosses: Float = result.losses.suffix(3).reduce(0, +)
        #expect(lastLosses < 0.1 * firstLosses, "losses \(result.losses)")
        let after = try BackendTrainer.accuracy(of: result.backend, on: held)
        #expect(before < 0.5 && after >= 0.9, "accuracy before \(before), after \(after)")
        // Generation stops on the learned end-of-sequence token.
        let answer = try result.backend.generate([.vectors(held[0].visual), .text(held[0].prompt)], options: GenerationOptions(maximumNewTokens: 6))
        #expect(answer.finishReason == .endOfSequence, "\(answer)")
        // The returned tensors rebuild the same backend.
        let rebuilt: any CausalLanguageModel = kind == "llama"
            ? try LlamaModel(configuration: (model as! LlamaModel).configuration, weights: result.decoderWeights)
            : try GPT2Model(configuration: (model as! GPT2Model).configuration, weights: result.decoderWeights)
        let logits = try rebuilt.logits(tokens: [1, 3, 4])
        #expect(logits.scalars == (try result.backend.model.logits(tokens: [1, 3, 4])).scalars)
    }

    @Test func sameSeedSameRunAndBadInputsAreErrors() throws {
        let fixture = try BackendFixture.load("gpt2")
        let configuration = BackendTrainerConfiguration(parts: .projector, learningRate: 1e-2, epochs: 2, batchSize: 1, seed: 8)
        let first = try BackendTrainer(backend: fixture.backend, configuration: configuration).train(fixture.examples)
        let second = try BackendTrainer(backend: fixture.backend, configuration: configuration).train(fixture.examples)
        #expect(first.losses == second.losses && first.projectorWeight.scalars == second.projectorWeight.scalars)
        // Only the projector moved.
        #expect(first.projectorWeight.scalars != fixture.backend.projectorWeight.scalars)
        let gpt2 = fixture.backend.model as! GPT2Model
        #expect(first.decoderWeights.mapValues(\.scalars) == gpt2.parameters.mapValues(\.scalars))

        let trainer = try BackendTrainer(backend: fixture.backend, configuration: configuration)
        #expect(throws: TrainingError.self) { try trainer.train([]) }
        #expect(throws: TrainingError.self) { try trainer.train([BackendTrainingExample(visual: Tensor.zeros([2, 3]), prompt: "a", answer: "red")]) }
        let long = String(repeating: "big ", count: 40)
        #expect(throws: TrainingError.self) { try trainer.train([BackendTrainingExample(visual: Tensor.zeros([2, 4]), prompt: long, answer: "red")]) }
        #expect(throws: TrainingError.self) { try BackendTrainer(backend: fixture.backend, configuration: BackendTrainerConfiguration(learningRate: -1)) }
    }
}
