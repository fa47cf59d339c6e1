import TensorCore

/// A frozen, shared space of discrete visual tokens: the contract between vision encoders and
/// language backends (docs/architecture.md).
///
/// A codebook space has `entries` code vectors of `dimension` components on each of `depth` residual
/// levels, a ``CodebookMetric``, and a ``hash`` that names its vectors (`docs/codebook-hash.md`).
/// An encoder quantizes into it; a backend's projector reads from it. Two components can be paired
/// exactly when their hashes are equal.
///
/// ``Codebook`` is the implementation Craft ships: exact blocked-GEMM search on OpenBLAS.
public protocol CodebookSpace: Sendable {
    /// The number of code vectors K on each level.
    var entries: Int { get }
    /// The number of components D of each code vector.
    var dimension: Int { get }
    /// The number of residual levels (1 = plain VQ).
    var depth: Int { get }
    /// The distance used to find the nearest code.
    var metric: CodebookMetric { get }
    /// The codebook hash, `"sha256:"` followed by 64 lowercase hex digits.
    var hash: String { get }

    /// Quantizes `count` row-major feature vectors `[count][dimension]`.
    ///
    /// Implementations choose the nearest code at each residual level with the lowest index winning
    /// ties, and give the same result for any `threads`.
    ///
    /// - Returns: codes `[count][depth]`, the quantized vectors (sum over levels) `[count][dimension]`,
    ///   and the residual norm `‖x − quantized‖` per row.
    func quantize(_ features: [Float], count: Int, threads: Int) throws -> Quantization

    /// The vectors codes stand for, summed over levels: codes `[N][depth]` to `[N][dimension]`.
    ///
    /// - Throws: when a code is outside `0..<entries` or the count is not a multiple of `depth`.
    func embed(_ codes: [Int32]) throws -> [Float]
}

extension CodebookSpace {
    /// Quantizes features shaped `[..., dimension]`; codes come back shaped `[..., depth]`.
    ///
    /// Gradients do not flow through this call; use ``Codebook/straightThrough(_:threads:)`` for training.
    public func quantize(_ features: Tensor, threads: Int = 1) throws -> (codes: IndexTensor, quantized: Tensor, residualNorms: Tensor) {
        guard let last = features.shape.last, last == dimension else {
            throw CraftCoreError(
                .invalidFeatures,
                "features shaped \(features.shape) do not end in the codebook dimension \(dimension)")
        }
        let leading = Array(features.shape.dropLast())
        let result = try quantize(features.scalars, count: features.scalarCount / dimension, threads: threads)
        return (
            IndexTensor(result.codes, shape: leading + [depth]), Tensor(result.quantized, shape: features.shape),
            Tensor(result.residualNorms, shape: leading)
        )
    }

    /// The vectors of codes shaped `[..., depth]`, as a tensor shaped `[..., dimension]`.
    public func embed(_ codes: IndexTensor) throws -> Tensor {
        guard let last = codes.shape.last, last == depth else {
            throw CraftCoreError(
                .shapeMismatch, "codes shaped \(codes.shape) do not end in the codebook depth \(depth)")
        }
        return Tensor(try embed(codes.scalars), shape: Array(codes.shape.dropLast()) + [dimension])
    }

    /// Whether `other` is the same codebook space (equal hashes, which cover sizes and metric).
    public func isSameSpace(as other: some CodebookSpace) -> Bool { hash == other.hash }
}

extension Codebook: CodebookSpace {
    /// Quantizes with the default blocking (the requirement of ``CodebookSpace``).
    public func quantize(_ features: [Float], count: Int, threads: Int) throws -> Quantization {
        try quantize(features, count: count, threads: threads, blocking: SearchBlocking())
    }
}
