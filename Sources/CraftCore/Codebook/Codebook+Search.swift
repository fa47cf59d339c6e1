// Exact nearest-code search: blocked GEMM (OpenBLAS `cblas_sgemm`) with a fused SIMD argmin, the
// same decomposition faiss uses in `exhaustive_L2sqr_blas` (scores ‖c‖² − 2x·c), blocked so the N×K
// score matrix is never materialised. The GEMM pass only selects candidates: every code whose score is
// within a proven rounding bound of the best is re-ranked by its distance computed directly in float64,
// so the chosen code and its distance do not depend on the BLAS kernels, block shapes or thread count.
import Dispatch
import Foundation
import TensorCore

/// Block sizes of the nearest-code search.
///
/// A query block of `queries` rows is multiplied with a code block of `codes` rows into a
/// `queries × codes` score tile that stays in cache while its argmin is taken (the default 1024 × 512
/// tile is 2 MB; large query blocks amortise OpenBLAS's packing of each code block). Query blocks
/// shrink to `⌈N / threads⌉` rows (at least 64) so every thread gets work. The results (codes and
/// distances) do not depend on the block sizes or the thread count: they are tuning only.
public struct SearchBlocking: Sendable, Equatable {
    /// Rows of features per block (the unit of work a thread takes).
    public var queries: Int
    /// Code vectors per block.
    public var codes: Int

    /// Creates block sizes; values below 1 are treated as 1.
    public init(queries: Int = 1024, codes: Int = 512) {
        self.queries = max(1, queries)
        self.codes = max(1, codes)
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
            // Big query blocks amortise OpenBLAS's packing of each code block; but never so big
            // that a thread is left without work.
            let blockRows = max(1, min(blocking.queries, max(64, (count + threads - 1) / max(1, threads))))
            let blockCount = (count + blockRows - 1) / blockRows
            let workers = max(1, min(threads, blockCount))
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
                                    distances: distancesOut.baseAddress!)
                                let run: @Sendable (Int) -> Void = { worker in
                                    var workspace = SearchWorkspace(
                                        queries: blockRows, codes: min(blocking.codes, entries), dimension: dimension)
                                    var block = worker
                                    while block < blockCount {
                                        let start = block * blockRows
                                        searchBlock(
                                            rows: start..<min(count, start + blockRows), job: job,
                                            workspace: &workspace, codeBlock: min(blocking.codes, entries))
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
    /// The GEMM score `s_j = ‖c_j‖² − 2 r·c_j` of every code is off its exact value by at most
    /// `B = γ·(‖c‖²_max + 2‖r‖·‖c‖_max)` with `γ = 2·(D + 2)·2⁻²⁴`, in any summation order (twice the
    /// classical `(D + 1)·u` bound of a dot product plus one rounding for the addition). So the exact
    /// nearest code's score is at most `2B` above the smallest score: every code within that margin
    /// is a candidate, and candidates are ranked by `Σ (r_i − c_i)²` summed in float64 in index order
    /// (lowest index on equal sums; unit codes of a cosine codebook count with norm exactly 1). Near-ties are rare, so this costs O(D) per row and level.
    private func searchBlock(
        rows: Range<Int>, job: SearchJob, workspace: inout SearchWorkspace, codeBlock: Int
    ) {
        let rowCount = rows.count
        let inputs = workspace.inputs, residual = workspace.residual, tile = workspace.tile
        let best = workspace.best, margins = workspace.margins
        let exactBest = workspace.exactBest, exactIndex = workspace.exactIndex
        let d = dimension
        let gamma = 2 * Float(d + 2) * Float(sign: .plus, exponent: -24, significand: 1)
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
                    for row in 0..<rowCount {
                        let remainder = residual + row * d
                        let residualNorm = Codebook.squaredNorm(remainder, count: d).squareRoot()
                        best[row] = .infinity
                        margins[row] = 2 * gamma * (maximumNorm * maximumNorm + 2 * residualNorm * maximumNorm)
                        // Code 0 seeds the exact ranking, so a row whose scores are all NaN still gets one.
                        exactBest[row] = NearestCode.exactSquaredDistance(
                            remainder, levelTable, count: d, unitNorm: cosine && norms[level * entries] > 0)
                        exactIndex[row] = 0
                    }
                    var codeStart = 0
                    while codeStart < entries {
                        let codeCount = min(codeBlock, entries - codeStart)
                        let levelOffset = level * entries + codeStart
                        BLAS.sgemm(
                            transposeA: .none, transposeB: .transposed, m: rowCount, n: codeCount, k: d,
                            alpha: -2, a: residual, lda: d, b: table.baseAddress! + levelOffset * d, ldb: d,
                            beta: 0, c: tile, ldc: codeCount)
                        let blockNorms = norms.baseAddress! + levelOffset
                        for row in 0..<rowCount {
                            let scores = UnsafePointer(tile + row * codeCount)
                            let minimum = NearestCode.minimum(scores, blockNorms, count: codeCount)
                            let threshold = min(best[row], minimum) + margins[row]
                            guard minimum <= threshold else { continue }
                            best[row] = min(best[row], minimum)
                            let remainder = residual + row * d
                            for j in 0..<codeCount where scores[j] + blockNorms[j] <= threshold {
                                let code = codeStart + j
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
    /// The best float64 distance among the candidates so far, and its code.
    let exactBest: UnsafeMutablePointer<Double>
    let exactIndex: UnsafeMutablePointer<Int>

    init(queries: Int, codes: Int, dimension: Int) {
        inputs = .allocate(capacity: queries * dimension)
        residual = .allocate(capacity: queries * dimension)
        tile = .allocate(capacity: queries * codes)
        best = .allocate(capacity: queries)
        margins = .allocate(capacity: queries)
        exactBest = .allocate(capacity: queries)
        exactIndex = .allocate(capacity: queries)
    }

    func deallocate() {
        inputs.deallocate()
        residual.deallocate()
        tile.deallocate()
        best.deallocate()
        margins.deallocate()
        exactBest.deallocate()
        exactIndex.deallocate()
    }
}

/// The argmin over one row of a score tile: `scores[j] + norms[j]` for `j < count`.
enum NearestCode {
    /// The minimum of `scores[j] + norms[j]` (+infinity when every value is NaN).
    @inline(__always)
    static func minimum(_ scores: UnsafePointer<Float>, _ norms: UnsafePointer<Float>, count: Int) -> Float {
        let rawScores = UnsafeRawPointer(scores), rawNorms = UnsafeRawPointer(norms)
        var lanes0 = SIMD16<Float>(repeating: .infinity), lanes1 = lanes0
        var index = 0
        let stride = MemoryLayout<SIMD16<Float>>.size
        while index + 32 <= count {
            let offset = index * 4
            let a = rawScores.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                + rawNorms.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
            let b = rawScores.loadUnaligned(fromByteOffset: offset + stride, as: SIMD16<Float>.self)
                + rawNorms.loadUnaligned(fromByteOffset: offset + stride, as: SIMD16<Float>.self)
            // `replace(with:where:)` compiles to a compare and a blend; the stdlib's `pointwiseMin` is
            // IEEE `minimum` lane by lane and measured ~75× slower here.
            lanes0.replace(with: a, where: a .< lanes0)
            lanes1.replace(with: b, where: b .< lanes1)
            index += 32
        }
        lanes0.replace(with: lanes1, where: lanes1 .< lanes0)
        var result = lanes0.min()
        while index < count {
            let value = scores[index] + norms[index]
            if value < result { result = value }
            index += 1
        }
        return result
    }

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
