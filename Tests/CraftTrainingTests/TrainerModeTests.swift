import CraftCore
import Foundation
import TensorCore
import Testing
import TestSupport
@testable import CraftTraining

/// The continuous variant of the composite fixture (scripts/training_fixtures.py section 3b).
private struct ContinuousCompositeFixture: Decodable {
    struct Values: Decodable {
        let sal: Float, con: Float, total: Float
        let grad_enc_w: [Float], grad_enc_b: [Float]
    }
    let composite_continuous: Values

    static func load() throws -> Values {
        let url = try #require(Bundle.module.url(forResource: "training_fixtures", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(ContinuousCompositeFixture.self, from: Data(contentsOf: url)).composite_continuous
    }
}

/// The composite fixture's linear encoder as a `TrainableEncoder` (pooled features: the mean of `z_e`).
private struct FixtureEncoder: TrainableEncoder {
    var parameters: ParameterSet
    let codebook: Codebook
    var codebookEntries: Int { codebook.entries }

    mutating func setParameters(_ parameters: ParameterSet) throws { self.parameters = parameters }

    func forward(_ inputs: Tensor, parameters: ParameterSet) throws -> EncoderForward {
        let features = inputs.linear(weight: try #require(parameters["weight"]), bias: try #require(parameters["bias"]))
        return EncoderForward(quantization: try codebook.straightThrough(features), pooledFeatures: features.mean(along: 1))
    }
}

/// The composite fixture's frozen head as a surrogate; prompts and answers are token ids written as
/// space-separated numbers.
private struct FixtureSurrogate: TrainingSurrogate {
    let head: TinyHead
    let visualTokens: Int

    static func ids(_ text: String) -> [Int32] { text.split(separator: " ").compactMap { Int32($0) } }

    func score(visual: Tensor, prompt: String, answer: String) throws -> AnswerSequence {
        let prompt = Self.ids(prompt), answer = Self.ids(answer)
        return AnswerSequence(logits: try head.logits(visual: visual, tokens: prompt + answer), answerTokens: answer,
                              answerStart: visualTokens + prompt.count)
    }

    func answer(visual: Tensor, prompt: String) throws -> String { "" }
}

/// The composite fixture's text embeddings, looked up by the example's caption (its batch index).
private struct FixtureTextEmbedder: TextEmbedder {
    let embeddings: Tensor
    func embed(_ texts: [String]) throws -> Tensor {
        let rows = try texts.map { text in try #require(Int32(text)) }
        return try embeddings.rows(at: IndexTensor(rows))
    }
}

@Suite("Trainer modes: CRAFT and the continuous baseline")
struct TrainerModeTests {
    /// The fixture's batch through the trainer's own loss: the encoder-weight gradients of both modes.
    func fixtureGradients(mode: TrainingMode) throws -> (loss: CraftLoss, gradients: ParameterSet) {
        let f = try TrainingFixtures.load().composite
        let codebook = try Codebook(values: f.codebook, entries: f.k, dimension: f.d, metric: .l2)
        let encoder = FixtureEncoder(
            parameters: ParameterSet(["weight": Tensor(f.enc_w, shape: [f.d, f.din]), "bias": Tensor(f.enc_b, shape: [f.d])]),
            codebook: codebook)
        let head = TinyHead(
            projectorWeight: Tensor(f.proj_w, shape: [f.h, f.d]), projectorBias: Tensor(f.proj_b, shape: [f.h]),
            embedding: Tensor(f.embed, shape: [f.v, f.h]), hidden: Tensor(f.head_w1, shape: [f.h, f.h]),
            output: Tensor(f.head_w2, shape: [f.v, f.h]))
        let pixels = Tensor(f.pixels, shape: [f.b, f.p, f.din])
        let examples = (0..<f.b).map { index in
            TrainingExample(
                imageURL: URL(fileURLWithPath: "/fixture/\(index)"), imagePath: "\(index)",
                prompt: f.prompts[(index * f.lp)..<((index + 1) * f.lp)].map { String($0) }.joined(separator: " "),
                answer: f.answers[(index * f.la)..<((index + 1) * f.la)].map { String($0) }.joined(separator: " "),
                caption: "\(index)", line: index + 1)
        }
        var configuration = TrainerConfiguration()
        configuration.mode = mode
        configuration.objective = CraftObjective(contrastiveWeight: f.lambda_con, commitmentWeight: f.lambda_commit,
                                                 logitScale: f.logit_scale, logitBias: f.logit_bias)
        configuration.batchSize = f.b
        let trainer = try Trainer(
            encoder: encoder, surrogate: FixtureSurrogate(head: head, visualTokens: f.p),
            textEmbedder: FixtureTextEmbedder(embeddings: Tensor(f.text_emb, shape: [f.b, f.d])),
            inputs: { example in
                let index = try #require(Int(example.imagePath))
                return pixels.sliced(along: 0, index..<(index + 1)).squeezed(0)
            },
            configuration: configuration)
        let leaves = encoder.parameters.requiringGradients()
        let forward = try trainer.encoder.forward(try trainer.batchInputs(examples), parameters: leaves)
        let loss = try trainer.batchLoss(examples, forward: forward)
        return (loss, leaves.gradients(of: loss.total))
    }

    @Test("CRAFT mode: the trainer's loss and encoder gradients equal torch's composite (straight-through)")
    func craftModeMatchesTorch() throws {
        let f = try TrainingFixtures.load().composite
        let (loss, gradients) = try fixtureGradients(mode: .craft)
        let values = approximatelyEqual(
            [loss.terms.alignment, loss.terms.commitment, loss.terms.contrastive, loss.terms.total].compactMap { $0 },
            [f.sal, f.commit, f.con, f.total])
        #expect(values.ok, "\(values.report)")
        let weight = approximatelyEqual(try #require(gradients["weight"]).scalars, f.grad_enc_w, relative: 1e-4, absolute: 1e-6)
        #expect(weight.ok, "\(weight.report)")
        let bias = approximatelyEqual(try #require(gradients["bias"]).scalars, f.grad_enc_b, relative: 1e-4, absolute: 1e-6)
        #expect(bias.ok, "\(bias.report)")
    }

    @Test("continuous mode: the surrogate reads z_e, no commitment; loss and gradients equal torch's")
    func continuousModeMatchesTorch() throws {
        let reference = try ContinuousCompositeFixture.load()
        let craft = try TrainingFixtures.load().composite
        let (loss, gradients) = try fixtureGradients(mode: .continuous)
        #expect(loss.terms.commitment == nil)
        let values = approximatelyEqual(
            [loss.terms.alignment, loss.terms.contrastive, loss.terms.total].compactMap { $0 },
            [reference.sal, reference.con, reference.total])
        #expect(values.ok, "\(values.report)")
        let weight = try #require(gradients["weight"]).scalars
        let weightCheck = approximatelyEqual(weight, reference.grad_enc_w, relative: 1e-4, absolute: 1e-6)
        #expect(weightCheck.ok, "\(weightCheck.report)")
        let bias = approximatelyEqual(try #require(gradients["bias"]).scalars, reference.grad_enc_b, relative: 1e-4, absolute: 1e-6)
        #expect(bias.ok, "\(bias.report)")
        // Without the straight-through estimator the gradient is a different one.
        #expect(!approximatelyEqual(weight, craft.grad_enc_w, relative: 1e-3, absolute: 1e-5).ok)
    }

    @Test("continuous mode trains the encoder, logs no commitment term, and validates on z_e")
    func continuousModeTrainsAndValidatesOnFeatures() throws {
        let task = try TinyTask()
        var configuration = TrainerConfiguration()
        configuration.mode = .continuous
        configuration.objective = CraftObjective(usesContrastive: false)
        configuration.learningRate = 0.05
        configuration.batchSize = 6
        configuration.epochs = 4
        configuration.seed = 3
        var trainer = try task.trainer(configuration)
        let validation = TrainingDataset(examples: task.examples(1000..<1030))
        let before = try trainer.accuracy(on: validation)
        var records: [TrainingLogRecord] = []
        let summary = try trainer.train(training: TrainingDataset(examples: task.examples(0..<48)), validation: validation) {
            records.append($0.record)
        }
        let steps = records.filter { $0.event == "step" }
        #expect(steps.count == summary.steps && !steps.isEmpty)
        #expect(steps.allSatisfy { $0.commitment == nil && $0.alignment != nil && $0.codebookUsage != nil })
        #expect(summary.parameters["weight"]!.scalars != trainer.baseParameters["weight"]!.scalars)
        let after = try #require(summary.validationAccuracies.last)
        #expect(after > before, "continuous accuracy \(before) -> \(summary.validationAccuracies)")

        // accuracy(on:) feeds z_e in continuous mode: recompute it by hand from the encoder output.
        var correct = 0, disagreements = 0
        for example in validation.examples {
            let forward = try trainer.encoder.forward(try trainer.batchInputs([example]), parameters: trainer.encoder.parameters)
            let continuous = try trainer.surrogate.answer(visual: forward.quantization.encoderOutput.squeezed(0), prompt: example.prompt)
            let quantized = try trainer.surrogate.answer(visual: forward.quantization.codeVectors.squeezed(0), prompt: example.prompt)
            if continuous == example.answer { correct += 1 }
            if continuous != quantized { disagreements += 1 }
        }
        #expect(try trainer.accuracy(on: validation) == Double(correct) / Double(validation.count))
        // The check above can tell z_e from z_q only if some answers differ between them.
        #expect(disagreements > 0)
    }

    @Test("a checkpoint of one mode is not resumed in the other; checkpoints without a mode are CRAFT's")
    func resumeKeepsTheMode() throws {
        let task = try TinyTask()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("craft-mode-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let checkpoint = directory.appendingPathComponent("checkpoint")
        var configuration = TrainerConfiguration()
        configuration.objective = CraftObjective(usesContrastive: false)
        configuration.batchSize = 6
        configuration.stopAfterSteps = 1
        var craft = try task.trainer(configuration)
        _ = try craft.train(training: TrainingDataset(examples: task.examples(0..<12)), validation: nil, checkpointDirectory: checkpoint)
        let saved = try TrainingCheckpoint.read(from: checkpoint, expected: craft.encoder.parameters)
        #expect(saved.state.mode == .craft)
        configuration.mode = .continuous
        configuration.stopAfterSteps = 2
        var continuous = try task.trainer(configuration)
        let error = try #require(throws: TrainingError.self) {
            try continuous.train(training: TrainingDataset(examples: task.examples(0..<12)), validation: nil, checkpointDirectory: checkpoint)
        }
        #expect(error.code == .invalidCheckpoint && error.message.contains("craft run") && error.message.contains("continuous"))
        let old = try JSONDecoder().decode(TrainingState.self, from: Data(#"{"format_version": 1, "step": 2, "epoch": 0, "next_batch": 2, "seed": 1, "epochs_without_improvement": 0, "stopped_early": false}"#.utf8))
        #expect(old.mode == nil && old.step == 2)
    }

    @Test("continuous mode with only the commitment term is refused")
    func continuousNeedsATermBesidesCommitment() throws {
        var configuration = TrainerConfiguration()
        configuration.mode = .continuous
        configuration.objective = CraftObjective(usesContrastive: false, usesAlignment: false)
        let error = try #require(throws: TrainingError.self) { try configuration.validate() }
        #expect(error.code == .invalidConfiguration && error.message.contains("continuous"))
        configuration.mode = .craft
        try configuration.validate()
        #expect(configuration.effectiveObjective.usesCommitment)
    }
}

@Suite("TrainerConfiguration coding")
struct TrainerConfigurationCodingTests {
    @Test("modes are the strings craft and continuous; a configuration round-trips")
    func roundTrip() throws {
        var configuration = TrainerConfiguration()
        configuration.mode = .continuous
        configuration.maximumGradientNorm = nil
        configuration.stopAfterSteps = 7
        configuration.seed = 42
        let data = try JSONEncoder().encode(configuration)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["mode"] as? String == "continuous")
        #expect(object["maximumGradientNorm"] is NSNull)
        #expect(try JSONDecoder().decode(TrainerConfiguration.self, from: data) == configuration)
        #expect(try JSONDecoder().decode(TrainingMode.self, from: Data("\"craft\"".utf8)) == .craft)
    }

    @Test("a configuration saved before `mode` existed decodes as CRAFT; missing keys keep their defaults")
    func olderConfigurationsDecode() throws {
        let old = #"{"learningRate": 0.001, "epochs": 3, "batchSize": 4, "seed": 9, "objective": {"contrastiveWeight": 0.1, "commitmentWeight": 0.1, "usesContrastive": true, "usesCommitment": true, "usesAlignment": true, "logitScale": 2.3, "logitBias": -10}}"#
        let decoded = try JSONDecoder().decode(TrainerConfiguration.self, from: Data(old.utf8))
        #expect(decoded.mode == .craft)
        #expect(decoded.learningRate == 0.001 && decoded.epochs == 3 && decoded.batchSize == 4 && decoded.seed == 9)
        #expect(decoded.maximumGradientNorm == 1.0 && decoded.gradientAccumulationSteps == 1 && decoded.tracksCodeDrift)
        #expect(decoded.objective.contrastiveWeight == 0.1)
        #expect(try JSONDecoder().decode(TrainerConfiguration.self, from: Data("{}".utf8)) == TrainerConfiguration())
    }

    @Test("an unknown mode is a decoding error naming the value")
    func unknownModeIsRefused() throws {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(TrainerConfiguration.self, from: Data(#"{"mode": "frozen"}"#.utf8))
        }
    }
}
