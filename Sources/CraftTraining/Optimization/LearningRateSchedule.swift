// Learning-rate schedules, as transformers.get_cosine_schedule_with_warmup (optimization.py,
// _get_cosine_schedule_with_warmup_lr_lambda with num_cycles = 0.5) and a constant rate.
import Foundation

/// A learning rate per optimiser step.
public struct LearningRateSchedule: Sendable, Codable, Equatable {
    /// The shape of the schedule.
    public enum Kind: String, Sendable, Codable {
        /// The base rate at every step.
        case constant
        /// Linear warmup from 0 to the base rate, then a half cosine down to 0 at `totalSteps`.
        case cosineWithWarmup = "cosine"
    }

    /// The shape.
    public var kind: Kind
    /// The peak (base) learning rate.
    public var baseLearningRate: Float
    /// Steps of linear warmup.
    public var warmupSteps: Int
    /// Steps of the whole run (the cosine reaches 0 here).
    public var totalSteps: Int

    /// Creates a schedule.
    public init(kind: Kind = .cosineWithWarmup, baseLearningRate: Float, warmupSteps: Int = 0, totalSteps: Int) {
        self.kind = kind
        self.baseLearningRate = baseLearningRate
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// The factor multiplying the base rate at `step` (counting from 0, the first optimiser step),
    /// as the schedule's `lr_lambda(step)`.
    public func multiplier(at step: Int) -> Double {
        switch kind {
        case .constant:
            return 1
        case .cosineWithWarmup:
            if step < warmupSteps { return Double(step) / Double(Swift.max(1, warmupSteps)) }
            let progress = Double(step - warmupSteps) / Double(Swift.max(1, totalSteps - warmupSteps))
            return Swift.max(0, 0.5 * (1 + Foundation.cos(Double.pi * 0.5 * 2 * progress)))
        }
    }

    /// The learning rate at `step` (counting from 0).
    public func learningRate(at step: Int) -> Float {
        Float(Double(baseLearningRate) * multiplier(at: step))
    }
}
