import TensorCore

/// Compares reverse-mode gradients with central finite differences.
///
/// The checked scalar is `Σ f(inputs) ⊙ W` with a fixed random `W`, so every output element matters.
/// Differences are taken in Float32 inputs with the loss accumulated in Double; the step and tolerances
/// suit smooth functions evaluated on values of order one.
struct GradientCheck {
    var step: Float = 1e-2
    var relative: Double = 2e-2
    var absolute: Double = 2e-3

    /// Returns a description of the first mismatches, or an empty string when all gradients agree.
    func mismatches(_ inputs: [Tensor], _ function: ([Tensor]) throws -> Tensor) rethrows -> String {
        let parameters = inputs.map { $0.requiringGradient() }
        let output = try function(parameters)
        var generator = SplitMix64(seed: 99)
        let weights = Tensor(randomNormal: output.shape, generator: &generator)
        let loss = (output * weights).sum()
        let analytic = loss.gradients(withRespectTo: parameters)
        let weightValues = weights.scalars

        func evaluate(_ values: [Tensor]) throws -> Double {
            try withoutGradients {
                let out = try function(values).scalars
                var total: Double = 0
                for (o, w) in zip(out, weightValues) { total += Double(o) * Double(w) }
                return total
            }
        }

        var report: [String] = []
        for (which, input) in inputs.enumerated() {
            let base = input.scalars
            let gradient = analytic[which].scalars
            if gradient.count != base.count {
                return "input \(which): gradient has \(gradient.count) elements, input \(base.count)"
            }
            for index in base.indices {
                var plus = base, minus = base
                plus[index] += step
                minus[index] -= step
                var upper = inputs, lower = inputs
                upper[which] = Tensor(plus, shape: input.shape)
                lower[which] = Tensor(minus, shape: input.shape)
                let numeric = (try evaluate(upper) - evaluate(lower)) / Double(2 * step)
                let actual = Double(gradient[index])
                if Swift.abs(actual - numeric) > absolute + relative * Swift.abs(numeric) {
                    report.append("input \(which)[\(index)]: analytic \(actual), numeric \(numeric)")
                    if report.count >= 5 { return report.joined(separator: "; ") }
                }
            }
        }
        return report.joined(separator: "; ")
    }
}

/// A seeded random tensor for tests.
func randomTensor(_ shape: [Int], seed: UInt64, range: Range<Float>? = nil) -> Tensor {
    var generator = SplitMix64(seed: seed)
    if let range { return Tensor(randomUniform: shape, in: range, generator: &generator) }
    return Tensor(randomNormal: shape, generator: &generator)
}
