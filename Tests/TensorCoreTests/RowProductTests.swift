import Foundation
import Testing
import TestSupport
@testable import TensorCore

/// One-row products (single-token decoding) go through sgemv instead of sgemm; these check every
/// layout that path accepts against a plain double-precision product, and the gradients through it.
@Suite("One-row matrix products (sgemv path)")
struct RowProductTests {
    static func naive(_ x: [Float], _ matrix: [Float], k: Int, n: Int, transposed: Bool) -> [Float] {
        (0..<n).map { j in
            Float((0..<k).reduce(0.0) { sum, i in
                sum + Double(x[i]) * Double(transposed ? matrix[j * k + i] : matrix[i * n + j])
            })
        }
    }

    @Test func linearOfOneRowMatchesTheProductWithAndWithoutBias() {
        var generator = SplitMix64(seed: 11)
        let (k, n) = (37, 53)
        let x = Tensor(randomNormal: [1, 1, k], generator: &generator)
        let weight = Tensor(randomNormal: [n, k], generator: &generator)
        let bias = Tensor(randomNormal: [n], generator: &generator)
        let plain = Self.naive(x.scalars, weight.scalars, k: k, n: n, transposed: true)
        let withBias = zip(plain, bias.scalars).map { $0 + $1 }
        let outBias = x.linear(weight: weight, bias: bias)
        #expect(outBias.shape == [1, 1, n])
        let checkBias = approximatelyEqual(outBias.scalars, withBias, relative: 1e-5, absolute: 1e-5)
        #expect(checkBias.ok, "\(checkBias.report)")
        let checkPlain = approximatelyEqual(x.linear(weight: weight).scalars, plain, relative: 1e-5, absolute: 1e-5)
        #expect(checkPlain.ok, "\(checkPlain.report)")
    }

    @Test func matmulOfOneRowHandlesStoredTransposedAndStridedOperands() {
        var generator = SplitMix64(seed: 12)
        let (k, n) = (29, 41)
        let matrix = Tensor(randomNormal: [k, n], generator: &generator)            // stored [k, n]
        let stored = Tensor(randomNormal: [n, k], generator: &generator)            // read transposed
        let wide = Tensor(randomNormal: [k, 3], generator: &generator)
        let row = wide.sliced(along: 1, 1..<2).transposed()                         // [1, k], stride 3
        #expect(!row.isContiguous)
        let rowValues = row.scalars
        let a = approximatelyEqual(row.matmul(matrix).scalars, Self.naive(rowValues, matrix.scalars, k: k, n: n, transposed: false),
                                   relative: 1e-5, absolute: 1e-5)
        #expect(a.ok, "\(a.report)")
        let b = approximatelyEqual(row.matmul(stored.transposed()).scalars, Self.naive(rowValues, stored.scalars, k: k, n: n, transposed: true),
                                   relative: 1e-5, absolute: 1e-5)
        #expect(b.ok, "\(b.report)")
        // A column slice of a wider matrix (row stride larger than its width) as the right operand.
        let block = Tensor(randomNormal: [k, n + 5], generator: &generator).sliced(along: 1, 2..<(n + 2))
        let c = approximatelyEqual(row.matmul(block).scalars, Self.naive(rowValues, block.scalars, k: k, n: n, transposed: false),
                                   relative: 1e-5, absolute: 1e-5)
        #expect(c.ok, "\(c.report)")
    }

    @Test func largeOneRowLinearSplitOverThreadsMatchesTheProduct() {
        // Enough rows for OpenBLAS's sgemv to split them over threads (at the default thread count),
        // with an odd row count and a column count that is not a multiple of a vector width.
        var generator = SplitMix64(seed: 14)
        let (k, n) = (70, 301)
        let x = Tensor(randomNormal: [1, k], generator: &generator)
        let weight = Tensor(randomNormal: [n, k], generator: &generator)
        let bias = Tensor(randomNormal: [n], generator: &generator)
        let expected = zip(Self.naive(x.scalars, weight.scalars, k: k, n: n, transposed: true), bias.scalars).map { $0 + $1 }
        let check = approximatelyEqual(x.linear(weight: weight, bias: bias).scalars, expected, relative: 1e-5, absolute: 1e-5)
        #expect(check.ok, "\(check.report)")
        // The same row through matmul with a transposed view of a wider stored matrix (row stride > k).
        let wide = Tensor(randomNormal: [n, k + 6], generator: &generator)
        let view = wide.sliced(along: 1, 3..<(k + 3))
        let product = x.matmul(view.transposed())
        let viaView = approximatelyEqual(product.scalars, Self.naive(x.scalars, view.scalars, k: k, n: n, transposed: true),
                                         relative: 1e-5, absolute: 1e-5)
        #expect(viaView.ok, "\(viaView.report)")
        #expect(product.scalars == x.matmul(view.transposed()).scalars)  // deterministic
    }

    @Test func gradientsThroughAOneRowLinearMatchTheOuterProducts() {
        var generator = SplitMix64(seed: 13)
        let (k, n) = (17, 23)
        let x = Tensor(randomNormal: [1, k], generator: &generator).requiringGradient()
        let weight = Tensor(randomNormal: [n, k], generator: &generator).requiringGradient()
        let bias = Tensor(randomNormal: [n], generator: &generator).requiringGradient()
        let seed = Tensor(randomNormal: [1, n], generator: &generator)
        let out = x.linear(weight: weight, bias: bias)
        let gradients = Tensor.gradients(of: out, withRespectTo: [x, weight, bias], seed: seed)
        // dx = seed · W, dW = seedᵀ · x, db = seed.
        let dx = Self.naive(seed.scalars, weight.scalars, k: n, n: k, transposed: false)
        let dW = seed.scalars.flatMap { s in x.scalars.map { s * $0 } }
        #expect(approximatelyEqual(gradients[0].scalars, dx, relative: 1e-5, absolute: 1e-5).ok)
        #expect(approximatelyEqual(gradients[1].scalars, dW, relative: 1e-5, absolute: 1e-5).ok)
        #expect(gradients[2].scalars == seed.scalars)
    }
}
