// Elementwise functions and activations. Each is one pass over contiguous memory forward and one fused
// pass backward (gradient times the local derivative, from the saved input or output).
// Activations follow torch.nn.functional: gelu (erf and approximate="tanh"), silu, sigmoid, logsigmoid.
import CKernels
import Foundation

/// The local derivative of an elementwise function, from what the backward pass has at hand.
enum ElementDerivative: Sendable {
    case constant(Float)
    case fromInput(@Sendable (Float) -> Float)
    case fromOutput(@Sendable (Float) -> Float)
    case fromInputAndOutput(@Sendable (Float, Float) -> Float)

    /// Whether the backward pass reads the input (which must then be kept).
    var readsInput: Bool {
        switch self {
        case .fromInput, .fromInputAndOutput: true
        case .constant, .fromOutput: false
        }
    }

    /// Whether the backward pass reads the output.
    var readsOutput: Bool {
        switch self {
        case .fromOutput, .fromInputAndOutput: true
        case .constant, .fromInput: false
        }
    }
}

extension Tensor {
    /// `function` applied to every element, recording `derivative` for the backward pass.
    @inline(__always)
    func mapped(derivative: ElementDerivative, _ function: (Float) -> Float) -> Tensor {
        let input = contiguousStorage()
        let result = Tensor.filledInParallel(shape: shape, keeping: input, grain: 32768) { output, range in
            for i in range { output[i] = function(input.pointer[i]) }
        }
        guard gradientNeeds(self) != nil else { return result }
        // Only what the derivative reads is kept: nothing for a constant one, the input or the output.
        let x: Tensor? = derivative.readsInput ? detached() : nil
        let y: Tensor? = derivative.readsOutput ? result : nil
        return result.recorded(from: [self]) { g in
            switch derivative {
            case .constant(let value): return [value == 1 ? g : g.scaled(by: value)]
            case .fromInput(let d): return [Tensor.zipMap(g, x!) { $0 * d($1) }]
            case .fromOutput(let d): return [Tensor.zipMap(g, y!) { $0 * d($1) }]
            case .fromInputAndOutput(let d):
                let local = Tensor.zipMap(x!, y!) { d($0, $1) }
                return [Tensor.zipMap(g, local) { $0 * $1 }]
            }
        }
    }

    @inline(__always)
    private func gradientNeeds(_ tensor: Tensor) -> [Bool]? { Tensor.gradientNeeds(tensor) }

    /// CKernels' `function` (a `CRAFT_*` activation, run on the CPU's widest path) applied to every
    /// element; the backward pass applies `backward(saved, g)` 16 elements at a time, where `saved` is
    /// the input (or the output when `savingOutput`).
    @inline(__always)
    func kernelMapped(
        _ function: Int32, savingOutput: Bool = false,
        backward: @escaping @Sendable (Vector, Vector) -> Vector
    ) -> Tensor {
        let input = contiguousStorage()
        let result = Tensor.filledInParallel(shape: shape, keeping: input, block: 16, grain: 2048) { output, range in
            craft_activation(function, input.pointer + range.lowerBound, output + range.lowerBound, range.count)
        }
        guard gradientNeeds(self) != nil else { return result }
        let saved = savingOutput ? result : detached()
        return result.recorded(from: [self]) { g in [Tensor.vectorZip(saved, g, backward)] }
    }

    /// `body(a, b)` over two same-shape tensors, 16 elements at a time (not recorded).
    static func vectorZip(_ a: Tensor, _ b: Tensor, _ body: @escaping @Sendable (Vector, Vector) -> Vector) -> Tensor {
        precondition(a.shape == b.shape, "TensorCore internal error: vectorZip shapes \(a.shape) and \(b.shape)")
        let x = a.contiguousStorage(), y = b.contiguousStorage()
        return filledInParallel(shape: a.shape, keeping: (x, y), block: 16, grain: 2048) { output, range in
            let start = range.lowerBound
            VectorMath.map(x.pointer + start, y.pointer + start, output + start, range.count, body)
        }
    }

    /// A new unrecorded tensor of `shape`, written in parallel: `body(output, range)` fills the
    /// elements `range` of the output, a run of whole `block`s of elements (the last run may end
    /// inside a block), at least `grain` blocks long unless it is the whole tensor. `inputs` (the
    /// storages `body` reads) are kept alive meanwhile.
    @inline(__always)
    static func filledInParallel<Inputs>(
        shape: [Int], keeping inputs: Inputs, block: Int = 1, grain: Int,
        _ body: (UnsafeMutablePointer<Float>, Range<Int>) -> Void
    ) -> Tensor {
        var result = Tensor(uninitializedShape: shape)
        let count = result.scalarCount
        let output = SendablePointer(pointer: result.storage.pointer)
        withExtendedLifetime(inputs) {
            parallelRanges((count + block - 1) / block, grain: grain) { blocks in
                body(output.pointer, (blocks.lowerBound * block)..<Swift.min(count, blocks.upperBound * block))
            }
        }
        result.node = nil
        return result
    }

    /// e raised to each element.
    public func exp() -> Tensor {
        kernelMapped(Int32(CRAFT_EXP), savingOutput: true, backward: { y, g in g * y })
    }

    /// The natural logarithm of each element (−∞ at 0, NaN below, as in PyTorch).
    public func log() -> Tensor { mapped(derivative: .fromInput { 1 / $0 }) { Foundation.log($0) } }

    /// The square root of each element.
    public func sqrt() -> Tensor { mapped(derivative: .fromOutput { 0.5 / $0 }) { $0.squareRoot() } }

    /// The reciprocal square root of each element.
    public func rsqrt() -> Tensor { mapped(derivative: .fromOutput { -0.5 * $0 * $0 * $0 }) { 1 / $0.squareRoot() } }

    /// Each element squared.
    public func squared() -> Tensor { mapped(derivative: .fromInput { 2 * $0 }) { $0 * $0 } }

    /// The absolute value of each element (gradient 0 at 0, as in PyTorch).
    public func abs() -> Tensor {
        mapped(derivative: .fromInput { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }) { Swift.abs($0) }
    }

    /// Each element raised to `exponent`; the gradient is `exponent · x^(exponent − 1)`.
    public func pow(_ exponent: Float) -> Tensor {
        if exponent == 2 { return squared() }
        return mapped(derivative: .fromInput { exponent * Foundation.pow($0, exponent - 1) }) {
            Foundation.pow($0, exponent)
        }
    }

    /// Each element limited to `[lower, upper]` (either bound optional). The gradient passes where the
    /// input lies inside the closed interval and is 0 outside, as in `torch.clamp`.
    public func clamped(min lower: Float? = nil, max upper: Float? = nil) -> Tensor {
        let low = lower ?? -.infinity, high = upper ?? .infinity
        return mapped(derivative: .fromInput { ($0 >= low && $0 <= high) ? 1 : 0 }) { Swift.min(Swift.max($0, low), high) }
    }

    /// The hyperbolic tangent of each element.
    public func tanh() -> Tensor { mapped(derivative: .fromOutput { 1 - $0 * $0 }) { Foundation.tanh($0) } }

    /// The logistic sigmoid `1 / (1 + e^−x)` (saturates to 0 and 1 without overflow).
    public func sigmoid() -> Tensor {
        kernelMapped(Int32(CRAFT_SIGMOID), savingOutput: true,
                     backward: { y, g in g * y * (Vector(repeating: 1) - y) })
    }

    /// `log(sigmoid(x))`, stable for large |x| (`min(x, 0) − log1p(e^−|x|)`), as `F.logsigmoid`.
    public func logSigmoid() -> Tensor {
        mapped(derivative: .fromInput { Tensor.sigmoid(-$0) }) { x in
            Swift.min(x, 0) - Foundation.log1p(Foundation.exp(-Swift.abs(x)))
        }
    }

    /// The rectified linear unit `max(x, 0)` (gradient 0 at 0).
    public func relu() -> Tensor { mapped(derivative: .fromInput { $0 > 0 ? 1 : 0 }) { Swift.max($0, 0) } }

    /// SiLU (swish) `x · sigmoid(x)`, as `F.silu` (Llama's MLP activation).
    public func silu() -> Tensor {
        kernelMapped(Int32(CRAFT_SILU), backward: { x, g in
            let s = VectorMath.sigmoid(x)
            return g * s * (Vector(repeating: 1) + x * (Vector(repeating: 1) - s))
        })
    }

    /// GELU with the exact Gaussian CDF `x · Φ(x) = 0.5 · x · (1 + erf(x / √2))`, as `F.gelu(x)`.
    public func gelu() -> Tensor {
        kernelMapped(Int32(CRAFT_GELU_ERF), backward: { x, g in
            let cdf = Vector(repeating: 0.5) * (Vector(repeating: 1) + VectorMath.erf(x * Vector(repeating: Float(0.5.squareRoot()))))
            let density = VectorMath.exp(Vector(repeating: -0.5) * x * x) * Vector(repeating: Float(1 / (2 * Double.pi).squareRoot()))
            return g * (cdf + x * density)
        })
    }

    /// GELU with the tanh approximation, as `F.gelu(x, approximate="tanh")` (GPT-2's `gelu_new`,
    /// SigLIP's `gelu_pytorch_tanh`).
    public func geluTanh() -> Tensor {
        let c = Vector(repeating: Float((2 / Double.pi).squareRoot())), k = Vector(repeating: 0.044715)
        let half = Vector(repeating: 0.5), one = Vector(repeating: 1)
        return kernelMapped(Int32(CRAFT_GELU_TANH), backward: { x, g in
            let t = VectorMath.tanh(c * (x + k * x * x * x))
            return g * (half * (one + t) + half * x * (one - t * t) * c * (one + Vector(repeating: 3) * k * x * x))
        })
    }

    @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
        let e = Foundation.exp(x)
        return e / (1 + e)
    }
}
