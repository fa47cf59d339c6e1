import Foundation
import Testing
@testable import TensorCore

/// Half-precision weights: exact conversion of every bit pattern, rounding as torch and numpy do, and
/// products equal to the float32 products on the same (half-representable) values, on the streaming
/// path (few rows) and the tiled path (many rows, several tiles), with gradients for the input.
@Suite struct HalfMatrixTests {
    static let formats: [HalfMatrix.Format] = [.float16, .bfloat16]

    /// The float32 value of every one of the 65536 bit patterns, against Swift's `Float16` and the
    /// bfloat16 definition (the upper 16 bits of a float32); NaNs stay NaN.
    @Test(arguments: formats) func everyBitPatternConvertsExactly(format: HalfMatrix.Format) throws {
        let buffer = UnsafeMutablePointer<UInt16>.allocate(capacity: 65536)
        defer { buffer.deallocate() }
        for bits in 0..<65536 { buffer[bits] = UInt16(bits) }
        let owner = NSObject()
        let table = HalfMatrix(format: format, rows: 256, columns: 256, bits: buffer, owner: owner).floats()
        try table.withUnsafeScalars { values in
            for bits in 0..<65536 {
                let expected: Float = format == .bfloat16
                    ? Float(bitPattern: UInt32(bits) << 16) : Float(Float16(bitPattern: UInt16(bits)))
                if expected.isNaN {
                    try #require(values[bits].isNaN, "bits \(bits)")
                } else {
                    try #require(values[bits].bitPattern == expected.bitPattern, "bits \(bits): \(values[bits]) ≠ \(expected)")
                }
            }
        }
    }

    /// Rounding to nearest even, overflow to infinity, subnormals, ties, signed zeros.
    @Test(arguments: formats) func roundsToNearestEven(format: HalfMatrix.Format) throws {
        var generator = SplitMix64(seed: 3)
        var values: [Float] = [0, -0, 1, -1, 65504, 65520, 70000, -1e9, 1e-8, 5.96e-8, 2.98e-8, 6.1e-5, 1 + 0x1p-11, 1 + 3 * 0x1p-11,
                               1 + 0x1p-8, 1 + 3 * 0x1p-8, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude]
        for _ in 0..<2000 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: generator.next()))) }
        values = values.filter { !$0.isNaN }
        let matrix = HalfMatrix(converting: Tensor(values, shape: [1, values.count]), format: format)
        for (index, value) in values.enumerated() {
            let stored = matrix.bits[index]
            let expected: UInt16
            if format == .float16 {
                expected = Float16(value).bitPattern
            } else {
                let bits = value.bitPattern
                expected = UInt16(truncatingIfNeeded: (bits &+ ((bits >> 16) & 1) &+ 0x7FFF) >> 16)
            }
            try #require(stored == expected, "\(value): \(stored) ≠ \(expected)")
        }
        let nan = HalfMatrix(converting: Tensor([.nan], shape: [1, 1]), format: format).floats()
        #expect(nan.scalars[0].isNaN)
    }

    /// A random `[rows, columns]` matrix whose values are exactly representable in `format`, as
    /// float32, with its half-precision form.
    static func weights(_ rows: Int, _ columns: Int, format: HalfMatrix.Format, seed: UInt64) -> (Tensor, HalfMatrix) {
        var generator = SplitMix64(seed: seed)
        let half = HalfMatrix(converting: Tensor(randomNormal: [rows, columns], generator: &generator), format: format)
        return (half.floats(), half)
    }

    /// Streaming (1 and 3 rows) and tiled (37 rows; 300 × 1001 makes two tiles) products against the
    /// float32 product of the same values, with and without bias, odd widths for the vector tails.
    @Test(arguments: formats) func linearMatchesFloat32(format: HalfMatrix.Format) throws {
        for (outputs, inputs) in [(7, 5), (33, 70), (300, 1001)] {
            let (dense, half) = Self.weights(outputs, inputs, format: format, seed: UInt64(outputs))
            var generator = SplitMix64(seed: 9)
            let bias = Tensor(randomNormal: [outputs], generator: &generator)
            for rows in [1, 3, 37] {
                let x = Tensor(randomNormal: [rows, inputs], generator: &generator)
                for b in [nil, bias] {
                    let expected = x.linear(weight: dense, bias: b)
                    let actual = x.linear(weight: half, bias: b)
                    #expect(actual.shape == [rows, outputs])
                    let error = zip(actual.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
                    let scale = expected.scalars.map(abs).max() ?? 1
                    #expect(error <= 1e-5 * scale, "\(format) [\(outputs), \(inputs)] × \(rows) rows: error \(error) of \(scale)")
                }
            }
        }
    }

    /// Batched inputs keep their leading dimensions.
    @Test func linearKeepsLeadingDimensions() {
        let (dense, half) = Self.weights(6, 4, format: .bfloat16, seed: 1)
        var generator = SplitMix64(seed: 2)
        let x = Tensor(randomNormal: [2, 5, 4], generator: &generator)
        let actual = x.linear(weight: half)
        #expect(actual.shape == [2, 5, 6])
        let error = zip(actual.scalars, x.linear(weight: dense).scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(error < 1e-5)
    }

    /// The gradients of the input and the bias equal the float32 layer's (the weight is frozen).
    @Test(arguments: formats) func gradientsMatchFloat32(format: HalfMatrix.Format) throws {
        for rows in [1, 2, 40] {
            let (dense, half) = Self.weights(300, 901, format: format, seed: 5)
            var generator = SplitMix64(seed: 6)
            let x = Tensor(randomNormal: [rows, 901], generator: &generator).requiringGradient()
            let bias = Tensor(randomNormal: [300], generator: &generator).requiringGradient()
            let upstream = Tensor(randomNormal: [rows, 300], generator: &generator)
            let expected = (x.linear(weight: dense, bias: bias) * upstream).sum().gradients(withRespectTo: [x, bias])
            let actual = (x.linear(weight: half, bias: bias) * upstream).sum().gradients(withRespectTo: [x, bias])
            for (a, e) in zip(actual, expected) {
                let error = zip(a.scalars, e.scalars).map { abs($0 - $1) }.max() ?? 0
                let scale = e.scalars.map(abs).max() ?? 1
                #expect(error <= 1e-5 * scale, "\(format) \(rows) rows: gradient error \(error) of \(scale)")
            }
        }
    }

    @Test func embeddingRowsAndRangeErrors() throws {
        let (dense, half) = Self.weights(10, 3, format: .bfloat16, seed: 4)
        let indices = IndexTensor([2, 9, 0, 2], shape: [2, 2])
        let rows = try half.rows(at: indices)
        #expect(rows.shape == [2, 2, 3])
        #expect(rows.scalars == (try dense.rows(at: indices)).scalars)
        let error = try #require(throws: TensorError.self) { _ = try half.rows(at: IndexTensor([10], shape: [1])) }
        #expect(error.message.contains("outside the table's 10 rows"))
    }

    @Test func transposeKeepsValues() {
        let (dense, half) = Self.weights(5, 7, format: .float16, seed: 8)
        let transposed = half.transposed()
        #expect(transposed.shape == [7, 5])
        #expect(transposed.floats().scalars == dense.transposed().contiguous().scalars)
    }

    /// A tensor over borrowed memory reads it in place and copies before any write.
    @Test func borrowedTensorsCopyOnWrite() {
        let memory = UnsafeMutablePointer<Float>.allocate(capacity: 4)
        defer { memory.deallocate() }
        memory.initialize(from: [1, 2, 3, 4], count: 4)
        let owner = NSObject()
        var tensor = Tensor(borrowing: memory, shape: [2, 2], owner: owner)
        #expect(tensor.isBorrowed)
        #expect(tensor.scalars == [1, 2, 3, 4])
        tensor.withUnsafeMutableScalars { $0[0] = 10 }
        #expect(!tensor.isBorrowed && tensor.scalars == [10, 2, 3, 4])
        #expect(memory[0] == 1)
    }
}
