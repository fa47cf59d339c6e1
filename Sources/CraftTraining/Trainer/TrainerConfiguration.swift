import Foundation

/// The options of a CRAFT training run.
///
/// Codable with its Swift property names as keys; every key is optional when decoding (a missing key
/// keeps the default below), so configurations saved by older versions still decode.
public struct TrainerConfiguration: Sendable, Codable, Equatable {
    /// CRAFT (quantized tokens, the default) or the continuous fine-tuning baseline.
    public var mode = TrainingMode.craft
    /// The loss weights and switches.
    public var objective = CraftObjective.classification
    /// AdamW's hyperparameters.
    public var optimizer = AdamW.Configuration()
    /// The peak learning rate.
    public var learningRate: Float = 1e-4
    /// The schedule's shape (cosine with warmup, or constant).
    public var schedule = LearningRateSchedule.Kind.cosineWithWarmup
    /// Warmup optimiser steps.
    public var warmupSteps = 0
    /// Epochs over the training set.
    public var epochs = 1
    /// Examples per micro-batch.
    public var batchSize = 8
    /// Micro-batches whose mean gradient makes one optimiser step.
    public var gradientAccumulationSteps = 1
    /// Clip the global gradient norm to this value; `nil` turns clipping off.
    public var maximumGradientNorm: Float? = 1.0
    /// The seed of the data order.
    public var seed: UInt64 = 0
    /// Write a checkpoint every this many optimiser steps, besides those at every epoch's end, on
    /// interruption and at the end (all only when the run has a checkpoint directory); `nil` for
    /// epoch ends only.
    public var checkpointEvery: Int? = 50
    /// Whether the run's result (``TrainingSummary/parameters`` and the encoder after training) is the
    /// best validated epoch's parameters rather than the last step's; with no validated epoch it is
    /// the last step's either way.
    public var restoresBestEpoch = true
    /// Stop when validation accuracy has not improved for this many epochs; `nil` for never.
    public var earlyStoppingPatience: Int?
    /// Stop after this many optimiser steps in total (the schedule still spans all epochs); `nil` for no limit.
    public var stopAfterSteps: Int?
    /// Whether each step also encodes the batch with the base (initial) encoder to log the share of
    /// tokens whose codes changed (one extra forward pass without gradients).
    public var tracksCodeDrift = true
    /// When no validation set is given, hold out this share of the training set with
    /// ``TrainingDataset/split(validationFraction:)``; `nil` means no validation then.
    public var validationFraction: Double?
    /// General-domain replay examples mixed into each micro-batch, when ``Trainer/train(training:validation:generalValidation:replay:checkpointDirectory:logURL:datasetDigest:progress:)``
    /// is given a replay set (ignored otherwise).
    public var replayPerBatch = 4
    /// The weight of the replay examples' loss in the step's loss (`loss = L_domain + replayWeight · L_replay`).
    public var replayWeight: Float = 1.0

    /// Creates a configuration with the defaults above.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case mode, objective, optimizer, learningRate, schedule, warmupSteps, epochs, batchSize
        case gradientAccumulationSteps, maximumGradientNorm, seed, checkpointEvery, earlyStoppingPatience
        case stopAfterSteps, tracksCodeDrift, validationFraction, replayPerBatch, replayWeight, restoresBestEpoch
    }

    /// Decodes a configuration; a missing key keeps its default (so older configurations decode, as
    /// ``TrainingMode/craft`` when they predate `mode`).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = TrainerConfiguration()
        mode = try c.decodeIfPresent(TrainingMode.self, forKey: .mode) ?? defaults.mode
        objective = try c.decodeIfPresent(CraftObjective.self, forKey: .objective) ?? defaults.objective
        optimizer = try c.decodeIfPresent(AdamW.Configuration.self, forKey: .optimizer) ?? defaults.optimizer
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? defaults.learningRate
        schedule = try c.decodeIfPresent(LearningRateSchedule.Kind.self, forKey: .schedule) ?? defaults.schedule
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? defaults.warmupSteps
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? defaults.epochs
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? defaults.batchSize
        gradientAccumulationSteps = try c.decodeIfPresent(Int.self, forKey: .gradientAccumulationSteps) ?? defaults.gradientAccumulationSteps
        maximumGradientNorm = c.contains(.maximumGradientNorm)
            ? try c.decodeIfPresent(Float.self, forKey: .maximumGradientNorm) : defaults.maximumGradientNorm
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? defaults.seed
        checkpointEvery = c.contains(.checkpointEvery) ? try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) : defaults.checkpointEvery
        restoresBestEpoch = try c.decodeIfPresent(Bool.self, forKey: .restoresBestEpoch) ?? defaults.restoresBestEpoch
        earlyStoppingPatience = try c.decodeIfPresent(Int.self, forKey: .earlyStoppingPatience)
        stopAfterSteps = try c.decodeIfPresent(Int.self, forKey: .stopAfterSteps)
        tracksCodeDrift = try c.decodeIfPresent(Bool.self, forKey: .tracksCodeDrift) ?? defaults.tracksCodeDrift
        validationFraction = try c.decodeIfPresent(Double.self, forKey: .validationFraction)
        replayPerBatch = try c.decodeIfPresent(Int.self, forKey: .replayPerBatch) ?? defaults.replayPerBatch
        replayWeight = try c.decodeIfPresent(Float.self, forKey: .replayWeight) ?? defaults.replayWeight
    }

    /// Encodes every option; a `nil` ``maximumGradientNorm`` is written as `null` (clipping off), since
    /// an absent key decodes as the default.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(mode, forKey: .mode)
        try c.encode(objective, forKey: .objective)
        try c.encode(optimizer, forKey: .optimizer)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(schedule, forKey: .schedule)
        try c.encode(warmupSteps, forKey: .warmupSteps)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(gradientAccumulationSteps, forKey: .gradientAccumulationSteps)
        if let maximumGradientNorm { try c.encode(maximumGradientNorm, forKey: .maximumGradientNorm) } else { try c.encodeNil(forKey: .maximumGradientNorm) }
        try c.encode(seed, forKey: .seed)
        if let checkpointEvery { try c.encode(checkpointEvery, forKey: .checkpointEvery) } else { try c.encodeNil(forKey: .checkpointEvery) }
        try c.encode(restoresBestEpoch, forKey: .restoresBestEpoch)
        try c.encodeIfPresent(earlyStoppingPatience, forKey: .earlyStoppingPatience)
        try c.encodeIfPresent(stopAfterSteps, forKey: .stopAfterSteps)
        try c.encode(tracksCodeDrift, forKey: .tracksCodeDrift)
        try c.encodeIfPresent(validationFraction, forKey: .validationFraction)
        try c.encode(replayPerBatch, forKey: .replayPerBatch)
        try c.encode(replayWeight, forKey: .replayWeight)
    }

    /// The objective as the trainer applies it: in ``TrainingMode/continuous`` mode `L_commit` is off
    /// whatever ``objective`` says; otherwise ``objective`` itself.
    public var effectiveObjective: CraftObjective {
        var effective = objective
        if mode == .continuous { effective.usesCommitment = false }
        return effective
    }

    /// The options this configuration shares with the pretrainers' (``OptimizationOptions``).
    public var optimization: OptimizationOptions {
        OptimizationOptions(learningRate: learningRate, warmupSteps: warmupSteps, epochs: epochs, batchSize: batchSize,
                            maximumGradientNorm: maximumGradientNorm, optimizer: optimizer, seed: seed)
    }

    /// Checks ranges.
    ///
    /// - Throws: ``TrainingError`` (`invalidConfiguration`) naming the first bad option.
    public func validate() throws {
        try objective.validate()
        if mode == .continuous {
            try requireOption(objective.usesAlignment || objective.usesContrastive,
                              "continuous mode turns L_commit off, and alignment and contrastive are off too; turn on at least one of them")
        }
        try optimization.validate(run: "", suggestedLearningRate: "1e-4")
        try requireOption(gradientAccumulationSteps >= 1, "gradient accumulation steps is \(gradientAccumulationSteps); use at least 1")
        try requireOption(checkpointEvery.map { $0 >= 1 } ?? true, "checkpoint interval must be at least 1 step")
        try requireOption(earlyStoppingPatience.map { $0 >= 1 } ?? true, "early-stopping patience must be at least 1 epoch")
        try requireOption(validationFraction.map { $0 > 0 && $0 < 1 } ?? true, "the validation fraction must be between 0 and 1 (exclusive)")
        try requireOption(replayPerBatch >= 1, "replay examples per batch is \(replayPerBatch); use at least 1 (replay is on only when a replay set is given)")
        try requireOption(replayWeight.isFinite && replayWeight >= 0, "the replay weight is \(replayWeight); use a non-negative number such as 1")
    }
}
