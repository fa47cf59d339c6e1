// AdamW with decoupled weight decay, ported from torch.optim.AdamW's single-tensor path
// (torch/optim/adamw.py, _single_tensor_adam with decoupled_weight_decay): the same operation order
// in Float32, with Python-float (Double) bias corrections, so parameters agree step for step.
import Foundation
import TensorCore

/// The AdamW optimiser (Loshchilov & Hutter), as `torch.optim.AdamW` with `amsgrad=False`.
///
/// Each step, for every parameter `p` with gradient `g` at step `t` (counting from 1):
/// `p ← p·(1 − lr·λ)`, `m ← m + (1−β₁)(g − m)`, `v ← β₂v + (1−β₂)g²`,
/// `p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)`.
/// The learning rate is passed per step, so a schedule drives it. Tensors of rank below 2 (biases,
/// norm weights) are not decayed unless ``Configuration/decaysVectors`` is set, as torch with two
/// parameter groups (`weight_decay=0` for biases and norms, the Hugging Face Trainer's grouping).
///
/// ```swift
/// var optimizer = AdamW(parameters: parameters, weightDecay: 0.01)
/// try optimizer.step(&parameters, gradients: gradients, learningRate: schedule.learningRate(at: step))
/// ```
public struct AdamW: Sendable {
    /// Hyperparameters.
    public struct Configuration: Sendable, Codable, Equatable {
        /// `β₁`, the decay of the first-moment average.
        public var beta1: Double = 0.9
        /// `β₂`, the decay of the second-moment average.
        public var beta2: Double = 0.999
        /// `ε`, added to the denominator.
        public var epsilon: Double = 1e-8
        /// `λ`, the decoupled weight decay (torch's default is 0.01).
        public var weightDecay: Double = 0.01
        /// Whether tensors of rank 0 or 1 (biases, LayerNorm/RMSNorm weights, logit scales) are decayed
        /// too. Off by default: as the Hugging Face Trainer's parameter groups (`bias` and norm weights
        /// get weight decay 0), only matrices and higher-rank tensors are decayed.
        public var decaysVectors = false

        /// Creates a configuration.
        public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.01,
                    decaysVectors: Bool = false) {
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.weightDecay = weightDecay
            self.decaysVectors = decaysVectors
        }

        enum CodingKeys: String, CodingKey { case beta1, beta2, epsilon, weightDecay, decaysVectors }

        /// Decodes a configuration; one saved before ``decaysVectors`` existed decayed every tensor,
        /// so a missing key reads as `true` (a resumed run keeps its optimiser).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            beta1 = try c.decode(Double.self, forKey: .beta1)
            beta2 = try c.decode(Double.self, forKey: .beta2)
            epsilon = try c.decode(Double.self, forKey: .epsilon)
            weightDecay = try c.decode(Double.self, forKey: .weightDecay)
            decaysVectors = try c.decodeIfPresent(Bool.self, forKey: .decaysVectors) ?? true
        }

        /// Whether a tensor of `rank` is decayed.
        public func decays(rank: Int) -> Bool { weightDecay != 0 && (decaysVectors || rank >= 2) }
    }

    /// The hyperparameters.
    public var configuration: Configuration
    /// The number of steps taken.
    public private(set) var stepCount: Int = 0
    /// The first-moment averages `m`, by parameter name.
    public private(set) var firstMoments: [String: [Float]]
    /// The second-moment averages `v`, by parameter name.
    public private(set) var secondMoments: [String: [Float]]

    /// A fresh optimiser for `parameters` (moments zero, step 0).
    public init(parameters: ParameterSet, configuration: Configuration = Configuration()) {
        self.configuration = configuration
        firstMoments = parameters.tensors.mapValues { [Float](repeating: 0, count: $0.scalarCount) }
        secondMoments = firstMoments
    }

    /// An optimiser restored from saved state.
    ///
    /// - Throws: ``TrainingError`` (`invalidCheckpoint`) when a moment is missing or has the wrong
    ///   length for its parameter, or the step is negative.
    public init(
        parameters: ParameterSet, configuration: Configuration, step: Int,
        firstMoments: [String: [Float]], secondMoments: [String: [Float]]
    ) throws {
        guard step >= 0 else { throw TrainingError(.invalidCheckpoint, "optimiser step \(step) is negative") }
        for name in parameters.names {
            let count = parameters[name]!.scalarCount
            guard firstMoments[name]?.count == count, secondMoments[name]?.count == count else {
                throw TrainingError(.invalidCheckpoint, "optimiser state for \"\(name)\" is missing or does not have its \(count) values; the checkpoint belongs to another model")
            }
        }
        guard Set(firstMoments.keys) == Set(parameters.names), Set(secondMoments.keys) == Set(parameters.names) else {
            throw TrainingError(.invalidCheckpoint, "optimiser state names tensors that are not parameters of this model")
        }
        self.configuration = configuration
        self.stepCount = step
        self.firstMoments = firstMoments
        self.secondMoments = secondMoments
    }

    /// Takes one step: updates every parameter from its gradient.
    ///
    /// - Throws: ``TrainingError`` (`parameterMismatch`) when the gradients do not name exactly the
    ///   parameters with their shapes; nothing changes then.
    public mutating func step(_ parameters: inout ParameterSet, gradients: ParameterSet, learningRate: Float) throws {
        try parameters.checkMatches(gradients, what: "the gradient set")
        guard firstMoments.keys.count == parameters.count, parameters.names.allSatisfy({ firstMoments[$0] != nil }) else {
            throw TrainingError(.parameterMismatch, "the optimiser was made for other parameters than the ones it is asked to update")
        }
        stepCount += 1
        // Hyperparameters are Python floats in torch (Double here), rounded to Float32 where a kernel
        // takes them as a scalar; bias corrections stay in Double as in torch's Python code.
        let beta1 = configuration.beta1, beta2 = configuration.beta2
        let biasCorrection1 = 1 - Foundation.pow(beta1, Double(stepCount))
        let biasCorrection2 = 1 - Foundation.pow(beta2, Double(stepCount))
        let stepSize = Float(Double(learningRate) / biasCorrection1)
        let correction2Root = Float(biasCorrection2.squareRoot())
        let decay = Float(1 - Double(learningRate) * configuration.weightDecay)
        let epsilon = Float(configuration.epsilon), secondDecay = Float(beta2)
        let firstWeight = Float(1 - beta1), secondWeight = Float(1 - beta2)
        for name in parameters.names {
            var values = parameters[name]!.detached()
            let decay = configuration.decays(rank: values.rank) ? decay : 1
            let gradient = gradients[name]!.scalars
            var m = firstMoments[name]!, v = secondMoments[name]!
            values.withUnsafeMutableScalars { p in
                for i in 0..<p.count {
                    let g = gradient[i]
                    p[i] *= decay
                    m[i] += firstWeight * (g - m[i])
                    v[i] = v[i] * secondDecay + secondWeight * g * g
                    let denominator = v[i].squareRoot() / correction2Root + epsilon
                    p[i] += -stepSize * (m[i] / denominator)
                }
            }
            firstMoments[name] = m
            secondMoments[name] = v
            try parameters.update(name, to: values)
        }
    }
}
