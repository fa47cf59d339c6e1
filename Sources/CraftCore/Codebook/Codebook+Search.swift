// Exact nearest-code search: a first pass of approximate scores ‖c‖² − 2x·c over blocks of queries
// and codes, then a fused SIMD argmin, blocked so the N×K score matrix is never materialised. The
// first pass is either a float32 GEMM (OpenBLAS `cblas_sgemm`, the decomposition faiss uses in
// `exhaustive_L2sqr_blas`) or, on CPUs with AVX-512 VNNI, int8 dot products (CKernels' codesearch.c)
// at four times the multiply-add rate. Either pass only selects candidates: every code whose score
// is within a proven error bound of the best is re-ranked by its distance computed directly in
// float64, so the chosen code and its distance do not depend on the pass, the BLAS kernels, block
// shapes or thread count.
import CKernels
import Dispatch
import Foundation
import TensorCore

/// The first pass of the nearest-code search: how the approximate scores that select candidates are
/// computed. Every pass returns the same codes and distances (candidates are re-ranked exactly); the
/// pass only changes the speed.
public enum SearchPass: String, Sendable, Equatable, CaseIterable {
    /// `int8` where ``SearchPass/int8IsFast`` (AVX-512 VNNI or AVX2) and the codebook is large
    /// enough (at least 256 codes of at least 32 components, at most 65 535), else `float32`.
    case automatic
    /// Float32 scores by OpenBLAS `cblas_sgemm`, within a few ulps of the exact ones.
    case float32
    /// Scores from int8-rounded queries and codes (exact integer dot products: VPDPBUSD on AVX-512
    /// VNNI, VPMADDUBSW on AVX2 with queries within ±63; portable C elsewhere, which is slower than
    /// `float32`), with a wider candidate margin bounded by the rounding errors.
    case int8

    /// Whether this CPU runs one of the int8 pass's SIMD kernels (AVX-512 VNNI or AVX2).
    public static var int8IsFast: Bool { craft_int8_search_fast() != 0 }

    /// The kernel the int8 pass runs on this CPU: "avx512-vnni", "avx2" or "portable".
    public static var int8KernelName: String { String(cString: craft_int8_search_kernel_name()) }

    /// The pass that runs for a codebook level of `entries` codes of `dimension` components.
    public func resolved(entries: Int, dimension: Int) -> SearchPass {
        switch self {
        case .float32: return .float32
        case .int8: return dimension <= Self.int8DimensionLimit ? .int8 : .float32
        case .automatic:
            return Self.int8IsFast && entries >= 256 && (32...Self.int8DimensionLimit).contains(dimension)
                ? .int8 : .float32
        }
    }

    /// The int8 dot products are exact int32 sums up to this dimension.
    static let int8DimensionLimit = 65_535
}

/// Block sizes of the nearest-code search, and its first pass.
///
/// A query block of `queries` rows is multiplied with a code block of `codes` rows into a
/// `queries × codes` score tile that stays in cache while its argmin is taken (the default 1024 × 512
/// tile is 2 MB; large query blocks amortise OpenBLAS's packing of each code block). Query blocks
/// shrink to `⌈N / threads⌉` rows (at least 64) so every thread gets work. The int8 pass takes at most
/// 256 rows at a time (it packs nothing) and code blocks of a multiple of 64. The results (codes and
/// distances) do not depend on the block sizes, the thread count or the pass: they are tuning only.
public struct SearchBlocking: Sendable, Equatable {
    /// Rows of features per block (the unit of work a thread takes).
    public var queries: Int
    /// Code vectors per block.
    public var codes: Int
    /// The first pass (``SearchPass``).
    public var pass: SearchPass

    /// Creates block sizes; values below 1 are treated as 1.
    public init(queries: Int = 1024, codes: Int = 512, pass: SearchPass = .automatic) {
        self.queries = max(1, queries)
        self.codes = max(1, codes)
        self.pass = pass
    }
}

extension Codebook {
    /// Quantizes `count` feature vectors: at each residual level, the nearest code to what the
    /// previous levels left; lowest index wins ties.
    ///
    /// For `l2` the search minimises `‖r − c‖²`. For `cosine` each feature is L2-normalised first
    /// (a zero feature stays zero, so every code ties and code 0 is chosen) and searched against the
    /// L2-normalised codes, which ranks by cosine similarity; `quantized` then holds normalised codes.
    /// Level `l` searches the residual `r_l = x − (c_0 + … + c_{l−1})`.
    ///
    /// The work is split into query blocks of ``SearchBlocking/queries`` rows, shared by `threads`
    /// worker threads; each block runs single-threaded OpenBLAS GEMMs against code blocks and a SIMD
    /// argmin over each score tile; codes whose scores are within the GEMM's rounding bound of the
    /// best are re-ranked by their float64 distance. OpenBLAS (a process-wide setting) is switched to
    /// one thread while any search runs and restored when the last concurrent search ends. Codes and
    /// distances are identical for every CPU (BLAS kernel), block size and thread count.
    ///
    /// - Parameters:
    ///   - features: `count·dimension` values, row-major `[count][dimension]`.
    ///   - count: the number of rows N.
    ///   - threads: worker threads (at least 1).
    ///   - blocking: block sizes (tuning only; results do not depend on them).
    /// - Throws: ``CraftCoreError`` (`invalidFeatures`) when the size is not `count·dimension`, a value
    ///   is NaN or infinite, or a distance overflows Float32 (each message names the row).
    public func quantize(
        _ features: [Float], count: Int, threads: Int = 1, blocking: SearchBlocking = SearchBlocking()
    ) throws -> Quantization {
        let (expected, overflow) = count.multipliedReportingOverflow(by: dimension)
        guard count >= 0, !overflow, features.count == expected else {
            throw CraftCoreError(
                .invalidFeatures,
                "\(features.count) feature values cannot be read as \(count) rows of dimension \(dimension); pass features shaped [N][\(dimension)]")
        }
        if let bad = features.firstIndex(where: { !$0.isFinite }) {
            throw CraftCoreError(
                .invalidFeatures,
                "feature row \(bad / dimension), component \(bad % dimension) is \(features[bad]); features must be finite")
        }
        var codes = [Int32](repeating: 0, count: count * depth)
        var quantized = [Float](repeating: 0, count: count * dimension)
        var residualNorms = [Float](repeating: 0, count: count)
        var distances = [Float](repeating: 0, count: count * depth)
        if count > 0 {
            let pass = blocking.pass.resolved(entries: entries, dimension: dimension)
            let int8Table = pass == .int8 ? int8Codes.table(for: self) : nil
            // Big query blocks amortise OpenBLAS's packing of each code block; but never so big
            // that a thread is left without work. The int8 pass packs nothing: small blocks keep
            // its score tile in cache.
            let rowLimit = pass == .int8 ? min(blocking.queries, 256) : blocking.queries
            let blockRows = max(1, min(rowLimit, max(64, (count + threads - 1) / max(1, threads))))
            let blockCount = (count + blockRows - 1) / blockRows
            let workers = max(1, min(threads, blockCount))
            let codeBlock = pass == .int8
                ? max(CRAFT_INT8_PANEL, min(blocking.codes, entries) / CRAFT_INT8_PANEL * CRAFT_INT8_PANEL)
                : min(blocking.codes, entries)
            SingleThreadedBLAS.enter()
            defer { SingleThreadedBLAS.leave() }
            features.withUnsafeBufferPointer { input in
                codes.withUnsafeMutableBufferPointer { codesOut in
                    quantized.withUnsafeMutableBufferPointer { quantizedOut in
                        residualNorms.withUnsafeMutableBufferPointer { normsOut in
                            distances.withUnsafeMutableBufferPointer { distancesOut in
                                let job = SearchJob(
                                    input: input.baseAddress!, codes: codesOut.baseAddress!,
                                    quantized: quantizedOut.baseAddress!, residualNorms: normsOut.baseAddress!,
                                    distances: distancesOut.baseAddress!, int8: int8Table)
                                let run: @Sendable (Int) -> Void = { worker in
                                    var workspace = SearchWorkspace(
                                        queries: blockRows, codes: codeBlock, dimension: dimension)
                                    var block = worker
                                    while block < blockCount {
                                        let start = block * blockRows
                                        searchBlock(
                                            rows: start..<min(count, start + blockRows), job: job,
                                            workspace: &workspace, codeBlock: codeBlock)
                                        block += workers
                                    }
                                    workspace.deallocate()
                                }
                                if workers == 1 {
                                    run(0)
                                } else {
                                    DispatchQueue.concurrentPerform(iterations: workers) { run($0) }
                                }
                            }
                        }
                    }
                }
            }
        }
        if let bad = distances.firstIndex(where: { !$0.isFinite }) {
            throw CraftCoreError(
                .invalidFeatures,
                "the distance of feature row \(bad / depth) to its code overflows Float32 at level \(bad % depth); scale the features down")
        }
        return Quantization(
            count: count, depth: depth, dimension: dimension, codes: codes, quantized: quantized,
            residualNorms: residualNorms, squaredDistances: distances)
    }

    /// Quantizes one block of rows: every level, every code block, fused argmin, exact re-ranking.
    ///
    /// The float32 pass's GEMM score `s_j = ‖c_j‖² − 2 r·c_j` of every code is off its exact value by
    /// at most `B = γ·(‖c‖²_max + 2‖r‖·‖c‖_max)` with `γ = 2·(D + 2)·2⁻²⁴`, in any summation order
    /// (twice the classical `(D + 1)·u` bound of a dot product plus one rounding for the addition).
    ///
    /// The int8 pass rounds `r ≈ r̂ = s_r·q_r` and `c_j ≈ ĉ_j = s_j·q_j` and computes `r̂·ĉ_j` from an
    /// exact integer dot product. Since `r·c_j − r̂·ĉ_j = r̂·(c_j − ĉ_j) + (r − r̂)·c_j`, its score is
    /// off by at most `B + 2·(‖r̂‖·E + ‖r − r̂‖·C) + 8u·‖r̂‖·Ĉ`, with `E` the level's largest code
    /// rounding error `‖c_j − ĉ_j‖`, `C` its largest `‖c_j‖` and `Ĉ` its largest `‖ĉ_j‖` (the last
    /// term covers the float32 multiplications of the integer product; `B` the norms and the addition).
    ///
    /// Either way the exact nearest code's score is at most `2B` above the smallest score: every code
    /// within that margin is a candidate, and candidates are ranked by `Σ (r_i − c_i)²` summed in
    /// float64 in index order (lowest index on equal sums; unit codes of a cosine codebook count with
    /// norm exactly 1). Near-ties are rare, so this costs O(D) per row and level.
    private func searchBlock(
        rows: Range<Int>, job: SearchJob, workspace: inout SearchWorkspace, codeBlock: Int
    ) {
        let rowCount = rows.count
        let inputs = workspace.inputs, residual = workspace.residual, tile = workspace.tile
        let best = workspace.best, margins = workspace.margins
        let float32Best = workspace.float32Best, float32Margins = workspace.float32Margins
        let exactBest = workspace.exactBest, exactIndex = workspace.exactIndex
        let d = dimension
        let unit = Float(sign: .plus, exponent: -24, significand: 1)
        let gamma = 2 * Float(d + 2) * unit
        let cosine = metric == .cosine
        inputs.update(from: job.input + rows.lowerBound * d, count: rowCount * d)
        if metric == .cosine {
            for row in 0..<rowCount {
                let pointer = inputs + row * d
                let norm = Codebook.squaredNorm(pointer, count: d).squareRoot()
                if norm > 0 { for component in 0..<d { pointer[component] /= norm } }
            }
        }
        residual.update(from: inputs, count: rowCount * d)
        let quantizedRows = job.quantized + rows.lowerBound * d
        searchValues.withUnsafeBufferPointer { table in
            squaredNorms.withUnsafeBufferPointer { norms in
                for level in 0..<depth {
                    let levelTable = table.baseAddress! + level * entries * d
                    let maximumNorm = levelMaximumNorms[level]
                    if job.int8 != nil {
                        craft_int8_quantize_rows(
                            residual, rowCount, d, d, craft_int8_query_limit(craft_int8_search_path()),
                            workspace.int8Queries, workspace.int8Scales,
                            workspace.int8Sums, workspace.int8RoundedNorms, workspace.int8ErrorNorms)
                    }
                    for row in 0..<rowCount {
                        let remainder = residual + row * d
                        let residualNorm = Codebook.squaredNorm(remainder, count: d).squareRoot()
                        let float32Margin = 2 * gamma * (maximumNorm * maximumNorm + 2 * residualNorm * maximumNorm)
                        margins[row] = float32Margin
                        if let int8 = job.int8 {
                            // The int8 margin adds twice the rounding bound (see above) to the float32 one.
                            let bounds = int8.levels[level]
                            let rounded = workspace.int8RoundedNorms[row], error = workspace.int8ErrorNorms[row]
                            let roundingBound = 2 * (rounded * bounds.largestError + error * bounds.largestNorm)
                                + 8 * Double(unit) * rounded * bounds.largestRoundedNorm
                            margins[row] = Float((Double(float32Margin) + 2 * roundingBound) * (1 + 1e-6))
                            float32Margins[row] = float32Margin
                            float32Best[row] = .infinity
                        }
                    }
                    for row in 0..<rowCount {
                        let remainder = residual + row * d
                        best[row] = .infinity
                        // Code 0 seeds the exact ranking, so a row whose scores are all NaN still gets one.
                        exactBest[row] = NearestCode.exactSquaredDistance(
                            remainder, levelTable, count: d, unitNorm: cosine && norms[level * entries] > 0)
                        exactIndex[row] = 0
                    }
                    var codeStart = 0
                    while codeStart < entries {
                        let codeCount = min(codeBlock, entries - codeStart)
                        let levelOffset = level * entries + codeStart
                        if let int8 = job.int8 {
                            let packed = int8.levels[level]
                            craft_int8_scores(
                                workspace.int8Queries, workspace.int8Sums, workspace.int8Scales, rowCount,
                                packed.codes, packed.scales, codeStart, codeCount, d, tile, codeCount)
                        } else {
                            BLAS.sgemm(
                                transposeA: .none, transposeB: .transposed, m: rowCount, n: codeCount, k: d,
                                alpha: -2, a: residual, lda: d, b: table.baseAddress! + levelOffset * d, ldb: d,
                                beta: 0, c: tile, ldc: codeCount)
                        }
                        let blockNorms = norms.baseAddress! + levelOffset
                        for row in 0..<rowCount {
                            let scores = UnsafePointer(tile + row * codeCount)
                            let found = craft_nearest_candidates(
                                scores, blockNorms, codeCount, best + row, margins[row], workspace.candidates)
                            let remainder = residual + row * d
                            for candidate in 0..<found {
                                let j = Int(workspace.candidates[candidate])
                                let code = codeStart + j
                                if job.int8 != nil {
                                    // The int8 margin is wide: a float32 score (within the float32
                                    // pass's bound of the exact one) filters again before float64.
                                    let score = blockNorms[j] - 2 * craft_dot(remainder, levelTable + code * d, d)
                                    guard score <= float32Best[row] + float32Margins[row] else { continue }
                                    float32Best[row] = min(float32Best[row], score)
                                }
                                let distance = NearestCode.exactSquaredDistance(
                                    remainder, levelTable + code * d, count: d,
                                    unitNorm: cosine && blockNorms[j] > 0)
                                if distance < exactBest[row] {
                                    exactBest[row] = distance
                                    exactIndex[row] = code
                                }
                            }
                        }
                        codeStart += codeCount
                    }
                    for row in 0..<rowCount {
                        let global = rows.lowerBound + row
                        let code = exactIndex[row]
                        job.codes[global * depth + level] = Int32(code)
                        job.distances[global * depth + level] = Float(exactBest[row])
                        let vector = levelTable + code * d
                        let target = quantizedRows + row * d
                        let remainder = residual + row * d
                        for component in 0..<d {
                            target[component] += vector[component]
                            remainder[component] -= vector[component]
                        }
                    }
                }
            }
        }
        for row in 0..<rowCount {
            var sum: Float = 0
            let input = inputs + row * d, target = quantizedRows + row * d
            for component in 0..<d {
                let difference = input[component] - target[component]
                sum += difference * difference
            }
            job.residualNorms[rows.lowerBound + row] = sum.squareRoot()
        }
    }
}

/// Keeps OpenBLAS on one thread while any search runs (searches bring their own threads), and
/// restores the previous count when the last concurrent search ends.
private enum SingleThreadedBLAS {
    private static let state = LockedState()

    private final class LockedState: @unchecked Sendable {
        let lock = NSLock()
        var active = 0
        var saved = 1
    }

    static func enter() {
        state.lock.lock()
        defer { state.lock.unlock() }
        if state.active == 0 {
            state.saved = BLAS.threadCount
            if state.saved != 1 { BLAS.threadCount = 1 }
        }
        state.active += 1
    }

    static func leave() {
        state.lock.lock()
        defer { state.lock.unlock() }
        state.active -= 1
        if state.active == 0, state.saved != 1 { BLAS.threadCount = state.saved }
    }
}

/// Output pointers shared by the worker threads; each block writes only its own rows.
private struct SearchJob: @unchecked Sendable {
    let input: UnsafePointer<Float>
    let codes: UnsafeMutablePointer<Int32>
    let quantized: UnsafeMutablePointer<Float>
    let residualNorms: UnsafeMutablePointer<Float>
    let distances: UnsafeMutablePointer<Float>
    /// The int8-rounded codes when the int8 pass runs.
    let int8: Int8CodeTable?
}

/// One worker's scratch memory: the score tile and the block's residuals.
private struct SearchWorkspace {
    let inputs: UnsafeMutablePointer<Float>
    let residual: UnsafeMutablePointer<Float>
    let tile: UnsafeMutablePointer<Float>
    /// The smallest GEMM score so far, per row.
    let best: UnsafeMutablePointer<Float>
    /// The candidate margin `2B` of the row (see `searchBlock`).
    let margins: UnsafeMutablePointer<Float>
    /// The int8 pass's second filter: the smallest float32 score of a candidate so far, and the
    /// float32 pass's margin.
    let float32Best: UnsafeMutablePointer<Float>
    let float32Margins: UnsafeMutablePointer<Float>
    /// The candidates of one row of a score tile.
    let candidates: UnsafeMutablePointer<UInt32>
    /// The best float64 distance among the candidates so far, and its code.
    let exactBest: UnsafeMutablePointer<Double>
    let exactIndex: UnsafeMutablePointer<Int>
    /// The int8 pass's rounded rows (`[queries][padded dimension]`), their scales, sums and norms.
    let int8Queries: UnsafeMutablePointer<Int8>
    let int8Scales: UnsafeMutablePointer<Float>
    let int8Sums: UnsafeMutablePointer<Int32>
    let int8RoundedNorms: UnsafeMutablePointer<Double>
    let int8ErrorNorms: UnsafeMutablePointer<Double>

    init(queries: Int, codes: Int, dimension: Int) {
        inputs = .allocate(capacity: queries * dimension)
        residual = .allocate(capacity: queries * dimension)
        tile = .allocate(capacity: queries * codes)
        best = .allocate(capacity: queries)
        margins = .allocate(capacity: queries)
        float32Best = .allocate(capacity: queries)
        float32Margins = .allocate(capacity: queries)
        candidates = .allocate(capacity: codes)
        exactBest = .allocate(capacity: queries)
        exactIndex = .allocate(capacity: queries)
        int8Queries = .allocate(capacity: queries * craft_int8_padded_dimension(dimension))
        int8Scales = .allocate(capacity: queries)
        int8Sums = .allocate(capacity: queries)
        int8RoundedNorms = .allocate(capacity: queries)
        int8ErrorNorms = .allocate(capacity: queries)
    }

    func deallocate() {
        inputs.deallocate()
        residual.deallocate()
        tile.deallocate()
        best.deallocate()
        margins.deallocate()
        float32Best.deallocate()
        float32Margins.deallocate()
        candidates.deallocate()
        exactBest.deallocate()
        exactIndex.deallocate()
        int8Queries.deallocate()
        int8Scales.deallocate()
        int8Sums.deallocate()
        int8RoundedNorms.deallocate()
        int8ErrorNorms.deallocate()
    }
}

/// The int8-rounded codes of every level, packed for ``craft_int8_scores``, with the bounds of their
/// rounding errors (see `searchBlock`).
final class Int8CodeTable: @unchecked Sendable {
    struct Level {
        /// Packed codes (`craft_int8_pack_codes`), panels of 64.
        let codes: UnsafeMutablePointer<UInt8>
        /// The scale of every packed code (padding codes 0).
        let scales: UnsafeMutablePointer<Float>
        /// The largest `‖c_j − ĉ_j‖`, `‖c_j‖` and `‖ĉ_j‖` of the level, rounded up.
        let largestError: Double
        let largestNorm: Double
        let largestRoundedNorm: Double
    }

    let levels: [Level]

    init(values: [Float], entries: Int, dimension: Int, depth: Int) {
        let padded = craft_int8_padded_dimension(dimension), paddedEntries = craft_int8_padded_entries(entries)
        let rounded = UnsafeMutablePointer<Int8>.allocate(capacity: entries * padded)
        let sums = UnsafeMutablePointer<Int32>.allocate(capacity: entries)
        let roundedNorms = UnsafeMutablePointer<Double>.allocate(capacity: entries)
        let errorNorms = UnsafeMutablePointer<Double>.allocate(capacity: entries)
        defer {
            rounded.deallocate()
            sums.deallocate()
            roundedNorms.deallocate()
            errorNorms.deallocate()
        }
        levels = values.withUnsafeBufferPointer { buffer in
            (0..<depth).map { level in
                let source = buffer.baseAddress! + level * entries * dimension
                let scales = UnsafeMutablePointer<Float>.allocate(capacity: paddedEntries)
                scales.initialize(repeating: 0, count: paddedEntries)
                craft_int8_quantize_rows(
                    source, entries, dimension, dimension, 127, rounded, scales, sums, roundedNorms, errorNorms)
                let codes = UnsafeMutablePointer<UInt8>.allocate(capacity: paddedEntries * padded)
                craft_int8_pack_codes(rounded, entries, dimension, codes)
                var largestNorm = 0.0
                for code in 0..<entries {
                    var sum = 0.0
                    for component in 0..<dimension {
                        let value = Double(source[code * dimension + component])
                        sum += value * value
                    }
                    largestNorm = max(largestNorm, sum.squareRoot())
                }
                return Level(
                    codes: codes, scales: scales,
                    largestError: (0..<entries).map { errorNorms[$0] }.max()!,
                    largestNorm: largestNorm * (1 + 1e-9),
                    largestRoundedNorm: (0..<entries).map { roundedNorms[$0] }.max()!)
            }
        }
    }

    deinit {
        for level in levels {
            level.codes.deallocate()
            level.scales.deallocate()
        }
    }
}

/// Makes a codebook's ``Int8CodeTable`` once, on the first int8 search, for every copy of the
/// codebook (the cache is a shared reference).
final class Int8CodeCache: @unchecked Sendable {
    private let lock = NSLock()
    private var table: Int8CodeTable?

    func table(for codebook: Codebook) -> Int8CodeTable {
        lock.lock()
        defer { lock.unlock() }
        if let table { return table }
        let made = Int8CodeTable(
            values: codebook.searchValues, entries: codebook.entries, dimension: codebook.dimension,
            depth: codebook.depth)
        table = made
        return made
    }
}

/// The float64 distance candidates are ranked by.
enum NearestCode {
    /// The distance candidates are ranked by, summed in float64 in index order: `Σ (a_i − b_i)²`, or
    /// for a unit code of a cosine codebook `‖a‖² − 2 a·b + 1` (its exact norm, not the rounded
    /// one of the normalised float32 vector, so that cosine ties stay ties).
    @inline(__always)
    static func exactSquaredDistance(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, unitNorm: Bool = false
    ) -> Double {
        var sum: Double = 0
        if unitNorm {
            var product: Double = 0
            for index in 0..<count {
                let value = Double(a[index])
                sum += value * value
                product += value * Double(b[index])
            }
            return sum - 2 * product + 1
        }
        for index in 0..<count {
            let difference = Double(a[index]) - Double(b[index])
            sum += difference * difference
        }
        return sum
    }
}
