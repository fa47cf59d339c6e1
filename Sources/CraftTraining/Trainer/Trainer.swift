// The CRAFT training loop (docs/training.md): only the encoder is trained; the codebook, projector
// and surrogate are frozen. AdamW + cosine schedule + clipping + accumulation, JSONL logging,
// per-epoch validation through the surrogate, early stopping, atomic checkpoints and exact resume;
// the continuous baseline (TrainingMode), general-domain replay and retention measurement.
import CraftCore
import Foundation
import TensorCore

/// What the trainer reports after each optimiser step and each validation.
public struct TrainingProgress: Sendable {
    /// The log record of the step or validation.
    public var record: TrainingLogRecord
    /// Total optimiser steps the schedule spans.
    public var totalSteps: Int
}

/// How a run ended.
public struct TrainingSummary: Sendable {
    /// Optimiser steps taken in total (including before a resume).
    public var steps: Int
    /// Epochs completed.
    public var epochsCompleted: Int
    /// Validation accuracy per validated epoch of this run.
    public var validationAccuracies: [Double]
    /// General-domain accuracy per validated epoch of this run (when a general-domain set is given).
    public var generalAccuracies: [Double]
    /// General-domain accuracy of the base encoder (the parameters the trainer was created with),
    /// when a general-domain set is given.
    public var generalAccuracyBefore: Double?
    /// General-domain accuracy of the trained encoder, when a general-domain set is given.
    public var generalAccuracyAfter: Double?
    /// Whether early stopping ended the run.
    public var stoppedEarly: Bool
    /// Whether the run stopped at ``TrainerConfiguration/stopAfterSteps`` before its planned end
    /// (the last epoch, or early stopping): the parameters are those of an unfinished run.
    public var partial: Bool
    /// The optimiser steps the schedule spans (all epochs).
    public var plannedSteps: Int
    /// The best validated epoch (counting from 0), its step and its validation accuracy; `nil` when no
    /// epoch was validated (no validation set, or a run stopped before its first epoch's end).
    public var best: BestEpoch?
    /// The parameters the run gives as its result: the best validated epoch's when there is one and
    /// ``TrainerConfiguration/restoresBestEpoch`` is on (the default), else ``lastParameters``.
    public var parameters: ParameterSet
    /// The parameters after the last step taken.
    public var lastParameters: ParameterSet
    /// Whether ``parameters`` are the best validated epoch's (rather than the last step's).
    public var restoredBest: Bool
}

/// The best validated epoch of a run.
public struct BestEpoch: Sendable, Equatable {
    /// The epoch, counting from 0 (as in the log).
    public var epoch: Int
    /// Optimiser steps taken when it ended.
    public var step: Int
    /// Its validation accuracy.
    public var validationAccuracy: Double
}

/// Trains an encoder with CRAFT's objective against a frozen surrogate.
///
/// ```swift
/// var trainer = try Trainer(encoder: encoder, surrogate: surrogate, textEmbedder: nil,
///                           inputs: { example in try loadPixels(example.imageURL) }, configuration: options)
/// let summary = try trainer.train(training: train, validation: validation,
///                                 checkpointDirectory: runDirectory.appendingPathComponent("checkpoint"),
///                                 logURL: runDirectory.appendingPathComponent("log.jsonl"))
/// ```
public struct Trainer<Encoder: TrainableEncoder, Surrogate: TrainingSurrogate> {
    /// The encoder; its parameters are updated as training goes.
    public private(set) var encoder: Encoder
    /// The frozen surrogate.
    public let surrogate: Surrogate
    /// The frozen text tower for `L_con`; `nil` turns the contrastive term off.
    public let textEmbedder: (any TextEmbedder)?
    /// Turns an example into the encoder's input for one image (no batch dimension).
    public let inputs: @Sendable (TrainingExample) throws -> Tensor
    /// The options.
    public let configuration: TrainerConfiguration
    /// The parameters the run started from (the base encoder, for code-change statistics).
    public let baseParameters: ParameterSet

    /// Creates a trainer.
    ///
    /// - Throws: ``TrainingError`` (`invalidConfiguration`) when an option is out of range.
    public init(
        encoder: Encoder, surrogate: Surrogate, textEmbedder: (any TextEmbedder)?,
        inputs: @escaping @Sendable (TrainingExample) throws -> Tensor, configuration: TrainerConfiguration
    ) throws {
        try configuration.validate()
        self.encoder = encoder
        self.surrogate = surrogate
        self.textEmbedder = textEmbedder
        self.inputs = inputs
        self.configuration = configuration
        baseParameters = encoder.parameters
    }

    /// Optimiser steps in one epoch of `count` examples.
    func stepsPerEpoch(examples count: Int) -> Int {
        let batches = (count + configuration.batchSize - 1) / configuration.batchSize
        return (batches + configuration.gradientAccumulationSteps - 1) / configuration.gradientAccumulationSteps
    }

    /// Stacks the inputs of a batch into `[batch, ...]`.
    func batchInputs(_ examples: [TrainingExample]) throws -> Tensor {
        let tensors = try examples.map { try inputs($0).unsqueezed(0) }
        if let first = tensors.first, let index = tensors.firstIndex(where: { $0.shape != first.shape }) {
            throw TrainingError(
                .invalidDataset,
                "line \(examples[index].line): input for \(examples[index].imagePath) is shaped \(Array(tensors[index].shape.dropFirst())) but line \(examples[0].line) gave \(Array(first.shape.dropFirst())); resize every image to the encoder's size")
        }
        return tensors.count == 1 ? tensors[0] : Tensor.concatenated(tensors, along: 0)
    }

    /// Trains, resuming from `checkpointDirectory` when it holds a checkpoint.
    ///
    /// With a `replay` set, each micro-batch of training examples is joined by
    /// ``TrainerConfiguration/replayPerBatch`` general-domain examples drawn in a seeded order that
    /// depends only on the seed and the micro-batch's place in the run (so a resume draws the same
    /// ones); their CRAFT loss, times ``TrainerConfiguration/replayWeight``, is added to the step's
    /// loss and logged as `replay_loss`. With a `generalValidation` set, retention is measured: its
    /// accuracy before training (base encoder), at each epoch's validation (`general_accuracy`) and
    /// after training, in the summary.
    ///
    /// - Parameters:
    ///   - training: the training examples.
    ///   - validation: held-out examples for per-epoch accuracy and early stopping; `nil` splits off
    ///     ``TrainerConfiguration/validationFraction`` of `training` when set, else skips validation.
    ///   - generalValidation: general-domain examples scored before, during and after training to
    ///     measure retention; `nil` for none. Early stopping ignores it.
    ///   - replay: general-domain examples mixed into each micro-batch; `nil` for no replay.
    ///   - checkpointDirectory: where checkpoints go (and are resumed from); `nil` for none.
    ///   - logURL: the JSONL log to append to; `nil` for none. On resume, records after the
    ///     checkpoint's step are removed first.
    ///   - datasetDigest: the training data's ``TrainingDataset/digest()``, saved in checkpoints; a
    ///     resume on data with another digest is refused.
    ///   - interruption: checked before every step and every epoch's validation; once it is requested
    ///     the trainer writes its checkpoint and throws ``TrainingError`` `interrupted`.
    ///   - progress: called after every step and validation.
    /// - Returns: the summary; ``encoder`` holds ``TrainingSummary/parameters`` (the best validated
    ///   epoch's, by default).
    ///
    /// Checkpoints (with a `checkpointDirectory`) are written every
    /// ``TrainerConfiguration/checkpointEvery`` steps, at the end of every epoch, when interrupted and
    /// at the end. A run that starts without a checkpoint starts its log afresh.
    public mutating func train(
        training: TrainingDataset, validation: TrainingDataset?, generalValidation: TrainingDataset? = nil,
        replay: TrainingDataset? = nil, checkpointDirectory: URL? = nil, logURL: URL? = nil,
        datasetDigest: String? = nil, interruption: TrainingInterruption? = nil, progress: ((TrainingProgress) -> Void)? = nil
    ) throws -> TrainingSummary {
        var training = training
        var validation = validation
        if validation == nil, let fraction = configuration.validationFraction {
            (training, validation) = training.split(validationFraction: fraction)
        }
        guard training.count > 0 else {
            throw TrainingError(.invalidDataset, "the training set is empty; give at least one example")
        }
        if let replay, replay.count == 0 {
            throw TrainingError(.invalidDataset, "the replay set\(Self.source(replay)) is empty; give general-domain examples or no replay set")
        }
        if let generalValidation, generalValidation.count == 0 {
            throw TrainingError(.invalidDataset, "the general-domain validation set\(Self.source(generalValidation)) is empty; give examples or no general-domain set")
        }
        let batchesPerEpoch = (training.count + configuration.batchSize - 1) / configuration.batchSize
        let log = logURL.map { TrainingLogWriter(url: $0) }
        let perEpoch = stepsPerEpoch(examples: training.count)
        let totalSteps = perEpoch * configuration.epochs
        let schedule = LearningRateSchedule(
            kind: configuration.schedule, baseLearningRate: configuration.learningRate,
            warmupSteps: configuration.warmupSteps, totalSteps: totalSteps)

        var parameters = encoder.parameters
        var optimizer = AdamW(parameters: parameters, configuration: configuration.optimizer)
        var state = TrainingState(seed: configuration.seed, datasetDigest: datasetDigest, mode: configuration.mode)
        var bestParameters: ParameterSet?
        var resumed = false
        if let checkpointDirectory, FileManager.default.fileExists(atPath: checkpointDirectory.appendingPathComponent(TrainingCheckpoint.stateFile).path)
            || FileManager.default.fileExists(atPath: checkpointDirectory.path + ".previous") {
            let checkpoint = try TrainingCheckpoint.read(from: checkpointDirectory, expected: parameters)
            guard checkpoint.state.seed == configuration.seed else {
                throw TrainingError(.invalidCheckpoint, "the checkpoint in \(checkpointDirectory.path) was made with seed \(checkpoint.state.seed), this run uses \(configuration.seed); resume with the same seed or use a new directory")
            }
            let savedMode = checkpoint.state.mode ?? .craft
            guard savedMode == configuration.mode else {
                throw TrainingError(.invalidCheckpoint, "the checkpoint in \(checkpointDirectory.path) is of a \(savedMode.rawValue) run, this run is \(configuration.mode.rawValue); resume in the same mode or use a new directory")
            }
            parameters = checkpoint.parameters
            optimizer = checkpoint.optimizer
            optimizer.configuration = configuration.optimizer
            if let datasetDigest, let saved = checkpoint.state.datasetDigest, saved != datasetDigest {
                throw TrainingError(.invalidCheckpoint, "the checkpoint in \(checkpointDirectory.path) was trained on data with digest \(saved), this run's data has digest \(datasetDigest); resume on the same data or use a new directory")
            }
            state = checkpoint.state
            state.mode = configuration.mode
            bestParameters = checkpoint.bestParameters
            try encoder.setParameters(parameters)
            resumed = true
        }
        // Records after the checkpoint were lost with the run that wrote them (all of them when there
        // is no checkpoint): drop them, so each step and each epoch's validation appears once.
        try log?.dropRecords(after: state.step, validationsFrom: state.epoch)

        var accuracies: [Double] = []
        var generalAccuracies: [Double] = []
        let generalBefore = try generalValidation.map { try accuracy(on: $0, parameters: baseParameters) }
        var generalAfter: (step: Int, accuracy: Double)?
        var generalAtBest: (step: Int, accuracy: Double)?
        var savedState = resumed ? state : nil
        func saveCheckpoint() throws {
            guard let checkpointDirectory, savedState != state else { return }
            try TrainingCheckpoint(parameters: parameters, optimizer: optimizer, state: state, bestParameters: bestParameters)
                .write(to: checkpointDirectory)
            savedState = state
        }
        func limitReached() -> Bool { configuration.stopAfterSteps.map { state.step >= $0 } ?? false }
        func stopIfInterrupted() throws {
            guard let signal = interruption?.signal else { return }
            try saveCheckpoint()
            let saved = checkpointDirectory.map { "the checkpoint in \($0.path) holds it; run the same command again to resume" }
                ?? "nothing was saved (no checkpoint directory)"
            throw TrainingError(.interrupted, "training was interrupted by \(TrainingInterruption.name(of: signal)) after step \(state.step); \(saved)")
        }

        epochs: while state.epoch < configuration.epochs && !state.stoppedEarly {
            let batches = training.batches(size: configuration.batchSize, epoch: state.epoch, seed: configuration.seed)
            while state.nextBatch < batches.count {
                try stopIfInterrupted()
                if limitReached() { break epochs }
                let group = state.nextBatch..<Swift.min(state.nextBatch + configuration.gradientAccumulationSteps, batches.count)
                var accumulator = GradientAccumulator()
                var record = TrainingLogRecord(event: "step", step: state.step + 1, epoch: state.epoch)
                var termSums = (total: Float(0), alignment: Float?.none, commitment: Float?.none, contrastive: Float?.none, replay: Float?.none)
                var distance = 0.0
                var allCodes: [Int32] = []
                var changed = 0, compared = 0
                for batchIndex in group {
                    let batch = batches[batchIndex]
                    let pixels = try batchInputs(batch)
                    let leaves = parameters.requiringGradients()
                    let forward = try encoder.forward(pixels, parameters: leaves)
                    // The base encoder's forward, once, when the drift penalty or the code-drift statistics need it.
                    let base = configuration.effectiveObjective.driftWeight > 0 || configuration.tracksCodeDrift
                        ? try withoutGradients { try encoder.forward(pixels, parameters: baseParameters) }.quantization : nil
                    let baseFeatures = configuration.effectiveObjective.driftWeight > 0 ? base?.encoderOutput.detached() : nil
                    let loss = try batchLoss(batch, forward: forward, baseFeatures: baseFeatures)
                    let weight = 1 / Float(group.count)
                    var total = loss.total
                    termSums.total += loss.terms.total * weight
                    if let replay {
                        let examples = Self.replayExamples(
                            replay, count: configuration.replayPerBatch, microBatch: state.epoch * batchesPerEpoch + batchIndex,
                            seed: configuration.seed)
                        let replayForward = try encoder.forward(try batchInputs(examples), parameters: leaves)
                        let replayLoss = try batchLoss(examples, forward: replayForward)
                        total = total + replayLoss.total * configuration.replayWeight
                        termSums.total += configuration.replayWeight * replayLoss.terms.total * weight
                        termSums.replay = (termSums.replay ?? 0) + replayLoss.terms.total * weight
                    }
                    try accumulator.add(leaves.gradients(of: total))
                    if let value = loss.terms.alignment { termSums.alignment = (termSums.alignment ?? 0) + value * weight }
                    if let value = loss.terms.commitment { termSums.commitment = (termSums.commitment ?? 0) + value * weight }
                    if let value = loss.terms.contrastive { termSums.contrastive = (termSums.contrastive ?? 0) + value * weight }
                    distance += Self.commitmentDistance(forward.quantization) / Double(group.count)
                    let codes = forward.quantization.codes.scalars
                    allCodes += codes
                    if configuration.tracksCodeDrift, let baseCodes = base?.codes.scalars {
                        changed += zip(codes, baseCodes).filter { $0 != $1 }.count
                        compared += codes.count
                    }
                }
                guard var gradients = accumulator.takeMean() else { break }
                var norm = GradientClipping.globalNorm(gradients)
                if let maximum = configuration.maximumGradientNorm {
                    (gradients, norm) = GradientClipping.clipped(gradients, maximumNorm: maximum)
                }
                guard norm.isFinite, termSums.total.isFinite else {
                    throw TrainingError(.invalidLossInput, "the loss or gradient became non-finite at step \(state.step + 1) (loss \(termSums.total), gradient norm \(norm)); lower the learning rate")
                }
                let learningRate = schedule.learningRate(at: state.step)
                try optimizer.step(&parameters, gradients: gradients, learningRate: learningRate)
                try encoder.setParameters(parameters)
                state.step += 1
                state.nextBatch = group.upperBound

                record.loss = termSums.total
                record.alignment = termSums.alignment
                record.commitment = termSums.commitment
                record.contrastive = termSums.contrastive
                record.replayLoss = termSums.replay
                record.commitmentDistance = distance
                record.gradientNorm = norm
                record.learningRate = learningRate
                let statistics = CodeStatistics.usageAndPerplexity(allCodes, entries: encoder.codebookEntries)
                record.codebookUsage = statistics.usage
                record.codebookPerplexity = statistics.perplexity
                record.codeChangeRate = compared > 0 ? Double(changed) / Double(compared) : nil
                try log?.append(record)
                progress?(TrainingProgress(record: record, totalSteps: totalSteps))
                if let every = configuration.checkpointEvery, state.step % every == 0 { try saveCheckpoint() }
            }
            if state.nextBatch < batches.count { break }
            try stopIfInterrupted()
            // End of the epoch: validate (and measure retention), decide on early stopping, keep the
            // best epoch's parameters, move on, checkpoint.
            var record = TrainingLogRecord(event: "validation", step: state.step, epoch: state.epoch)
            if let generalValidation {
                let accuracy = try self.accuracy(on: generalValidation)
                generalAccuracies.append(accuracy)
                generalAfter = (state.step, accuracy)
                record.generalAccuracy = accuracy
            }
            if let validation, validation.count > 0 {
                record.validationAccuracy = try self.accuracy(on: validation)
            }
            if record.generalAccuracy != nil || record.validationAccuracy != nil {
                try log?.append(record)
                progress?(TrainingProgress(record: record, totalSteps: totalSteps))
            }
            if let accuracy = record.validationAccuracy {
                accuracies.append(accuracy)
                if accuracy > (state.bestValidationAccuracy ?? -1) || (bestParameters == nil && state.bestValidationAccuracy == accuracy) {
                    state.bestValidationAccuracy = accuracy
                    state.bestEpoch = state.epoch
                    state.bestStep = state.step
                    state.epochsWithoutImprovement = 0
                    bestParameters = parameters
                    generalAtBest = record.generalAccuracy.map { (state.step, $0) }
                } else {
                    state.epochsWithoutImprovement += 1
                    if let patience = configuration.earlyStoppingPatience, state.epochsWithoutImprovement >= patience {
                        state.stoppedEarly = true
                    }
                }
            }
            state.epoch += 1
            state.nextBatch = 0
            try saveCheckpoint()
        }
        try saveCheckpoint()
        let partial = state.epoch < configuration.epochs && !state.stoppedEarly
        var best: BestEpoch?
        if let epoch = state.bestEpoch, let step = state.bestStep, let accuracy = state.bestValidationAccuracy, bestParameters != nil {
            best = BestEpoch(epoch: epoch, step: step, validationAccuracy: accuracy)
        }
        var result = parameters
        var restoredBest = false
        if configuration.restoresBestEpoch, let best, let bestParameters {
            result = bestParameters
            restoredBest = true
            try encoder.setParameters(result)
            if generalAtBest?.step != best.step { generalAtBest = nil }
            generalAfter = generalAtBest
        }
        var generalAccuracyAfter: Double?
        if let generalValidation {
            let resultStep = restoredBest ? best?.step : state.step
            generalAccuracyAfter = try generalAfter.flatMap { $0.step == resultStep ? $0.accuracy : nil } ?? accuracy(on: generalValidation)
        }
        return TrainingSummary(
            steps: state.step, epochsCompleted: state.epoch, validationAccuracies: accuracies,
            generalAccuracies: generalAccuracies, generalAccuracyBefore: generalBefore, generalAccuracyAfter: generalAccuracyAfter,
            stoppedEarly: state.stoppedEarly, partial: partial, plannedSteps: totalSteps, best: best, parameters: result,
            lastParameters: parameters, restoredBest: restoredBest)
    }

    /// The replay examples mixed into micro-batch number `microBatch` of the run (counting from 0
    /// across epochs): `count` consecutive entries of an endless sequence of shuffled passes over
    /// `replay`, each pass shuffled by ``TrainingDataset/order(epoch:seed:)`` with a seed derived
    /// from `seed`. A pure function of its arguments, so a resumed run draws the same examples, and
    /// every replay example is used once per pass.
    static func replayExamples(_ replay: TrainingDataset, count: Int, microBatch: Int, seed: UInt64) -> [TrainingExample] {
        guard replay.count > 0 else { return [] }
        var orders: [Int: [Int]] = [:]
        return (0..<count).map { offset in
            let position = microBatch * count + offset
            let pass = position / replay.count
            let order = orders[pass] ?? replay.order(epoch: pass, seed: seed ^ replaySeedSalt)
            orders[pass] = order
            return replay.examples[order[position % replay.count]]
        }
    }

    /// Keeps the replay order independent of the training order drawn from the same seed.
    static var replaySeedSalt: UInt64 { 0x5245_504C_4159_0001 }

    /// `mean ‖z_e − z_q‖²` over all tokens and dimensions (what `L_commit` computes), without gradients.
    static func commitmentDistance(_ quantization: StraightThroughQuantization) -> Double {
        let features = quantization.encoderOutput.scalars, codes = quantization.codeVectors.scalars
        guard !features.isEmpty else { return 0 }
        var sum = 0.0
        for (a, b) in zip(features, codes) {
            let difference = Double(a) - Double(b)
            sum += difference * difference
        }
        return sum / Double(features.count)
    }

    /// `" (path)"` for a dataset read from a file, else nothing.
    static func source(_ dataset: TrainingDataset) -> String {
        dataset.sourceURL.map { " (\($0.path))" } ?? ""
    }

    /// The CRAFT loss of one micro-batch.
    func batchLoss(_ batch: [TrainingExample], forward: EncoderForward, baseFeatures: Tensor? = nil) throws -> CraftLoss {
        let objective = configuration.effectiveObjective
        let shape = forward.quantization.quantized.shape
        guard shape.count == 3, shape[0] == batch.count else {
            throw TrainingError(.invalidLossInput, "the encoder returned quantized features shaped \(shape) for a batch of \(batch.count); it must return [\(batch.count), tokens, D]")
        }
        var answers: [AnswerSequence] = []
        if objective.usesAlignment {
            let input = surrogateInput(forward.quantization)
            let visual = batch.indices.map { input.sliced(along: 0, $0..<($0 + 1)).squeezed(0) }
            answers = try surrogate.score(visual: visual, prompts: batch.map(\.prompt), answers: batch.map(\.answer))
        }
        var texts: Tensor?, targets: ContrastiveTargets?
        if objective.usesContrastive, let textEmbedder, forward.pooledFeatures != nil, batch.count > 1 {
            targets = ContrastiveTargets(batch)
            if let targets { texts = try textEmbedder.embed(targets.texts).detached() }
        }
        return try objective.loss(
            quantization: forward.quantization, answers: answers, pooledImageFeatures: forward.pooledFeatures, textEmbeddings: texts,
            contrastiveTargets: targets?.tensor, baseFeatures: baseFeatures,
            commitment: objective.usesCommitment ? encoder.commitmentLoss(forward.quantization) : nil)
    }

    /// What the surrogate reads during training: the straight-through `z_q_hat` in CRAFT mode, the
    /// continuous `z_e` in continuous mode (gradients then reach the encoder without the estimator).
    func surrogateInput(_ quantization: StraightThroughQuantization) -> Tensor {
        configuration.mode == .continuous ? quantization.encoderOutput : quantization.quantized
    }

    /// The share of `dataset`'s examples whose surrogate answer equals the expected answer, ignoring
    /// case and surrounding white space, with the encoder's current parameters.
    ///
    /// The surrogate is fed the encoder's code vectors `z_q` (CRAFT mode) or its continuous output
    /// `z_e` (continuous mode), as inference will. Use it on any dataset and at any time: before
    /// training, after it, or on a general-domain set to measure retention.
    ///
    /// - Returns: the accuracy in `0...1`; `0` for an empty dataset.
    public func accuracy(on dataset: TrainingDataset) throws -> Double {
        try accuracy(on: dataset, parameters: encoder.parameters)
    }

    /// The share of `validation` examples answered correctly: ``accuracy(on:)``.
    public func validationAccuracy(_ validation: TrainingDataset) throws -> Double {
        try accuracy(on: validation)
    }

    /// ``accuracy(on:)`` with `parameters` in place of the encoder's.
    func accuracy(on dataset: TrainingDataset, parameters: ParameterSet) throws -> Double {
        guard dataset.count > 0 else { return 0 }
        var correct = 0
        try withoutGradients {
            for start in stride(from: 0, to: dataset.count, by: configuration.batchSize) {
                let batch = Array(dataset.examples[start..<Swift.min(start + configuration.batchSize, dataset.count)])
                let forward = try encoder.forward(try batchInputs(batch), parameters: parameters)
                let vectors = configuration.mode == .continuous ? forward.quantization.encoderOutput : forward.quantization.codeVectors
                for (index, example) in batch.enumerated() {
                    let visual = vectors.sliced(along: 0, index..<(index + 1)).squeezed(0)
                    let answer = try surrogate.answer(visual: visual, prompt: example.prompt)
                    if AnswerScoring.matches(answer, expected: example.answer) { correct += 1 }
                }
            }
        }
        return Double(correct) / Double(dataset.count)
    }
}
