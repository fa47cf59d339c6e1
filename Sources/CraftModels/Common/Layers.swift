// Shared building blocks of the model runtimes: fully connected layers in PyTorch's `nn.Linear` and
// GPT-2's `Conv1D` layouts, and layer normalisation with its parameters.
import TensorCore

/// `nn.Linear`: `x · weightᵀ + bias` with a `[out, in]` weight.
struct Linear: Sendable {
    let weight: Tensor
    let bias: Tensor?

    init(_ weights: inout WeightStore, _ prefix: String, input: Int, output: Int, bias hasBias: Bool = true) throws(ModelError) {
        weight = try weights.take(prefix + ".weight", shape: [output, input])
        bias = hasBias ? try weights.take(prefix + ".bias", shape: [output]) : nil
    }

    func callAsFunction(_ x: Tensor) -> Tensor { x.linear(weight: weight, bias: bias) }
}

/// GPT-2's `Conv1D`: `x · weight + bias` with an `[in, out]` weight (no transpose).
struct Conv1D: Sendable {
    let weight: Tensor
    let bias: Tensor

    init(_ weights: inout WeightStore, _ prefix: String, input: Int, output: Int) throws(ModelError) {
        weight = try weights.take(prefix + ".weight", shape: [input, output])
        bias = try weights.take(prefix + ".bias", shape: [output])
    }

    func callAsFunction(_ x: Tensor) -> Tensor { x.matmul(weight) + bias }
}

/// `nn.LayerNorm` over the last dimension, with weight and bias.
struct LayerNorm: Sendable {
    let weight: Tensor
    let bias: Tensor
    let epsilon: Float

    init(_ weights: inout WeightStore, _ prefix: String, dimension: Int, epsilon: Float) throws(ModelError) {
        weight = try weights.take(prefix + ".weight", shape: [dimension])
        bias = try weights.take(prefix + ".bias", shape: [dimension])
        self.epsilon = epsilon
    }

    func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm(weight: weight, bias: bias, epsilon: epsilon) }
}

/// Llama's `RMSNorm` over the last dimension.
struct RMSNorm: Sendable {
    let weight: Tensor
    let epsilon: Float

    init(_ weights: inout WeightStore, _ prefix: String, dimension: Int, epsilon: Float) throws(ModelError) {
        weight = try weights.take(prefix + ".weight", shape: [dimension])
        self.epsilon = epsilon
    }

    func callAsFunction(_ x: Tensor) -> Tensor { x.rmsNorm(weight: weight, epsilon: epsilon) }
}

extension Tensor {
    /// `[B, T, heads·d]` → `[B, heads, T, d]`.
    func splittingHeads(_ heads: Int) -> Tensor {
        let (batch, length) = (shape[0], shape[1])
        return reshaped([batch, length, heads, shape[2] / heads]).permuted([0, 2, 1, 3])
    }

    /// `[B, heads, T, d]` → `[B, T, heads·d]`.
    func mergingHeads() -> Tensor {
        let (batch, heads, length, depth) = (shape[0], shape[1], shape[2], shape[3])
        return permuted([0, 2, 1, 3]).reshaped([batch, length, heads * depth])
    }
}
