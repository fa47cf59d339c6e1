import CraftCore
import Foundation
import TensorCore
import Testing
@testable import CraftTraining

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Safe defaults of the trainer: the best validated epoch is the result, checkpoints at every epoch
/// and every N steps, interruption with a checkpoint at the exact step, a log without repeats.
@Suite("Trainer: safe by default")
struct TrainerSafetyTests {
    let task: TinyTask
    init() throws { task = try TinyTask() }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("craft-trainer-safety-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A run whose validation accuracy peaks at epoch 1 and falls after it: 0.78, 1.0, 0.67, 0.56, 0.78
    /// (a large constant learning rate on the tiny task; 2 steps per epoch).
    func oscillating(epochs: Int = 5) -> TrainerConfiguration {
        var configuration = TrainerConfiguration()
        configuration.objective = CraftObjective(usesContrastive: false)
        configuration.learningRate = 1.0
        configuration.schedule = .constant
        configuration.batchSize = 6
        configuration.epochs = epochs
        configuration.seed = 0
        return configuration
    }

    var training: TrainingDataset { TrainingDataset(examples: task.examples(0..<12)) }
    var validation: TrainingDataset { TrainingDataset(examples: task.examples(100..<109)) }

    func readLog(_ url: URL) throws -> [TrainingLogRecord] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(TrainingLogRecord.self, from: Data($0.utf8))
        }
    }

    @Test("the best validated epoch, not the last, is the result (and the encoder's parameters); restoresBestEpoch off gives the last")
    func bestEpochIsTheResult() throws {
        var trainer = try task.trainer(oscillating())
        let summary = try trainer.train(training: training, validation: validation)
        let best = try #require(summary.best)
        #expect(best.epoch == 1 && best.step == 4 && best.validationAccuracy == 1.0, "\(summary.validationAccuracies)")
        #expect(try #require(summary.validationAccuracies.last) < best.validationAccuracy, "\(summary.validationAccuracies)")
        #expect(summary.restoredBest && !summary.partial && summary.steps == 10 && summary.plannedSteps == 10)
        #expect(summary.parameters["weight"]!.scalars != summary.lastParameters["weight"]!.scalars)
        #expect(trainer.encoder.parameters["weight"]!.scalars == summary.parameters["weight"]!.scalars)
        #expect(try trainer.accuracy(on: validation) == best.validationAccuracy)

        // The result equals the parameters the same run had at the best epoch's step.
        var stopped = oscillating()
        stopped.stopAfterSteps = best.step
        var prefix = try task.trainer(stopped)
        let atBest = try prefix.train(training: training, validation: validation)
        #expect(atBest.partial && atBest.steps == best.step && atBest.plannedSteps == 10)
        for name in summary.parameters.names {
            #expect(atBest.lastParameters[name]!.scalars == summary.parameters[name]!.scalars, "\(name)")
        }

        var keepLast = oscillating()
        keepLast.restoresBestEpoch = false
        var last = try task.trainer(keepLast)
        let lastSummary = try last.train(training: training, validation: validation)
        #expect(!lastSummary.restoredBest && lastSummary.best == best)
        #expect(lastSummary.parameters["weight"]!.scalars == summary.lastParameters["weight"]!.scalars)
    }

    @Test("early stopping (patience) restores the best epoch's parameters")
    func patienceRestoresBest() throws {
        var configuration = oscillating()
        configuration.earlyStoppingPatience = 2
        var trainer = try task.trainer(configuration)
        let summary = try trainer.train(training: training, validation: validation)
        #expect(summary.stoppedEarly && !summary.partial && summary.epochsCompleted == 4, "\(summary.validationAccuracies)")
        #expect(summary.best?.epoch == 1 && summary.restoredBest)
        #expect(try trainer.accuracy(on: validation) == 1.0)
        var full = try task.trainer(oscillating())
        #expect(try full.train(training: training, validation: validation).parameters["weight"]!.scalars == summary.parameters["weight"]!.scalars)
    }

    @Test("checkpoints are written at every epoch's end and every N steps; the checkpoint keeps the best epoch's parameters")
    func checkpointsEveryEpochAndEveryNSteps() throws {
        #expect(TrainerConfiguration().checkpointEvery == 50, "on by default")
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (every, expected) in [(Int?.none, [nil, nil, 2, 2, 4, 4]), (3, [nil, nil, 2, 3, 4, 4])] {
            let checkpoint = directory.appendingPathComponent("checkpoint-\(every ?? 0)")
            var configuration = oscillating(epochs: 3)
            configuration.checkpointEvery = every
            var trainer = try task.trainer(configuration)
            var seen: [Int?] = []
            let parameters = trainer.encoder.parameters
            let summary = try trainer.train(training: training, validation: validation, checkpointDirectory: checkpoint) { progress in
                guard progress.record.event == "step" else { return }
                seen.append(try? TrainingCheckpoint.read(from: checkpoint, expected: parameters).state.step)
            }
            #expect(seen == expected, "checkpoint steps seen before each step with --checkpoint-every \(every.map(String.init) ?? "off")")
            let final = try TrainingCheckpoint.read(from: checkpoint, expected: parameters)
            #expect(final.state.step == 6 && final.state.epoch == 3 && final.state.bestStep == summary.best?.step)
            #expect(final.bestParameters?["weight"]?.scalars == summary.parameters["weight"]!.scalars)
            #expect(final.parameters["weight"]!.scalars == summary.lastParameters["weight"]!.scalars)
        }
    }

    @Test("an interruption writes the checkpoint at the exact step (mid-epoch or before the epoch's validation); the resume equals a straight run, each step and validation logged once")
    func interruptionCheckpointsAndResumesExactly() throws {
        var configuration = oscillating(epochs: 3)
        configuration.batchSize = 4  // 3 steps per epoch, 9 in all
        configuration.learningRate = 0.3
        configuration.checkpointEvery = nil
        var straight = try task.trainer(configuration)
        let reference = try straight.train(training: training, validation: validation)
        #expect(reference.steps == 9)

        for stopAt in [3, 4] {
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let checkpoint = directory.appendingPathComponent("checkpoint")
            let logURL = directory.appendingPathComponent("log.jsonl")
            let interruption = TrainingInterruption()
            var first = try task.trainer(configuration)
            let error = try #require(throws: TrainingError.self) {
                try first.train(training: training, validation: validation, checkpointDirectory: checkpoint, logURL: logURL,
                                interruption: interruption) { progress in
                    if progress.record.event == "step" && progress.record.step == stopAt { interruption.request(signal: SIGTERM) }
                }
            }
            #expect(error.code == .interrupted && error.message.contains("SIGTERM") && error.message.contains("after step \(stopAt)"), "\(error.message)")
            #expect(interruption.exitStatus == 143)
            let saved = try TrainingCheckpoint.read(from: checkpoint, expected: first.baseParameters)
            #expect(saved.state.step == stopAt && saved.state.epoch == (stopAt - 1) / 3)
            #expect(try readLog(logURL).filter { $0.event == "step" }.map(\.step) == Array(1...stopAt))

            var resumed = try task.trainer(configuration)
            let result = try resumed.train(training: training, validation: validation, checkpointDirectory: checkpoint, logURL: logURL)
            #expect(result.steps == 9 && result.best == reference.best)
            for name in reference.parameters.names {
                #expect(result.parameters[name]!.scalars == reference.parameters[name]!.scalars, "\(name) after a stop at \(stopAt)")
                #expect(result.lastParameters[name]!.scalars == reference.lastParameters[name]!.scalars, "\(name) after a stop at \(stopAt)")
            }
            let records = try readLog(logURL)
            #expect(records.filter { $0.event == "step" }.map(\.step) == Array(1...9))
            #expect(records.filter { $0.event == "validation" }.map(\.epoch) == [0, 1, 2])
        }
    }

    @Test("a run without a checkpoint starts its log afresh; a resume drops later steps, the pending epoch's validation and torn lines")
    func logHasNoRepeats() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let logURL = directory.appendingPathComponent("log.jsonl")
        func line(_ event: String, _ step: Int, _ epoch: Int) -> String { "{\"epoch\":\(epoch),\"event\":\"\(event)\",\"step\":\(step)}\n" }
        // A killed run that wrote no checkpoint: all of its records are stale.
        try Data((line("step", 1, 0) + line("step", 2, 0) + "{\"epoch\":0,\"ev").utf8).write(to: logURL)
        var trainer = try task.trainer(oscillating(epochs: 2))
        _ = try trainer.train(training: training, validation: validation, logURL: logURL)
        let records = try readLog(logURL)
        #expect(records.filter { $0.event == "step" }.map(\.step) == [1, 2, 3, 4])
        #expect(records.filter { $0.event == "validation" }.map(\.epoch) == [0, 1])

        // A checkpoint at step 3 of epoch 1 (before its validation): steps 1-3 and epoch 0's validation stay.
        try Data((line("step", 1, 0) + line("step", 2, 0) + line("validation", 2, 0) + line("step", 3, 1) + line("step", 4, 1)
                  + line("validation", 4, 1) + "{\"ep").utf8).write(to: logURL)
        try TrainingLogWriter(url: logURL).dropRecords(after: 3, validationsFrom: 1)
        #expect(try readLog(logURL).map { "\($0.event) \($0.step)" } == ["step 1", "step 2", "validation 2", "step 3"])
    }

    @Test("a checkpoint that names a best epoch must hold its parameters")
    func checkpointWithBestParameters() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let parameters = ParameterSet(["w": Tensor([1, 2], shape: [2])])
        let best = ParameterSet(["w": Tensor([3, 4], shape: [2])])
        let url = directory.appendingPathComponent("checkpoint")
        var state = TrainingState(step: 4, epoch: 2, seed: 1, bestValidationAccuracy: 0.5, bestEpoch: 0, bestStep: 2)
        try TrainingCheckpoint(parameters: parameters, optimizer: AdamW(parameters: parameters), state: state, bestParameters: best).write(to: url)
        let back = try TrainingCheckpoint.read(from: url, expected: parameters)
        #expect(back.bestParameters?["w"]?.scalars == [3, 4] && back.state.bestEpoch == 0 && back.state.bestStep == 2)

        state.bestStep = 3
        try TrainingCheckpoint(parameters: parameters, optimizer: AdamW(parameters: parameters), state: state).write(to: url)
        let error = try #require(throws: TrainingError.self) { try TrainingCheckpoint.read(from: url, expected: parameters) }
        #expect(error.code == .invalidCheckpoint && error.message.contains("best.w"), "\(error.message)")
        // A temporary directory left by a writer killed mid-write is swept by the next write.
        let leftover = directory.appendingPathComponent(".checkpoint.123.tmp")
        try FileManager.default.createDirectory(at: leftover, withIntermediateDirectories: true)
        try TrainingCheckpoint(parameters: parameters, optimizer: AdamW(parameters: parameters), state: TrainingState(seed: 1)).write(to: url)
        #expect(!FileManager.default.fileExists(atPath: leftover.path))
    }

    @Test("the interruption flag keeps the first request; the exit status is 128 + signal")
    func interruptionFlag() {
        let interruption = TrainingInterruption()
        #expect(!interruption.isRequested && interruption.exitStatus == nil)
        interruption.request(signal: SIGINT)
        interruption.request(signal: SIGTERM)
        #expect(interruption.signal == SIGINT && interruption.exitStatus == 130)
        #expect(TrainingInterruption.name(of: SIGINT) == "SIGINT" && TrainingInterruption.name(of: SIGTERM) == "SIGTERM")
    }
}
