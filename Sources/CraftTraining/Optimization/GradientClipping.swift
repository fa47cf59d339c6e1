// Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_ (norm_type 2, error_if_nonfinite False):
// total = ||(||g_1||, ..., ||g_n||)||, coefficient = clamp(max_norm / (total + 1e-6), max=1).
import TensorCore

/// Gradient accumulation and clipping over a ``ParameterSet`` of gradients.
public enum GradientClipping {
    /// The global L2 norm of all gradients together.
    public static func globalNorm(_ gradients: ParameterSet) -> Float {
        var total: Double = 0
        for name in gradients.names {
            var sum: Float = 0
            gradients[name]!.withUnsafeScalars { values in for value in values { sum += value * value } }
            total += Double(sum)
        }
        return Float(total.squareRoot())
    }

    /// Scales all gradients so their global norm is at most `maximumNorm`, as
    /// `torch.nn.utils.clip_grad_norm_`.
    ///
    /// - Returns: the gradients (unchanged when the norm is within bounds) and the norm before clipping.
    public static func clipped(_ gradients: ParameterSet, maximumNorm: Float) -> (gradients: ParameterSet, norm: Float) {
        let norm = globalNorm(gradients)
        let coefficient = Swift.min(maximumNorm / (norm + 1e-6), 1)
        guard coefficient < 1 else { return (gradients, norm) }
        return (ParameterSet(gradients.tensors.mapValues { $0.detached() * coefficient }), norm)
    }
}

/// Sums gradients over several micro-batches and gives their mean (gradient accumulation).
public struct GradientAccumulator: Sendable {
    /// The running sum, by name.
    public private(set) var sum: ParameterSet?
    /// How many micro-batches were added.
    public private(set) var count = 0

    /// An empty accumulator.
    public init() {}

    /// Adds one micro-batch's gradients.
    ///
    /// - Throws: ``TrainingError`` (`parameterMismatch`) when the names or shapes differ from earlier ones.
    public mutating func add(_ gradients: ParameterSet) throws {
        if let current = sum {
            try current.checkMatches(gradients, what: "micro-batch gradients")
            sum = ParameterSet(Dictionary(uniqueKeysWithValues: current.names.map { ($0, current[$0]! + gradients[$0]!.detached()) }))
        } else {
            sum = ParameterSet(gradients.tensors.mapValues { $0.detached() })
        }
        count += 1
    }

    /// The mean of the added gradients, and resets the accumulator; `nil` when none were added.
    public mutating func takeMean() -> ParameterSet? {
        guard let total = sum, count > 0 else { return nil }
        let scale = 1 / Float(count)
        sum = nil
        count = 0
        return ParameterSet(total.tensors.mapValues { $0 * scale })
    }
}
