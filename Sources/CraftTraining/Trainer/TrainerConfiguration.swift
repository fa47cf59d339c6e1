import Foundation

/// The options of a CRAFT training run.
public struct TrainerConfiguration: Sendable, Codable, Equatable {
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
    /// Write a checkpoint every this many optimiser steps (and at the end); `nil` for none.
    public var checkpointEvery: Int?
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

    /// Creates a configuration with the defaults above.
    public init() {}

    /// Checks ranges.
    ///
    /// - Throws: ``TrainingError`` (`invalidConfiguration`) naming the first bad option.
    public func validate() throws {
        try objective.validate()
        func require(_ condition: Bool, _ message: String) throws {
            if !condition { throw TrainingError(.invalidConfiguration, message) }
        }
        try require(learningRate.isFinite && learningRate > 0, "the learning rate is \(learningRate); use a positive number such as 1e-4")
        try require(epochs >= 1, "epochs is \(epochs); train for at least 1 epoch")
        try require(batchSize >= 1, "the batch size is \(batchSize); use at least 1")
        try require(gradientAccumulationSteps >= 1, "gradient accumulation steps is \(gradientAccumulationSteps); use at least 1")
        try require(warmupSteps >= 0, "warmup steps is \(warmupSteps); use 0 or more")
        try require(maximumGradientNorm.map { $0.isFinite && $0 > 0 } ?? true, "the maximum gradient norm must be positive")
        try require(checkpointEvery.map { $0 >= 1 } ?? true, "checkpoint interval must be at least 1 step")
        try require(earlyStoppingPatience.map { $0 >= 1 } ?? true, "early-stopping patience must be at least 1 epoch")
        try require(validationFraction.map { $0 > 0 && $0 < 1 } ?? true, "the validation fraction must be between 0 and 1 (exclusive)")
        try require(optimizer.beta1 >= 0 && optimizer.beta1 < 1 && optimizer.beta2 >= 0 && optimizer.beta2 < 1,
                    "AdamW betas must be in [0, 1), got \(optimizer.beta1) and \(optimizer.beta2)")
    }
}
