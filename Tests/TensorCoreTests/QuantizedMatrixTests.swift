import Foundation
import Testing
@testable import TensorCore

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
