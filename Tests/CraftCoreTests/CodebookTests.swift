import Foundation
import Testing
import TestSupport
@testable import CraftCore
import TensorCore

/// Deterministic pseudo-random values for tests (SplitMix64, uniform in -1..<1).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) / Float(1 << 23) - 1
    }
    mutating func values(_ count: Int) -> [Float] { (0..<count).map { _ in next() } }
}

/// Brute force in Double: per row the best index (lowest on ties) and the gap to the runner-up.
func bruteForceNearest(_ codebook: [Float], entries: Int, dimension: Int, queries: [Float]) -> [(Int, Double)] {
    let count = queries.count / dimension
    return (0..<count).map { row in
        var distances: [Double] = []
        for code in 0..<entries {
            var sum = 0.0
            for component in 0..<dimension {
                let difference = Double(queries[row * dimension + component]) - Double(codebook[code * dimension + component])
                sum += difference * difference
            }
            distances.append(sum)
        }
        let sorted = distances.enumerated().sorted { ($0.element, $0.offset) < ($1.element, $1.offset) }
        return (sorted[0].offset, sorted.count > 1 ? sorted[1].element - sorted[0].element : .infinity)
    }
}

@Suite struct CodebookTests {
    @Test func rejectsNaNAndInfinity() {
        for bad in [Float.nan, .infinity, -.infinity] {
            #expect(throws: CraftCoreError.self) {
                try Codebook(values: [0, 1, bad, 3], entries: 2, dimension: 2, metric: .l2)
            }
        }
        do {
            _ = try Codebook(values: [0, 1, .nan, 3], entries: 2, dimension: 2, metric: .l2)
        } catch let error as CraftCoreError {
            #expect(error.code == .invalidCodebook)
            #expect(error.message.contains("entry 1, component 0"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func rejectsInconsistentSizes() {
        #expect(throws: CraftCoreError.self) { try Codebook(values: [1, 2, 3], entries: 2, dimension: 2, metric: .l2) }
        #expect(throws: CraftCoreError.self) { try Codebook(values: [], entries: 0, dimension: 2, metric: .l2) }
        #expect(throws: CraftCoreError.self) { try Codebook(values: [1, 2], entries: 1, dimension: 2, depth: 0, metric: .l2) }
    }

    @Test func equidistantCodesResolveToTheLowestIndex() throws {
        // Codes 1 and 3 are both at distance 1 from the query (0, 0); code 0 and 2 are farther.
        let codebook = try Codebook(values: [5, 5, 0, 1, 3, 3, 1, 0], entries: 4, dimension: 2, metric: .l2)
        let result = try codebook.quantize([0, 0, 0, 0], count: 2)
        #expect(result.codes == [1, 1])
        // The same tie split across code blocks (block of 1 and 3 codes) and with many rows.
        let queries = [Float](repeating: 0, count: 2 * 40)
        for blocking in [SearchBlocking(queries: 3, codes: 1), SearchBlocking(queries: 7, codes: 3)] {
            let blocked = try codebook.quantize(queries, count: 40, threads: 2, blocking: blocking)
            #expect(blocked.codes == [Int32](repeating: 1, count: 40))
        }
        // A tie of 40 identical codes inside one SIMD run and its tail: index 0 wins.
        let identical = try Codebook(values: [Float](repeating: 0.5, count: 40 * 2), entries: 40, dimension: 2, metric: .l2)
        #expect(try identical.quantize([1, 1], count: 1).codes == [0])
    }

    @Test func tieAfterTheFirstSIMDChunkResolvesToTheLowestIndex() throws {
        // Codes 20 and 37 are the two nearest, at the same distance; all others are far away.
        var values = [Float](repeating: 10, count: 50)
        values[20] = 1
        values[37] = -1
        let codebook = try Codebook(values: values, entries: 50, dimension: 1, metric: .l2)
        #expect(try codebook.quantize([0], count: 1).codes == [20])
    }

    @Test func matchesBruteForceForEveryBlockingAndThreadCount() throws {
        var random = TestRandom(seed: 1)
        let entries = 77, dimension = 13, count = 61
        let codebook = try Codebook(values: random.values(entries * dimension), entries: entries, dimension: dimension, metric: .l2)
        let queries = random.values(count * dimension)
        let expected = bruteForceNearest(codebook.values, entries: entries, dimension: dimension, queries: queries)
        let reference = try codebook.quantize(queries, count: count)
        for (row, (index, gap)) in expected.enumerated() where gap > 1e-4 {
            #expect(Int(reference.codes[row]) == index, "row \(row)")
        }
        for threads in [1, 2, 3] {
            for blocking in [SearchBlocking(queries: 1, codes: 1), SearchBlocking(queries: 8, codes: 16), SearchBlocking(queries: 1000, codes: 5000)] {
                let result = try codebook.quantize(queries, count: count, threads: threads, blocking: blocking)
                #expect(result.codes == reference.codes, "threads \(threads), blocking \(blocking)")
                #expect(result.quantized == reference.quantized)
            }
        }
    }

    @Test func reportsDistancesQuantizedVectorsAndResidualNorms() throws {
        let codebook = try Codebook(values: [0, 0, 2, 0, 0, 3], entries: 3, dimension: 2, metric: .l2)
        let result = try codebook.quantize([1.5, 0.5, 0, 2], count: 2)
        #expect(result.codes == [1, 2])
        #expect(result.quantized == [2, 0, 0, 3])
        #expect(approximatelyEqual(result.squaredDistances, [0.5, 1]).ok)
        #expect(approximatelyEqual(result.residualNorms, [Float(0.5).squareRoot(), 1]).ok)
    }

    @Test func embedSumsLevelsAndRejectsOutOfRangeCodes() throws {
        // depth 2, K 2, D 2
        let codebook = try Codebook(values: [1, 0, 0, 1, 10, 10, 20, 20], entries: 2, dimension: 2, depth: 2, metric: .l2)
        #expect(try codebook.embed([0, 1, 1, 0]) == [21, 20, 10, 11])
        #expect(throws: CraftCoreError.self) { try codebook.embed([0, 2]) }
        #expect(throws: CraftCoreError.self) { try codebook.embed([-1, 0]) }
        #expect(throws: CraftCoreError.self) { try codebook.embed([0]) }
        let result = try codebook.quantize([1.2, 0.1, 21, 19], count: 2)
        #expect(try codebook.embed(result.codes) == result.quantized)
    }

    @Test func residualLevelsQuantizeWhatEarlierLevelsLeft() throws {
        // Level 0 picks (4, 0); the residual (0.5, 1) is nearest to level-1 code (0, 1).
        let codebook = try Codebook(values: [4, 0, 0, 4, 1, 0, 0, 1], entries: 2, dimension: 2, depth: 2, metric: .l2)
        let result = try codebook.quantize([4.5, 1], count: 1)
        #expect(result.codes == [0, 1])
        #expect(result.quantized == [4, 1])
        #expect(approximatelyEqual(result.squaredDistances, [1.25, 0.25]).ok)
        #expect(approximatelyEqual(result.residualNorms, [0.5]).ok)
    }

    @Test func cosineNormalisesBothSidesAndTreatsZeroAsATie() throws {
        // Code 0 is long but off-direction; code 1 is short and aligned with the query.
        let codebook = try Codebook(values: [10, 1, 0.1, 0, 0, -3], entries: 3, dimension: 2, metric: .cosine)
        let result = try codebook.quantize([7, 0, 0, 0], count: 2)
        #expect(result.codes == [1, 0])  // a zero feature ties with every code: code 0
        #expect(approximatelyEqual(Array(result.quantized[0..<2]), [1, 0]).ok)
        #expect(approximatelyEqual(result.residualNorms, [0, 1], absolute: 1e-6).ok)
        #expect(try codebook.embed([2]) == [0, -1])
        let l2 = try Codebook(values: codebook.values, entries: 3, dimension: 2, metric: .l2)
        #expect(try l2.quantize([7, 0], count: 1).codes == [0])
        #expect(l2.hash != codebook.hash)
    }

    @Test func rejectsMalformedFeatures() throws {
        let codebook = try Codebook(values: [0, 0, 1, 1], entries: 2, dimension: 2, metric: .l2)
        #expect(throws: CraftCoreError.self) { try codebook.quantize([1, 2, 3], count: 2) }
        #expect(throws: CraftCoreError.self) { try codebook.quantize([1, .nan], count: 1) }
        #expect(throws: CraftCoreError.self) { try codebook.quantize([3e38, -3e38], count: 1) }
        let empty = try codebook.quantize([], count: 0)
        #expect(empty.codes.isEmpty && empty.quantized.isEmpty)
    }
}

@Suite struct CodebookThreadingTests {
    @Test func concurrentSearchesWithDifferentThreadCountsAgree() async throws {
        var random = TestRandom(seed: 9)
        let codebook = try Codebook(values: random.values(40 * 8), entries: 40, dimension: 8, metric: .l2)
        let queries = random.values(100 * 8)
        let expected = try codebook.quantize(queries, count: 100)
        let results = try await withThrowingTaskGroup(of: Quantization.self) { group in
            for threads in 1...4 {
                group.addTask { try codebook.quantize(queries, count: 100, threads: threads, blocking: SearchBlocking(queries: 7, codes: 9)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 4)
        for result in results { #expect(result == expected) }
        // BLAS.threadCount is process-global and other suites run concurrently, so it is not asserted here.
    }

    /// Adversarial near-ties: codes a few float32 ulps apart, exact duplicates, and queries between
    /// them, at two residual levels. Whatever the first pass, block shapes and thread counts (and so
    /// whatever the BLAS kernels' summation order), the codes and distances are exactly those of a float64 brute
    /// force with the lowest index on ties, the same summation the search promises.
    @Test func nearTiesAreResolvedExactlyForEveryBlockingAndThreadCount() throws {
        let dimension = 24, entries = 61
        var random = TestRandom(seed: 21)
        let base = random.values(dimension).map { $0 * 4 + 8 }
        let ulp = Float(sign: .plus, exponent: -20, significand: 1)  // one ulp of values in 8..<16
        var level0: [Float] = []
        for code in 0..<entries {
            var vector = base
            // Codes 2k and 2k+1 coincide; the others differ by a few ulps in two components.
            let pair = code / 2
            let step = Float(pair % 7) - 3
            vector[pair % dimension] += step * ulp
            vector[(pair * 5 + 1) % dimension] -= step * ulp
            level0 += vector
        }
        let level1 = random.values(entries * dimension).map { $0 * 1e-3 }
        let codebook = try Codebook(values: level0 + level1, entries: entries, dimension: dimension, depth: 2, metric: .l2)
        let count = 150
        var queries: [Float] = []
        for row in 0..<count {
            let anchor = row % entries
            for component in 0..<dimension {
                queries.append(level0[anchor * dimension + component] + Float(row % 3 - 1) * ulp / 2
                    + random.next() * 1e-3)
            }
        }

        // float64 brute force, level by level, residuals updated in float32 as the search does.
        var expectedCodes: [Int32] = [], expectedDistances: [Float] = []
        for row in 0..<count {
            var residual = Array(queries[(row * dimension)..<((row + 1) * dimension)])
            for level in 0..<2 {
                var bestCode = 0, bestDistance = Double.infinity
                for code in 0..<entries {
                    let offset = (level * entries + code) * dimension
                    var sum = 0.0
                    for component in 0..<dimension {
                        let difference = Double(residual[component]) - Double(codebook.values[offset + component])
                        sum += difference * difference
                    }
                    if sum < bestDistance { bestDistance = sum; bestCode = code }
                }
                expectedCodes.append(Int32(bestCode))
                expectedDistances.append(Float(bestDistance))
                let offset = (level * entries + bestCode) * dimension
                for component in 0..<dimension { residual[component] -= codebook.values[offset + component] }
            }
        }
        #expect(expectedCodes.enumerated().contains { $0.offset % 2 == 0 && $0.element % 2 == 1 } == false,
                "duplicates must resolve to the even (lower) index")

        for pass in SearchPass.allCases {
            for shape in [SearchBlocking(), SearchBlocking(queries: 1, codes: 1), SearchBlocking(queries: 5, codes: 3),
                          SearchBlocking(queries: 64, codes: 7), SearchBlocking(queries: 13, codes: 60)] {
                let blocking = SearchBlocking(queries: shape.queries, codes: shape.codes, pass: pass)
                for threads in 1...3 {
                    let result = try codebook.quantize(queries, count: count, threads: threads, blocking: blocking)
                    #expect(result.codes == expectedCodes, "blocking \(blocking), \(threads) threads")
                    #expect(result.squaredDistances == expectedDistances, "blocking \(blocking), \(threads) threads")
                }
            }
        }
    }
}
