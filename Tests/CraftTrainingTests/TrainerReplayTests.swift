import CraftCore
import Foundation
import TensorCore
import Testing
@testable import CraftTraining

/// The tiny task with a second, "general" domain: examples whose index is at least
/// ``TwoDomainTask/generalOffset`` are drawn around other class prototypes (the same classes, codebook
/// and frozen surrogate).
struct TwoDomainTask {
    static let generalOffset = 100_000
    let task: TinyTask
    let generalPrototypes: [Tensor]

    init() throws {
        task = try TinyTask()
        var generator = SplitMix64(seed: 77)
        generalPrototypes = TinyTask.classes.map { _ in
            Tensor(randomNormal: [TinyTask.tokens, TinyTask.inputDimension], generator: &generator)
        }
    }

    func domain(_ range: Range<Int>) -> TrainingDataset { TrainingDataset(examples: task.examples(range)) }

    func general(_ range: Range<Int>) -> TrainingDataset {
        TrainingDataset(examples: task.examples((range.lowerBound + Self.generalOffset)..<(range.upperBound + Self.generalOffset)))
    }

    var inputs: @Sendable (TrainingExample) throws -> Tensor {
        let domain = task.inputs, prototypes = generalPrototypes
        return { example in
            guard let index = Int(example.imagePath), index >= Self.generalOffset else { return try domain(example) }
            guard let label = TinyTask.classes.firstIndex(of: example.answer) else {
                throw TrainingError(.invalidDataset, "bad synthetic example \(example.imagePath)")
            }
            var generator = SplitMix64(seed: UInt64(index) &* 104_729 &+ 5)
            return prototypes[label] + Tensor(randomNormal: [TinyTask.tokens, TinyTask.inputDimension], standardDeviation: 0.3, generator: &generator)
        }
    }

    func trainer(_ configuration: TrainerConfiguration, encoder: TinyEncoder? = nil) throws -> Trainer<TinyEncoder, TinySurrogate> {
        try Trainer(
            encoder: encoder ?? TinyEncoder(inputDimension: TinyTask.inputDimension, codebook: task.codebook, seed: 5),
            surrogate: TinySurrogate(vocabulary: TinyTask.classes, codebookDimension: TinyTask.codebookDimension, hidden: 16, seed: 9),
            textEmbedder: nil, inputs: inputs, configuration: configuration)
    }
}

func readLog(_ url: URL) throws -> [TrainingLogRecord] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
        try JSONDecoder().decode(TrainingLogRecord.self, from: Data($0.utf8))
    }
}

@Suite("Trainer replay and general-domain retention")
struct TrainerReplayTests {
    func configuration() -> TrainerConfiguration {
        var configuration = TrainerConfiguration()
        configuration.objective = CraftObjective(usesContrastive: false)
        configuration.learningRate = 0.05
        configuration.warmupSteps = 2
        configuration.batchSize = 4
        configuration.gradientAccumulationSteps = 2
        configuration.epochs = 3
        configuration.seed = 3
        configuration.replayPerBatch = 3
        configuration.replayWeight = 0.5
        return configuration
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("craft-replay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("replay draws are a pure function of (seed, micro-batch) and use every example once per pass")
    func replayOrderIsPureAndCoversEachPass() throws {
        let two = try TwoDomainTask()
        let replay = two.general(0..<10)
        typealias T = Trainer<TinyEncoder, TinySurrogate>
        let draws = (0..<10).flatMap { T.replayExamples(replay, count: 3, microBatch: $0, seed: 3).map(\.imagePath) }
        #expect(draws == (0..<10).flatMap { T.replayExamples(replay, count: 3, microBatch: $0, seed: 3).map(\.imagePath) })
        for pass in 0..<3 {
            #expect(Set(draws[(pass * 10)..<((pass + 1) * 10)]) == Set(replay.examples.map(\.imagePath)), "pass \(pass)")
        }
        #expect(draws[0..<10] != draws[10..<20])  // each pass has its own order
        let otherSeed = (0..<4).flatMap { T.replayExamples(replay, count: 3, microBatch: $0, seed: 4).map(\.imagePath) }
        #expect(Array(draws[0..<12]) != otherSeed)
        // The replay order is not the training order of the same seed.
        #expect(Array(draws[0..<10]) != replay.order(epoch: 0, seed: 3).map { replay.examples[$0].imagePath })
    }

    @Test("with replay and a general-domain set, a resumed run equals a straight one; the log has replay_loss and general_accuracy")
    func resumeWithReplayIsExact() throws {
        let two = try TwoDomainTask()
        let training = two.domain(0..<28), validation = two.domain(500..<506)
        let general = two.general(500..<509), replay = two.general(0..<11)
        let configuration = configuration()  // 7 batches per epoch -> 4 steps per epoch, 12 in all
        var straight = try two.trainer(configuration)
        let reference = try straight.train(training: training, validation: validation, generalValidation: general, replay: replay)
        #expect(reference.steps == 12)

        var withoutReplay = try two.trainer(configuration)
        let plain = try withoutReplay.train(training: training, validation: validation)
        #expect(plain.parameters["weight"]!.scalars != reference.parameters["weight"]!.scalars, "replay changes training")

        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let checkpoint = directory.appendingPathComponent("checkpoint")
        let killed = directory.appendingPathComponent("killed")
        let logURL = directory.appendingPathComponent("log.jsonl")
        var interrupted = configuration
        interrupted.checkpointEvery = 3
        interrupted.stopAfterSteps = 8
        var first = try two.trainer(interrupted)
        _ = try first.train(training: training, validation: validation, generalValidation: general, replay: replay,
                            checkpointDirectory: checkpoint, logURL: logURL) { progress in
            if progress.record.event == "step" && progress.record.step == 7 {
                try? FileManager.default.copyItem(at: checkpoint, to: killed)
            }
        }
        var resumedConfiguration = configuration
        resumedConfiguration.checkpointEvery = 3
        var resumed = try two.trainer(resumedConfiguration)
        let result = try resumed.train(training: training, validation: validation, generalValidation: general, replay: replay,
                                       checkpointDirectory: killed, logURL: logURL)
        #expect(result.steps == 12)
        for name in reference.parameters.names {
            #expect(result.parameters[name]!.scalars == reference.parameters[name]!.scalars, "\(name)")
        }
        #expect(result.generalAccuracyBefore == reference.generalAccuracyBefore)
        #expect(result.generalAccuracyAfter == reference.generalAccuracyAfter)

        let records = try readLog(logURL)
        let steps = records.filter { $0.event == "step" }
        #expect(steps.map(\.step) == Array(1...12))
        #expect(steps.allSatisfy { ($0.replayLoss ?? -1) > 0 && ($0.commitmentDistance ?? -1) > 0 })
        // The step's loss is the domain loss plus the weighted replay loss.
        for step in steps {
            let domain = (step.alignment ?? 0) + 0.1 * (step.commitment ?? 0)
            #expect(abs((step.loss ?? 0) - (domain + 0.5 * (step.replayLoss ?? 0))) < 1e-4, "step \(step.step)")
        }
        let validations = records.filter { $0.event == "validation" }
        #expect(validations.count == 3 && validations.allSatisfy { $0.generalAccuracy != nil && $0.validationAccuracy != nil })
        // The result is the best validated epoch's encoder, and the general accuracy after is that epoch's.
        let best = try #require(result.best)
        #expect(validations.first { $0.step == best.step }?.generalAccuracy == result.generalAccuracyAfter)
    }

    @Test("retention: general-domain accuracy before and after, per epoch, equal to accuracy(on:) of the base and trained encoders")
    func retentionNumbersArePresent() throws {
        let two = try TwoDomainTask()
        let general = two.general(500..<530)
        var configuration = configuration()
        configuration.epochs = 2
        configuration.stopAfterSteps = 6  // ends mid-epoch: "after" is measured afresh
        var trainer = try two.trainer(configuration)
        let before = try trainer.accuracy(on: general)
        let summary = try trainer.train(training: two.domain(0..<28), validation: nil, generalValidation: general)
        #expect(summary.validationAccuracies.isEmpty)
        #expect(summary.generalAccuracies.count == 1)
        #expect(summary.generalAccuracyBefore == before)
        let after = try trainer.accuracy(on: general)
        #expect(summary.generalAccuracyAfter == after)
        #expect(try trainer.accuracy(on: general) == trainer.validationAccuracy(general))

        var plain = try two.trainer(configuration)
        let none = try plain.train(training: two.domain(0..<28), validation: nil)
        #expect(none.generalAccuracyBefore == nil && none.generalAccuracyAfter == nil && none.generalAccuracies.isEmpty)
        #expect(none.parameters["weight"]!.scalars == summary.parameters["weight"]!.scalars, "measuring does not change training")
    }

    @Test("replay measurably mitigates forgetting: an encoder trained on the general domain, then adapted, keeps more general accuracy with replay")
    func replayMitigatesForgetting() throws {
        let two = try TwoDomainTask()
        var configuration = TrainerConfiguration()
        configuration.objective = CraftObjective(usesContrastive: false)
        configuration.learningRate = 0.05
        configuration.warmupSteps = 2
        configuration.batchSize = 6
        configuration.epochs = 8
        configuration.seed = 3
        configuration.replayPerBatch = 3
        configuration.replayWeight = 1
        // Stage 1: the "base" encoder learns the general domain.
        var base = try two.trainer(configuration)
        let pretraining = try base.train(training: two.general(0..<48), validation: two.general(500..<530))
        try #require((pretraining.validationAccuracies.last ?? 0) >= 0.9, "general accuracy \(pretraining.validationAccuracies)")
        // Stage 2: adapt it to the domain, without and with replay of general-domain training examples.
        func adapt(replay: TrainingDataset?) throws -> TrainingSummary {
            var trainer = try two.trainer(configuration, encoder: base.encoder)
            return try trainer.train(training: two.domain(0..<48), validation: two.domain(1000..<1030),
                                     generalValidation: two.general(500..<530), replay: replay)
        }
        let plain = try adapt(replay: nil)
        let replayed = try adapt(replay: two.general(0..<48))
        let before = try #require(plain.generalAccuracyBefore)
        #expect(replayed.generalAccuracyBefore == before)
        // Measured: general 0.97 -> 0.60 without replay, -> 1.00 with it; domain 0.40 -> 0.97 / 0.67.
        let plainAfter = try #require(plain.generalAccuracyAfter), replayedAfter = try #require(replayed.generalAccuracyAfter)
        #expect(plainAfter <= before - 0.2, "without replay the general domain is forgotten: \(before) -> \(plainAfter)")
        #expect(replayedAfter >= plainAfter + 0.2, "general accuracy after: \(replayedAfter) with replay, \(plainAfter) without")
        let domainStart = try base.accuracy(on: two.domain(1000..<1030))
        #expect((replayed.validationAccuracies.last ?? 0) > domainStart + 0.15, "with replay the domain is still learned: \(domainStart) -> \(replayed.validationAccuracies)")
        #expect((plain.validationAccuracies.last ?? 0) >= 0.9)
    }

    @Test("replay weight 0 trains exactly as no replay, yet logs the replay loss")
    func zeroReplayWeightIsNoReplay() throws {
        let two = try TwoDomainTask()
        var configuration = configuration()
        configuration.replayWeight = 0
        var weighted = try two.trainer(configuration)
        var records: [TrainingLogRecord] = []
        let a = try weighted.train(training: two.domain(0..<20), validation: nil, replay: two.general(0..<8)) { records.append($0.record) }
        var plain = try two.trainer(configuration)
        let b = try plain.train(training: two.domain(0..<20), validation: nil)
        for name in a.parameters.names { #expect(a.parameters[name]!.scalars == b.parameters[name]!.scalars) }
        #expect(!records.isEmpty && records.allSatisfy { $0.replayLoss != nil })
    }

    @Test("empty replay or general-domain sets and bad replay options are refused")
    func badReplayInputsAreRefused() throws {
        let two = try TwoDomainTask()
        var trainer = try two.trainer(configuration())
        let empty = TrainingDataset(examples: [])
        let replayError = try #require(throws: TrainingError.self) {
            try trainer.train(training: two.domain(0..<8), validation: nil, replay: empty)
        }
        #expect(replayError.code == .invalidDataset && replayError.message.contains("replay"))
        let generalError = try #require(throws: TrainingError.self) {
            try trainer.train(training: two.domain(0..<8), validation: nil, generalValidation: empty)
        }
        #expect(generalError.code == .invalidDataset && generalError.message.contains("general-domain"))
        var configuration = configuration()
        configuration.replayPerBatch = 0
        #expect(throws: TrainingError.self) { try configuration.validate() }
        configuration.replayPerBatch = 2
        configuration.replayWeight = -1
        #expect(throws: TrainingError.self) { try configuration.validate() }
    }
}
