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

    /// The split of output rows across threads does not change any bit either.
    @Test func threadCountDoesNotChangeBits() {
        var generator = SplitMix64(seed: 4)
        let weight = Tensor(randomNormal: [1000, 64], generator: &generator)
        let x = Self.rows(3, 64, seed: 9)
        let saved = Tensor.threadCount
        defer { Tensor.threadCount = saved }
        Tensor.threadCount = 1
        let one = x.linear(weight: weight).scalars
        Tensor.threadCount = 2
        #expect(x.linear(weight: weight).scalars == one)
    }
}
