// The optimiser options every trainer shares, their range checks, and the pretrainers' loop.
import TensorCore

/// The options of an AdamW run with linear warmup, cosine decay, global-norm clipping and a seeded
/// example order: the part ``BackendTrainerConfiguration`` and ``ContrastivePretrainerConfiguration``
/// share (and ``TrainerConfiguration`` has too). Those configurations read and set these fields as
/// their own (`configuration.learningRate`).
public struct OptimizationOptions: Sendable, Codable, Equatable {
    /// The peak learning rate.
    public var learningRate: Float
    /// Linear warmup steps before the cosine decay.
    public var warmupSteps = 0
    /// Passes over the examples.
    public var epochs: Int
    /// Examples per optimiser step.
    public var batchSize: Int
    /// Clip the global gradient norm to this value; `nil` turns clipping off.
    public var maximumGradientNorm: Float? = 1.0
    /// AdamW's hyperparameters (weight decay 0 by default; when set, biases and norm weights are not
    /// decayed, as the Hugging Face Trainer's parameter groups).
    public var optimizer = AdamW.Configuration(weightDecay: 0)
    /// The seed of the example order.
    public var seed: UInt64

    /// Checks the ranges.
    ///
    /// - Parameters:
    ///   - run: What kind of run the messages name, with a trailing space (`"backend "`), or empty.
    ///   - suggestedLearningRate: The learning rate a message suggests instead of a bad one.
    ///   - minimumBatchSize: The smallest batch the run can take, and `batchSizeReason` why, if not 1.
    /// - Throws: ``TrainingError`` (`invalidConfiguration`) naming the first bad option.
    public func validate(
        run: String, suggestedLearningRate: String, minimumBatchSize: Int = 1, batchSizeReason: String = ""
    ) throws {
        try requireOption(learningRate.isFinite && learningRate > 0,
                          "the \(run)learning rate is \(learningRate); use a positive number such as \(suggestedLearningRate)")
        try requireOption(epochs >= 1, "\(run)epochs is \(epochs); train for at least 1 epoch")
        try requireOption(batchSize >= minimumBatchSize,
                          "the \(run)batch size is \(batchSize); use at least \(minimumBatchSize)\(batchSizeReason)")
        try requireOption(warmupSteps >= 0, "\(run)warmup steps is \(warmupSteps); use 0 or more")
        try requireOption(maximumGradientNorm.map { $0.isFinite && $0 > 0 } ?? true, "the maximum gradient norm must be positive")
        try requireOption(optimizer.beta1 >= 0 && optimizer.beta1 < 1 && optimizer.beta2 >= 0 && optimizer.beta2 < 1,
                          "AdamW betas must be in [0, 1), got \(optimizer.beta1) and \(optimizer.beta2)")
    }
}

/// What a pretrainer (``BackendTrainer``, ``ContrastivePretrainer``) reports after each optimiser step.
public struct PretrainingProgress: Sendable {
    /// Optimiser steps taken (from 1).
    public var step: Int
    /// Steps of the whole run.
    public var totalSteps: Int
    /// The epoch of this step (from 0).
    public var epoch: Int
    /// The batch's loss.
    public var loss: Float
    /// The global gradient norm before clipping.
    public var gradientNorm: Float
    /// The learning rate of this step.
    public var learningRate: Float
}

extension OptimizationOptions {
    /// The pretrainers' optimisation loop: for each epoch, `batches` draws the batches (lists of
    /// example indices) from the seeded generator; each batch's loss under differentiable copies of
    /// `parameters` is differentiated, clipped to ``maximumGradientNorm``, checked to be finite, and
    /// AdamW steps with the warmup-then-cosine learning rate.
    ///
    /// - Parameters:
    ///   - run: What kind of run a non-finite-loss message names, with a trailing space (`"backend "`).
    ///   - batchesPerEpoch: How many batches `batches` returns, for the schedule's length.
    /// - Returns: The loss of each step.
    /// - Throws: ``TrainingError`` (`invalidLossInput`) when the loss or gradient becomes non-finite,
    ///   or what `loss` throws.
    func optimise(
        _ parameters: inout ParameterSet, run: String, batchesPerEpoch: Int,
        batches: (_ generator: inout SplitMix64) -> [[Int]],
        loss: (_ epoch: Int, _ batch: [Int], _ parameters: ParameterSet) throws -> Tensor,
        progress: (PretrainingProgress) -> Void
    ) throws -> [Float] {
        var adamW = AdamW(parameters: parameters, configuration: optimizer)
        let totalSteps = batchesPerEpoch * epochs
        let schedule = LearningRateSchedule(kind: .cosineWithWarmup, baseLearningRate: learningRate,
                                            warmupSteps: warmupSteps, totalSteps: totalSteps)
        var generator = SplitMix64(seed: seed)
        var losses: [Float] = []
        for epoch in 0..<epochs {
            for batch in batches(&generator) {
                let leaves = parameters.requiringGradients()
                let value = try loss(epoch, batch, leaves)
                var gradients = leaves.gradients(of: value)
                var norm = GradientClipping.globalNorm(gradients)
                if let maximumGradientNorm {
                    (gradients, norm) = GradientClipping.clipped(gradients, maximumNorm: maximumGradientNorm)
                }
                guard value.scalar.isFinite, norm.isFinite else {
                    throw TrainingError(.invalidLossInput, "the \(run)loss or gradient became non-finite at step \(losses.count + 1) (loss \(value.scalar), gradient norm \(norm)); lower the learning rate")
                }
                let rate = schedule.learningRate(at: losses.count)
                try adamW.step(&parameters, gradients: gradients, learningRate: rate)
                losses.append(value.scalar)
                progress(PretrainingProgress(step: losses.count, totalSteps: totalSteps, epoch: epoch, loss: value.scalar,
                                             gradientNorm: norm, learningRate: rate))
            }
        }
        return losses
    }
}

/// Throws ``TrainingError`` (`invalidConfiguration`) with `message` unless `condition` holds.
func requireOption(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw TrainingError(.invalidConfiguration, message()) }
}
