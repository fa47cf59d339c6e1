// Shared building blocks of the model runtimes: fully connected layers in PyTorch's `nn.Linear` and
// GPT-2's `Conv1D` layouts, and layer normalisation with its parameters.
import TensorCore

/// `nn.Linear`: `x · weightᵀ + bias` with a `[out, in]` weight (float32 or half precision as stored).
struct Linear: Sendable {
    let weight: WeightMatrix
    let bias: Tensor?

    init(_ weights: inout WeightStore, _ prefix: String, input: Int, output: Int, bias hasBias: Bool = true) throws(ModelError) {
        weight = try weights.takeMatrix(prefix + ".weight", shape: [output, input])
        bias = hasBias ? try weights.take(prefix + ".bias", shape: [output]) : nil
    }

    func callAsFunction(_ x: Tensor) -> Tensor { weight.linear(x, bias: bias) }
}

/// GPT-2's `Conv1D`: `x · weight + bias` with an `[in, out]` weight (no transpose).
///
/// A half-precision weight is transposed once at load into `[out, in]` (the layout the half-precision
/// kernels stream), so it costs its 2 bytes per value in memory rather than a mapped view.
struct Conv1D: Sendable {
    /// `[in, out]` when float32; `[out, in]` when half precision.
    let weight: WeightMatrix
    let bias: Tensor

    init(_ weights: inout WeightStore, _ prefix: String, input: Int, output: Int) throws(ModelError) {
        switch try weights.takeMatrix(prefix + ".weight", shape: [input, output]) {
        case .float32(let tensor): weight = .float32(tensor)
        case .half(let matrix): weight = .half(matrix.transposed())
        // GPT-2 is not read from GGUF files; a quantized Conv1D weight is dequantized.
        case .quantized(let matrix): weight = .float32(matrix.floats())
        }
        bias = try weights.take(prefix + ".bias", shape: [output])
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        switch weight {
        case .float32(let tensor): x.matmul(tensor) + bias
        case .half(let matrix): x.linear(weight: matrix, bias: bias)
        case .quantized(let matrix): x.linear(weight: matrix, bias: bias)
        }
    }
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
