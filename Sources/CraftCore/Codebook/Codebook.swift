// The codebook space of CRAFT (arXiv 2602.19449): a frozen, shared set of code vectors that a vision
// encoder quantizes into and every compatible language backend reads. Residual levels follow the
// residual VQ of vector-quantize-pytorch's `ResidualVQ` (level l quantizes what levels < l left).
import Foundation

/// A frozen codebook of `entries` code vectors of `dimension` components, over `depth` residual levels.
///
/// Values are stored row-major `[depth][entries][dimension]`, exactly the order the codebook hash
/// reads (``CodebookHash``). The hash is computed once, at initialisation, from the values as given.
///
/// Searching is exact nearest-code search: a first pass of approximate scores (a blocked GEMM on
/// OpenBLAS, or int8 dot products on CPUs with AVX-512 VNNI) with a fused SIMD argmin, whose
/// near-ties are re-ranked in float64 (see ``quantize(_:count:threads:blocking:)``); ties go to
/// the lowest index, and results are the same for every CPU, thread count and block size.
///
/// ```swift
/// let codebook = try Codebook(values: [0, 0, 1, 1, -1, 2], entries: 3, dimension: 2, metric: .l2)
/// let result = try codebook.quantize([0.9, 1.2], count: 1)
/// print(result.codes)  // [1]
/// ```
public struct Codebook: Sendable {
    /// The number of code vectors K per level.
    public let entries: Int
    /// The number of components D of each code vector.
    public let dimension: Int
    /// The number of residual levels (1 = plain VQ).
    public let depth: Int
    /// The distance the codebook is searched with.
    public let metric: CodebookMetric
    /// The stored values, row-major `[depth][entries][dimension]`, exactly as given.
    public let values: [Float]
    /// The codebook hash (docs/codebook-hash.md), `"sha256:"` followed by 64 lowercase hex digits.
    public let hash: String

    /// The vectors actually searched and embedded: the stored values for `l2`, each code vector
    /// L2-normalised for `cosine` (a zero code vector stays zero).
    let searchValues: [Float]
    /// `‖c‖²` of every searched code vector, `[depth][entries]`.
    let squaredNorms: [Float]
    /// The largest `‖c‖` of each level, for the search's rounding bound.
    let levelMaximumNorms: [Float]
    /// The int8-rounded codes of the int8 search pass, made on first use.
    let int8Codes = Int8CodeCache()

    /// Creates a codebook from its values, validating sizes and finiteness.
    ///
    /// - Parameters:
    ///   - values: `depth·entries·dimension` values, row-major `[depth][entries][dimension]`.
    ///   - entries: the number of code vectors K per level (at least 1, below 2³¹).
    ///   - dimension: the number of components D (at least 1).
    ///   - depth: the number of residual levels (at least 1).
    ///   - metric: `.l2` or `.cosine`.
    /// - Throws: ``CraftCoreError`` with code `invalidCodebook` when a size is not positive, the value
    ///   count is not `depth·entries·dimension`, or a value is NaN or infinite (the message names it).
    public init(values: [Float], entries: Int, dimension: Int, depth: Int = 1, metric: CodebookMetric) throws {
        guard entries > 0, dimension > 0, depth > 0 else {
            throw CraftCoreError(
                .invalidCodebook,
                "a codebook needs at least one entry, one dimension and one level, but got K=\(entries), D=\(dimension), depth=\(depth)")
        }
        guard entries <= Int(Int32.max) else {
            throw CraftCoreError(
                .invalidCodebook, "a codebook may hold at most \(Int32.max) entries per level, but got K=\(entries)")
        }
        let (product, overflow) = entries.multipliedReportingOverflow(by: dimension)
        let (total, overflow2) = product.multipliedReportingOverflow(by: depth)
        guard !overflow, !overflow2, values.count == total else {
            throw CraftCoreError(
                .invalidCodebook,
                "the codebook holds \(values.count) values but depth × K × D = \(depth) × \(entries) × \(dimension) does not match; pass values shaped [depth][K][D]")
        }
        self.hash = try CodebookHash.compute(
            values: values, entries: entries, dimension: dimension, depth: depth, metric: metric)
        self.entries = entries
        self.dimension = dimension
        self.depth = depth
        self.metric = metric
        self.values = values
        var search = values
        if metric == .cosine {
            for row in 0..<(depth * entries) {
                Self.normalise(&search, offset: row * dimension, count: dimension)
            }
        }
        var norms = [Float](repeating: 0, count: depth * entries)
        search.withUnsafeBufferPointer { buffer in
            for row in 0..<(depth * entries) {
                norms[row] = Self.squaredNorm(buffer.baseAddress! + row * dimension, count: dimension)
            }
        }
        self.searchValues = search
        self.squaredNorms = norms
        self.levelMaximumNorms = (0..<depth).map { level in
            norms[(level * entries)..<((level + 1) * entries)].max()!.squareRoot()
        }
    }

    /// The searched vector of code `code` at level `level` (normalised for cosine).
    ///
    /// - Throws: ``CraftCoreError`` (`codeOutOfRange`) when the level or code is out of range.
    public func vector(level: Int, code: Int) throws -> [Float] {
        guard (0..<depth).contains(level), (0..<entries).contains(code) else {
            throw CraftCoreError(
                .codeOutOfRange,
                "code \(code) at level \(level) is outside this codebook (K=\(entries), depth=\(depth))")
        }
        let start = (level * entries + code) * dimension
        return Array(searchValues[start..<(start + dimension)])
    }

    /// The vectors that codes stand for: for each of `count` rows, the sum over levels of the chosen
    /// code vectors (normalised code vectors for cosine), `[count][dimension]`.
    ///
    /// - Parameter codes: `count·depth` code ids, row-major `[count][depth]`.
    /// - Throws: ``CraftCoreError`` (`shapeMismatch`) when `codes.count` is not a multiple of `depth`,
    ///   (`codeOutOfRange`) when a code is negative or at least `entries` (the message names its row).
    public func embed(_ codes: [Int32]) throws -> [Float] {
        guard codes.count % depth == 0 else {
            throw CraftCoreError(
                .shapeMismatch,
                "\(codes.count) codes cannot be read as rows of depth \(depth); pass codes shaped [N][\(depth)]")
        }
        let count = codes.count / depth
        var output = [Float](repeating: 0, count: count * dimension)
        for (index, code) in codes.enumerated() where code < 0 || Int(code) >= entries {
            throw CraftCoreError(
                .codeOutOfRange,
                "code \(code) in row \(index / depth), level \(index % depth) is outside 0..<\(entries); codes must index this codebook")
        }
        searchValues.withUnsafeBufferPointer { table in
            output.withUnsafeMutableBufferPointer { out in
                for row in 0..<count {
                    let target = out.baseAddress! + row * dimension
                    for level in 0..<depth {
                        let code = Int(codes[row * depth + level])
                        let source = table.baseAddress! + (level * entries + code) * dimension
                        for component in 0..<dimension { target[component] += source[component] }
                    }
                }
            }
        }
        return output
    }

    // MARK: - Small kernels

    static func squaredNorm(_ pointer: UnsafePointer<Float>, count: Int) -> Float {
        var sum: Float = 0
        for index in 0..<count { sum += pointer[index] * pointer[index] }
        return sum
    }

    /// Scales `count` values at `offset` to unit L2 norm; a zero vector stays zero.
    static func normalise(_ values: inout [Float], offset: Int, count: Int) {
        values.withUnsafeMutableBufferPointer { buffer in
            let pointer = buffer.baseAddress! + offset
            let norm = squaredNorm(pointer, count: count).squareRoot()
            guard norm > 0 else { return }
            for index in 0..<count { pointer[index] /= norm }
        }
    }
}

extension CraftCoreError.Code {
    /// A code id is negative or not below the codebook's entry count, or a level is out of range.
    public static let codeOutOfRange = CraftCoreError.Code(name: "code-out-of-range")
    /// Features to quantize are malformed: wrong size, NaN or infinite values.
    public static let invalidFeatures = CraftCoreError.Code(name: "invalid-features")
}
