import CKernels
import Testing
@testable import TensorCore

/// Products of up to `Tensor.smallRowLimit` rows (a decoding batch) run on row-independent kernels:
/// each row's result has the same bits whether it is multiplied alone or with others, on float32
/// weights in both layouts and on half-precision weights, and agrees with BLAS within rounding.
@Suite struct SmallRowProductTests {
    static func rows(_ count: Int, _ width: Int, seed: UInt64) -> Tensor {
        var generator = SplitMix64(seed: seed)
        return Tensor(randomNormal: [count, width], generator: &generator)
    }

    /// Every way of computing one row: alone, and inside batches of 2...8 at every position.
    static func expectRowIndependent(_ product: (Tensor) -> Tensor, width: Int, label: String) {
        let batch = rows(Tensor.smallRowLimit, width, seed: 5)
        let alone = (0..<batch.shape[0]).map { product(batch.sliced(along: 0, $0..<($0 + 1))).scalars }
        for count in 2...Tensor.smallRowLimit {
            let together = product(batch.sliced(along: 0, 0..<count))
            for row in 0..<count {
                #expect(together.sliced(along: 0, row..<(row + 1)).scalars == alone[row], "\(label): row \(row) of \(count)")
            }
        }
    }

    @Test func float32LinearIsRowIndependent() {
        var generator = SplitMix64(seed: 1)
        let weight = Tensor(randomNormal: [300, 257], generator: &generator)
        let bias = Tensor(randomNormal: [300], generator: &generator)
        Self.expectRowIndependent({ $0.linear(weight: weight, bias: bias) }, width: 257, label: "linear with bias")
        Self.expectRowIndependent({ $0.linear(weight: weight) }, width: 257, label: "linear")
        // Agrees with sgemm (9 rows take the BLAS path) within float32 rounding.
        let nine = Self.rows(9, 257, seed: 7)
        let blas = nine.linear(weight: weight, bias: bias)
        let kernel = Tensor.concatenated((0..<9).map { nine.sliced(along: 0, $0..<($0 + 1)).linear(weight: weight, bias: bias) }, along: 0)
        let error = zip(blas.scalars, kernel.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(error < 1e-4, "\(error)")
    }

    /// Every matrix-vector path this CPU has (the portable one forced, AVX2 where available), for
    /// float32, float16 and bfloat16 weights and column counts around the kernels' 16- and 8-wide
    /// steps: within float32 rounding of a float64 product, and on each path a vector's result has the
    /// same bits alone as among 1...9 others. The AVX2 path takes tiles of 8, 4 or 2 rows by the number
    /// of vectors: 13 and 37 rows leave single rows after the tiles, and the column counts leave the
    /// 8-wide steps' 1-wide tails (or have no full step at all).
    @Test func everyMatrixVectorPathAgreesAndIsRowIndependent() {
        let paths = [Int32(CRAFT_PATH_PORTABLE)] + (craft_matvec_path() == Int32(CRAFT_PATH_AVX2) ? [Int32(CRAFT_PATH_AVX2)] : [])
        var generator = SplitMix64(seed: 11)
        for columns in [5, 16, 24, 67, 2061, 2600] {
            let rowCount = columns >= 2048 ? 37 : 13, vectors = 9
            let weight = Tensor(randomNormal: [rowCount, columns], generator: &generator).scalars
            let x = Tensor(randomNormal: [vectors, columns], generator: &generator).scalars
            for format in [Int32(CRAFT_FLOAT32_WEIGHTS), Int32(CRAFT_HALF_FLOAT16), Int32(CRAFT_HALF_BFLOAT16)] {
                var bits = [UInt16](repeating: 0, count: weight.count)
                if format != Int32(CRAFT_FLOAT32_WEIGHTS) { craft_float_to_half(format, weight, &bits, weight.count) }
                var widened = weight
                if format != Int32(CRAFT_FLOAT32_WEIGHTS) { craft_half_to_float(format, bits, &widened, bits.count) }
                func run(_ path: Int32, _ m: Int, from first: Int) -> [Float] {
                    var y = [Float](repeating: 0, count: m * rowCount)
                    x.withUnsafeBufferPointer { xs in
                        let start = xs.baseAddress! + first * columns
                        if format == Int32(CRAFT_FLOAT32_WEIGHTS) {
                            craft_matvec_on(path, format, weight, columns, 0, rowCount, start, m, columns, &y, rowCount)
                        } else {
                            craft_matvec_on(path, format, bits, columns, 0, rowCount, start, m, columns, &y, rowCount)
                        }
                    }
                    return y
                }
                for path in paths {
                    let all = run(path, vectors, from: 0)
                    for v in 0..<vectors {
                        for row in 0..<rowCount {
                            var exact = 0.0, magnitude = 0.0
                            for k in 0..<columns {
                                exact += Double(widened[row * columns + k]) * Double(x[v * columns + k])
                                magnitude += abs(Double(widened[row * columns + k]) * Double(x[v * columns + k]))
                            }
                            #expect(abs(Double(all[v * rowCount + row]) - exact) <= 1e-6 * magnitude + 1e-30,
                                    "path \(path), format \(format), D \(columns), vector \(v), row \(row)")
                        }
                        #expect(run(path, 1, from: v) == Array(all[(v * rowCount)..<((v + 1) * rowCount)]),
                                "path \(path), format \(format), D \(columns): vector \(v) alone")
                    }
                    for m in [2, 3, 5, 8] {
                        #expect(run(path, m, from: 0) == Array(all[0..<(m * rowCount)]),
                                "path \(path), format \(format), D \(columns): \(m) vectors")
                    }
                }
            }
        }
    }

    @Test func float32MatmulInConv1DLayoutIsRowIndependent() {
        var generator = SplitMix64(seed: 2)
        let weight = Tensor(randomNormal: [129, 700], generator: &generator)  // [in, out]
        Self.expectRowIndependent({ $0.matmul(weight) }, width: 129, label: "matmul [in, out]")
        let nine = Self.rows(9, 129, seed: 8)
        let blas = nine.matmul(weight)
        let kernel = Tensor.concatenated((0..<9).map { nine.sliced(along: 0, $0..<($0 + 1)).matmul(weight) }, along: 0)
        let error = zip(blas.scalars, kernel.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(error < 1e-4, "\(error)")
    }

    @Test func halfPrecisionLinearIsRowIndependent() {
        for format in [HalfMatrix.Format.bfloat16, .float16] {
            var generator = SplitMix64(seed: 3)
            let weight = HalfMatrix(converting: Tensor(randomNormal: [77, 300], generator: &generator), format: format)
            Self.expectRowIndependent({ $0.linear(weight: weight) }, width: 300, label: "\(format)")
        }
    }

    /// Threads split the output rows into ranges; the kernels give the same bits for any split (the
    /// ranges are passed directly, so the test does not change the shared thread count, which other
    /// tests running in parallel read).
    @Test func anySplitOfTheRowsGivesTheSameBits() {
        var generator = SplitMix64(seed: 4)
        let (n, k, m) = (301, 67, 3)
        let weight = Tensor(randomNormal: [n, k], generator: &generator).scalars
        let half = HalfMatrix(converting: Tensor(weight, shape: [n, k]), format: .bfloat16)
        let x = Self.rows(m, k, seed: 9).scalars
        func run(_ splits: [Int]) -> ([Float], [Float]) {
            var float = [Float](repeating: 0, count: m * n), halfOut = [Float](repeating: 0, count: m * n)
            let bounds = [0] + splits + [n]
            for (start, end) in zip(bounds, bounds.dropFirst()) {
                craft_float_matvec(weight, k, start, end, x, m, k, &float, n)
                craft_half_matvec(half.format.cValue, half.bits, k, start, end, x, m, k, &halfOut, n)
            }
            return (float, halfOut)
        }
        let whole = run([])
        for splits in [[150], [1, 2, 3], [100, 200, 300]] {
            let split = run(splits)
            #expect(split.0 == whole.0 && split.1 == whole.1, "\(splits)")
        }
    }
}
