import Foundation
import Testing
@testable import TensorCore
import CKernels

/// ggml's Q8_0 weights kept as blocks: dequantized values exact (`q · d`), products equal to the
/// float32 products of the dequantized values on the streaming path (up to 8 rows) and the tiled
/// path, every row's result the same alone or in a batch, input gradients, embedding rows.
@Suite struct QuantizedMatrixTests {
    /// Random Q8_0 blocks for `[rows, columns]` (finite f16 scales, every int8 value possible).
    final class Blocks: @unchecked Sendable {
        let bytes: [UInt8]
        init(rows: Int, columns: Int, seed: UInt64) {
            var generator = SplitMix64(seed: seed)
            var bytes: [UInt8] = []
            for _ in 0..<(rows * columns / 32) {
                // An f16 scale between about 0.004 and 0.03, either sign.
                let scale = Float16(Float(generator.next() % 1000 + 100) / 32000 * (generator.next() % 2 == 0 ? 1 : -1))
                bytes += [UInt8(scale.bitPattern & 0xFF), UInt8(scale.bitPattern >> 8)]
                for _ in 0..<32 { bytes.append(UInt8(truncatingIfNeeded: generator.next())) }
            }
            self.bytes = bytes
        }
    }

    static func matrix(_ rows: Int, _ columns: Int, seed: UInt64) -> (Tensor, QuantizedMatrix, Blocks) {
        let blocks = Blocks(rows: rows, columns: columns, seed: seed)
        let matrix = blocks.bytes.withUnsafeBytes { QuantizedMatrix(format: .q8_0, rows: rows, columns: columns, blocks: $0.baseAddress!, owner: blocks) }
        // The reference values, computed here as gguf-py does: q · d in float32.
        var values: [Float] = []
        for block in 0..<(rows * columns / 32) {
            let base = block * 34
            let d = Float(Float16(bitPattern: UInt16(blocks.bytes[base]) | UInt16(blocks.bytes[base + 1]) << 8))
            for i in 0..<32 { values.append(Float(Int8(bitPattern: blocks.bytes[base + 2 + i])) * d) }
        }
        return (Tensor(values, shape: [rows, columns]), matrix, blocks)
    }

    @Test func dequantizedValuesAreExact() {
        let (dense, matrix, blocks) = Self.matrix(5, 96, seed: 1)
        withExtendedLifetime(blocks) {
            #expect(matrix.floats().scalars.map(\.bitPattern) == dense.scalars.map(\.bitPattern))
            #expect(matrix.byteCount == 5 * 3 * 34)
        }
    }

    /// Streaming (1, 3 and 8 rows) and tiled (37 rows; 600 × 512 makes two tiles) products against the
    /// float32 product of the dequantized values, with and without bias.
    @Test func linearMatchesFloat32() {
        for (outputs, inputs) in [(7, 32), (33, 96), (600, 512)] {
            let (dense, matrix, blocks) = Self.matrix(outputs, inputs, seed: UInt64(outputs))
            var generator = SplitMix64(seed: 9)
            let bias = Tensor(randomNormal: [outputs], generator: &generator)
            for rows in [1, 3, 8, 37] {
                let x = Tensor(randomNormal: [rows, inputs], generator: &generator)
                for b in [nil, bias] {
                    let expected = x.linear(weight: dense, bias: b)
                    let actual = withExtendedLifetime(blocks) { x.linear(weight: matrix, bias: b) }
                    #expect(actual.shape == [rows, outputs])
                    let error = zip(actual.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
                    let scale = expected.scalars.map(abs).max() ?? 1
                    #expect(error <= 1e-5 * scale, "[\(outputs), \(inputs)] × \(rows) rows: error \(error) of \(scale)")
                }
            }
        }
    }

    /// A row multiplied with up to 7 others has the bits it has alone (batched decoding).
    @Test func aRowHasTheSameBitsAloneAndInABatch() {
        let (_, matrix, blocks) = Self.matrix(64, 256, seed: 3)
        var generator = SplitMix64(seed: 4)
        let x = Tensor(randomNormal: [8, 256], generator: &generator)
        withExtendedLifetime(blocks) {
            let together = x.linear(weight: matrix)
            for row in 0..<8 {
                let alone = x.sliced(along: 0, row..<(row + 1)).linear(weight: matrix)
                #expect(alone.scalars.map(\.bitPattern) == together.sliced(along: 0, row..<(row + 1)).scalars.map(\.bitPattern), "row \(row)")
            }
        }
    }

    @Test func gradientsAndEmbeddingRows() throws {
        let (dense, matrix, blocks) = Self.matrix(64, 160, seed: 5)
        var generator = SplitMix64(seed: 6)
        let x = Tensor(randomNormal: [2, 160], generator: &generator).requiringGradient()
        let upstream = Tensor(randomNormal: [2, 64], generator: &generator)
        try withExtendedLifetime(blocks) {
            let expected = (x.linear(weight: dense) * upstream).sum().gradients(withRespectTo: [x])[0]
            let actual = (x.linear(weight: matrix) * upstream).sum().gradients(withRespectTo: [x])[0]
            let error = zip(actual.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
            #expect(error <= 1e-5 * (expected.scalars.map(abs).max() ?? 1))
            let rows = try matrix.rows(at: IndexTensor([3, 0, 63]))
            #expect(rows.scalars == (try dense.rows(at: IndexTensor([3, 0, 63]))).scalars)
            #expect(throws: TensorError.self) { _ = try matrix.rows(at: IndexTensor([64])) }
        }
    }
}

/// ggml's 4-, 5- and 6-bit formats kept as blocks: products on the blocks equal the float32 products
/// of the dequantized values up to rounding order, on the AVX2 and portable kernels alike; every
/// row's result has the same bits alone or in a batch. (The dequantized values themselves are
/// checked bit for bit against gguf-py in GGUFTests.)
@Suite struct QuantizedBlockFormatTests {
    static let formats: [QuantizedMatrix.Format] = [.q4_0, .q4_K, .q5_K, .q6_K]

    /// Random blocks: every quantized bit random, the f16 scales finite (about 0.004 to 0.03, either sign).
    final class Blocks: @unchecked Sendable {
        var bytes: [UInt8]
        init(format: QuantizedMatrix.Format, rows: Int, columns: Int, seed: UInt64) {
            var generator = SplitMix64(seed: seed)
            let count = rows * columns / format.blockValues
            bytes = (0..<(count * format.blockBytes)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let scaleOffsets: [Int] = switch format {
            case .q8_0, .q4_0: [0]
            case .q4_K, .q5_K: [0, 2]
            case .q6_K: [208]
            }
            for block in 0..<count {
                for offset in scaleOffsets {
                    let scale = Float16(Float(generator.next() % 1000 + 100) / 32000 * (generator.next() % 2 == 0 ? 1 : -1))
                    bytes[block * format.blockBytes + offset] = UInt8(scale.bitPattern & 0xFF)
                    bytes[block * format.blockBytes + offset + 1] = UInt8(scale.bitPattern >> 8)
                }
            }
        }
    }

    static func matrix(_ format: QuantizedMatrix.Format, _ rows: Int, _ columns: Int, seed: UInt64) -> (QuantizedMatrix, Blocks) {
        let blocks = Blocks(format: format, rows: rows, columns: columns, seed: seed)
        let matrix = blocks.bytes.withUnsafeBytes { QuantizedMatrix(format: format, rows: rows, columns: columns, blocks: $0.baseAddress!, owner: blocks) }
        return (matrix, blocks)
    }

    static func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
        let error = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
        return error / max(expected.map(abs).max() ?? 1, 1e-30)
    }

    /// Streaming (1, 3, 8 rows) and tiled (37 rows) products against the dequantized float32 product.
    @Test(arguments: formats)
    func linearMatchesDequantizedFloat32(format: QuantizedMatrix.Format) {
        for (outputs, inputs) in [(7, 256), (33, 512), (300, 1024)] {
            let (matrix, blocks) = Self.matrix(format, outputs, inputs, seed: UInt64(outputs))
            withExtendedLifetime(blocks) {
                let dense = matrix.floats()
                var generator = SplitMix64(seed: 9)
                for rows in [1, 3, 8, 37] {
                    let x = Tensor(randomNormal: [rows, inputs], generator: &generator)
                    let actual = x.linear(weight: matrix)
                    #expect(actual.shape == [rows, outputs])
                    let error = Self.relativeError(actual.scalars, x.linear(weight: dense).scalars)
                    #expect(error <= 2e-5, "\(format) [\(outputs), \(inputs)] × \(rows) rows: relative error \(error)")
                }
            }
        }
    }

    /// The portable kernel (what CPUs without AVX2 run) gives the same products up to rounding order.
    @Test(arguments: formats)
    func portableKernelAgrees(format: QuantizedMatrix.Format) {
        let (matrix, blocks) = Self.matrix(format, 24, 512, seed: 11)
        var generator = SplitMix64(seed: 12)
        let x = Tensor(randomNormal: [5, 512], generator: &generator)
        withExtendedLifetime(blocks) {
            var portable = [Float](repeating: 0, count: 5 * 24)
            x.scalars.withUnsafeBufferPointer { input in
                portable.withUnsafeMutableBufferPointer { output in
                    craft_quant_matvec_portable(format.kernelID, matrix.blocks, 512, 0, 24, input.baseAddress!, 5, 512, output.baseAddress!, 24)
                }
            }
            let error = Self.relativeError(portable, x.linear(weight: matrix).scalars)
            #expect(error <= 2e-5, "\(format): relative error \(error)")
        }
    }

    @Test(arguments: formats)
    func aRowHasTheSameBitsAloneAndInABatch(format: QuantizedMatrix.Format) {
        let (matrix, blocks) = Self.matrix(format, 40, 512, seed: 3)
        var generator = SplitMix64(seed: 4)
        let x = Tensor(randomNormal: [8, 512], generator: &generator)
        withExtendedLifetime(blocks) {
            let together = x.linear(weight: matrix)
            for row in 0..<8 {
                let alone = x.sliced(along: 0, row..<(row + 1)).linear(weight: matrix)
                #expect(alone.scalars.map(\.bitPattern) == together.sliced(along: 0, row..<(row + 1)).scalars.map(\.bitPattern), "\(format) row \(row)")
            }
            #expect(matrix.byteCount == 40 * 512 / format.blockValues * format.blockBytes)
        }
    }
}

/// Decoding rows multiplied over int8 activations (llama.cpp's arithmetic): within the error of
/// 8-bit activations of the exact product, the same on the AVX2 and portable kernels up to rounding
/// order, and the same bits alone or in a batch.
@Suite struct QuantizedInt8ActivationTests {
    static let formats: [QuantizedMatrix.Format] = [.q8_0, .q4_K, .q6_K]

    static func matrix(_ format: QuantizedMatrix.Format, _ rows: Int, _ columns: Int, seed: UInt64) -> (QuantizedMatrix, QuantizedMatrix, QuantizedBlockFormatTests.Blocks) {
        let blocks = QuantizedBlockFormatTests.Blocks(format: format, rows: rows, columns: columns, seed: seed)
        return blocks.bytes.withUnsafeBytes {
            (QuantizedMatrix(format: format, rows: rows, columns: columns, blocks: $0.baseAddress!, owner: blocks, activations: .int8),
             QuantizedMatrix(format: format, rows: rows, columns: columns, blocks: $0.baseAddress!, owner: blocks), blocks)
        }
    }

    @Test(arguments: formats)
    func withinTheErrorOfEightBitActivations(format: QuantizedMatrix.Format) {
        let (fast, exact, blocks) = Self.matrix(format, 64, 1024, seed: 21)
        var generator = SplitMix64(seed: 22)
        withExtendedLifetime(blocks) {
            for rows in [1, 3, 8] {
                let x = Tensor(randomNormal: [rows, 1024], generator: &generator)
                let error = QuantizedBlockFormatTests.relativeError(x.linear(weight: fast).scalars, x.linear(weight: exact).scalars)
                #expect(error > 0 && error <= 1e-2, "\(format) × \(rows) rows: relative error \(error)")
            }
            // More than 8 rows (prefill) dequantize tiles exactly, whatever the activations setting.
            let x = Tensor(randomNormal: [12, 1024], generator: &generator)
            #expect(x.linear(weight: fast).scalars == x.linear(weight: exact).scalars)
        }
    }

    @Test(arguments: formats)
    func portableKernelAgrees(format: QuantizedMatrix.Format) {
        let (fast, _, blocks) = Self.matrix(format, 24, 512, seed: 23)
        var generator = SplitMix64(seed: 24)
        let x = Tensor(randomNormal: [5, 512], generator: &generator)
        withExtendedLifetime(blocks) {
            let group = craft_quant_activation_group(format.kernelID)
            var q = [Int8](repeating: 0, count: 5 * 512)
            var scales = [Float](repeating: 0, count: 5 * 512 / group), sums = [Int16](repeating: 0, count: 5 * 512 / 16)
            craft_quantize_activations(x.scalars, 5, 512, 512, group, &q, &scales, &sums)
            var portable = [Float](repeating: 0, count: 5 * 24)
            craft_quant_matvec_int8_portable(format.kernelID, fast.blocks, 512, 0, 24, q, scales, sums, 5, &portable, 24)
            let error = QuantizedBlockFormatTests.relativeError(portable, x.linear(weight: fast).scalars)
            #expect(error <= 2e-6, "\(format): relative error \(error)")
        }
    }

    @Test(arguments: formats)
    func aRowHasTheSameBitsAloneAndInABatch(format: QuantizedMatrix.Format) {
        let (fast, _, blocks) = Self.matrix(format, 40, 512, seed: 25)
        var generator = SplitMix64(seed: 26)
        let x = Tensor(randomNormal: [8, 512], generator: &generator)
        withExtendedLifetime(blocks) {
            let together = x.linear(weight: fast)
            for row in 0..<8 {
                let alone = x.sliced(along: 0, row..<(row + 1)).linear(weight: fast)
                #expect(alone.scalars.map(\.bitPattern) == together.sliced(along: 0, row..<(row + 1)).scalars.map(\.bitPattern), "\(format) row \(row)")
            }
        }
    }
}
