import CKernels
import Foundation
import Testing
@testable import CraftCore

/// The int8 first pass of the nearest-code search: its kernel (both paths, against arithmetic done
/// here) and its exactness against a float64 brute force where int8 rounding cannot tell codes apart.
@Suite struct Int8SearchTests {
    /// Rounds `rows` vectors with craft_int8_quantize_rows.
    private struct Rounded {
        var q: [Int8], scales: [Float], sums: [Int32], roundedNorms: [Double], errorNorms: [Double]

        init(_ x: [Float], rows: Int, dimension: Int, limit: Int32 = 127) {
            let padded = craft_int8_padded_dimension(dimension)
            q = [Int8](repeating: 0, count: rows * padded)
            scales = [Float](repeating: 0, count: craft_int8_padded_entries(rows))
            sums = [Int32](repeating: 0, count: rows)
            roundedNorms = [Double](repeating: 0, count: rows)
            errorNorms = [Double](repeating: 0, count: rows)
            craft_int8_quantize_rows(x, rows, dimension, dimension, limit, &q, &scales, &sums, &roundedNorms, &errorNorms)
        }
    }

    @Test("rounding reports its scale, sum and norm bounds; the VNNI, AVX2 and portable scores are the same bits and the formula")
    func kernelPathsAgreeWithTheFormula() throws {
        let dimension = 37, entries = 150, rows = 7  // padding in every direction: D to 40, codes to 192
        let padded = craft_int8_padded_dimension(dimension)
        var random = TestRandom(seed: 5)
        var codes = random.values(entries * dimension).map { $0 * 3 }
        codes.replaceSubrange(0..<dimension, with: [Float](repeating: 0, count: dimension))  // a zero code
        let queries = random.values(rows * dimension).map { $0 * 2 }
        let c = Rounded(codes, rows: entries, dimension: dimension)
        // Queries within ±63, as the AVX2 path takes them (the others take up to ±127).
        let r = Rounded(queries, rows: rows, dimension: dimension, limit: 63)
        for (vectors, rounded, count) in [(codes, c, entries), (queries, r, rows)] {
            for row in 0..<count {
                let values = (0..<padded).map { Int(rounded.q[row * padded + $0]) }
                let limit = count == rows ? 63 : 127
                #expect(values.allSatisfy { (-limit...limit).contains($0) })
                #expect(values.contains { abs($0) == limit } || values.allSatisfy { $0 == 0 }, "the largest component reaches the limit")
                #expect(values[dimension...].allSatisfy { $0 == 0 })
                #expect(Int32(values.reduce(0, +)) == rounded.sums[row])
                var norm = 0.0, error = 0.0
                for i in 0..<dimension {
                    let reconstructed = Double(rounded.scales[row]) * Double(values[i])
                    norm += reconstructed * reconstructed
                    error += (Double(vectors[row * dimension + i]) - reconstructed) * (Double(vectors[row * dimension + i]) - reconstructed)
                }
                #expect(rounded.roundedNorms[row] >= norm.squareRoot() && rounded.errorNorms[row] >= error.squareRoot())
                #expect(rounded.roundedNorms[row] <= norm.squareRoot() * (1 + 1e-6) + 1e-30)
            }
        }
        #expect(c.scales[0] == 0 && c.errorNorms[0] == 0)

        var packed = [UInt8](repeating: 0, count: craft_int8_padded_entries(entries) * padded)
        craft_int8_pack_codes(c.q, entries, dimension, &packed)
        for (begin, count) in [(0, entries), (64, entries - 64), (128, 5), (0, 1)] {
            var portable = [Float](repeating: .nan, count: rows * count)
            craft_int8_scores_portable(r.q, r.sums, r.scales, rows, packed, c.scales, begin, count, dimension, &portable, count)
            // Every SIMD path this CPU has writes the portable path's bits.
            for path in Int32(CRAFT_PATH_AVX2)...craft_int8_search_path() where craft_int8_search_path() >= Int32(CRAFT_PATH_AVX2) {
                var fast = [Float](repeating: .nan, count: rows * count)
                craft_int8_scores_on(path, r.q, r.sums, r.scales, rows, packed, c.scales, begin, count, dimension, &fast, count)
                #expect(fast.map(\.bitPattern) == portable.map(\.bitPattern), "codes \(begin)..<\(begin + count) on path \(path)")
            }
            for row in 0..<rows {
                for j in 0..<count {
                    var dot: Int32 = 0
                    for i in 0..<padded { dot += Int32(r.q[row * padded + i]) * Int32(c.q[(begin + j) * padded + i]) }
                    let expected = Float(dot) * (-2 * r.scales[row]) * c.scales[begin + j]
                    #expect(portable[row * count + j].bitPattern == expected.bitPattern)
                }
            }
        }
    }

    /// Codes that int8 rounding cannot tell apart (they differ by far less than a rounding step),
    /// duplicates, and queries placed on and between them: the int8 pass sees ties or wrong orders in
    /// nearly every row, and still returns the float64 brute force's code (lowest index on ties) and
    /// distance, for L2 and cosine, at one and two levels, whatever the thread count.
    @Test("the int8 pass returns exactly the float64 nearest code where int8 rounding cannot separate the codes")
    func int8PassIsExactOnCodesItCannotSeparate() throws {
        let dimension = 64, entries = 320
        var random = TestRandom(seed: 77)
        let centres = (0..<8).map { _ in random.values(dimension).map { $0 * 2 } }
        var level0: [Float] = []
        for code in 0..<entries {
            // 40 codes around each of 8 centres, 1e-4 apart (an int8 step is ~1.6e-2); codes 2k and 2k+1 of
            // the first centre coincide.
            let centre = centres[code % 8]
            let step = code < 80 ? Float((code / 16) * 2) : Float(code / 8)
            level0 += centre.enumerated().map { $0.element + ($0.offset == code % dimension ? step * 1e-4 : 0) }
        }
        let level1 = random.values(entries * dimension).map { $0 * 0.05 }
        let count = 200
        var queries: [Float] = []
        for row in 0..<count {
            let anchor = (row * 37) % entries
            queries += (0..<dimension).map { level0[anchor * dimension + $0] + (row % 4 == 0 ? 0 : random.next() * 2e-4) }
        }
        for (metric, depth) in [(CodebookMetric.l2, 1), (.l2, 2), (.cosine, 1)] {
            let values = depth == 1 ? level0 : level0 + level1
            let codebook = try Codebook(values: values, entries: entries, dimension: dimension, depth: depth, metric: metric)
            let expected = try codebook.quantize(queries, count: count, blocking: SearchBlocking(pass: .float32))
            let reference = bruteForce(codebook, queries: queries, count: count)
            #expect(expected.codes == reference.codes, "\(metric), depth \(depth): float32 pass against float64")
            #expect(expected.squaredDistances == reference.distances, "\(metric), depth \(depth)")
            for threads in [1, 2, 3] {
                for blocking in [SearchBlocking(pass: .int8), SearchBlocking(queries: 3, codes: 100, pass: .int8), SearchBlocking(pass: .automatic)] {
                    let result = try codebook.quantize(queries, count: count, threads: threads, blocking: blocking)
                    #expect(result.codes == reference.codes, "\(metric), depth \(depth), \(blocking), \(threads) threads")
                    #expect(result.squaredDistances == reference.distances)
                    #expect(result.quantized == expected.quantized && result.residualNorms == expected.residualNorms)
                }
            }
        }
    }

    @Test("candidate selection: the AVX-512 and portable paths agree, NaN skipped, the best lowered only when it drops")
    func candidateSelectionPathsAgree() {
        var random = TestRandom(seed: 9)
        for count in [1, 3, 15, 16, 17, 64, 100, 512] {
            var scores = random.values(count), norms = random.values(count).map { $0 + 1 }
            if count > 5 { scores[3] = .nan; norms[count - 1] = .nan }
            for (best, margin) in [(Float.infinity, Float(0.1)), (0.5, 0.05), (-10, 0.2), (0.2, 0)] {
                var fastBest = best, portableBest = best
                var fast = [UInt32](repeating: 0, count: count), portable = fast
                let fastFound = craft_nearest_candidates(scores, norms, count, &fastBest, margin, &fast)
                let portableFound = craft_nearest_candidates_portable(scores, norms, count, &portableBest, margin, &portable)
                let sums = zip(scores, norms).map { $0 + $1 }
                let minimum = sums.filter { !$0.isNaN }.min() ?? .infinity
                let threshold = min(best, minimum) + margin
                let expected = minimum <= threshold
                    ? sums.indices.filter { sums[$0] <= threshold }.map(UInt32.init) : []
                #expect(Array(fast[..<fastFound]) == expected && Array(portable[..<portableFound]) == expected, "count \(count), best \(best)")
                #expect(fastBest == (expected.isEmpty ? best : min(best, minimum)) && portableBest == fastBest)
            }
        }
    }

    @Test("the automatic pass is int8 only with a SIMD int8 kernel and for codebooks large enough")
    func automaticPassFollowsTheCPUAndTheShape() {
        #expect(SearchPass.automatic.resolved(entries: 8192, dimension: 256) == (SearchPass.int8IsFast ? .int8 : .float32))
        #expect(SearchPass.automatic.resolved(entries: 128, dimension: 256) == .float32)
        #expect(SearchPass.automatic.resolved(entries: 8192, dimension: 8) == .float32)
        #expect(SearchPass.int8.resolved(entries: 2, dimension: 3) == .int8)
        #expect(SearchPass.int8.resolved(entries: 2, dimension: 70_000) == .float32)
        let names = [Int32(CRAFT_PATH_PORTABLE): "portable", Int32(CRAFT_PATH_AVX2): "avx2", Int32(CRAFT_PATH_AVX512): "avx512-vnni"]
        #expect(SearchPass.int8KernelName == names[craft_int8_search_path()])
        #expect(SearchPass.int8IsFast == (craft_int8_search_path() != Int32(CRAFT_PATH_PORTABLE)))
    }

    /// Level by level in float64 (normalised inputs for cosine, residuals updated in float32 as the
    /// search does); lowest index on ties.
    private func bruteForce(_ codebook: Codebook, queries: [Float], count: Int) -> (codes: [Int32], distances: [Float]) {
        let d = codebook.dimension
        var codes: [Int32] = [], distances: [Float] = []
        for row in 0..<count {
            var residual = Array(queries[(row * d)..<((row + 1) * d)])
            if codebook.metric == .cosine {
                let norm = residual.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
                residual = residual.map { $0 / norm }
            }
            for level in 0..<codebook.depth {
                var bestCode = 0, bestDistance = Double.infinity
                for code in 0..<codebook.entries {
                    let vector = try! codebook.vector(level: level, code: code)
                    var sum = 0.0
                    if codebook.metric == .cosine {
                        var product = 0.0
                        for i in 0..<d {
                            sum += Double(residual[i]) * Double(residual[i])
                            product += Double(residual[i]) * Double(vector[i])
                        }
                        sum = sum - 2 * product + 1
                    } else {
                        for i in 0..<d { sum += (Double(residual[i]) - Double(vector[i])) * (Double(residual[i]) - Double(vector[i])) }
                    }
                    if sum < bestDistance { bestDistance = sum; bestCode = code }
                }
                codes.append(Int32(bestCode))
                distances.append(Float(bestDistance))
                let vector = try! codebook.vector(level: level, code: bestCode)
                for i in 0..<d { residual[i] -= vector[i] }
            }
        }
        return (codes, distances)
    }
}
