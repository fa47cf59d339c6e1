/// The result of quantizing `count` feature vectors against a ``Codebook``.
///
/// All arrays are row-major. For `depth` residual levels, `codes[n·depth + l]` is the code chosen at
/// level `l` for row `n`, and `quantized` holds, per row, the sum over levels of the chosen code vectors.
public struct Quantization: Sendable, Equatable {
    /// The number of quantized rows N.
    public var count: Int
    /// The number of residual levels.
    public var depth: Int
    /// The number of components D per row.
    public var dimension: Int
    /// Chosen code ids, `[count][depth]`.
    public var codes: [Int32]
    /// The sum over levels of the chosen code vectors, `[count][dimension]`.
    public var quantized: [Float]
    /// `‖x − quantized‖` per row (for cosine, `x` is the L2-normalised feature).
    public var residualNorms: [Float]
    /// The squared L2 distance between each level's search input (the feature, then the residuals)
    /// and its chosen code, `[count][depth]`: `Σ (r_i − c_i)²` summed in float64 and rounded once to
    /// float32, so it does not depend on the BLAS kernels, blocking or thread count (faiss
    /// `IndexFlatL2` reports `‖r‖² + ‖c‖² − 2 r·c` in float32, which agrees to rounding).
    public var squaredDistances: [Float]

    /// Creates a result from its parts (sizes are the caller's responsibility).
    public init(
        count: Int, depth: Int, dimension: Int, codes: [Int32], quantized: [Float], residualNorms: [Float],
        squaredDistances: [Float]
    ) {
        self.count = count
        self.depth = depth
        self.dimension = dimension
        self.codes = codes
        self.quantized = quantized
        self.residualNorms = residualNorms
        self.squaredDistances = squaredDistances
    }
}
