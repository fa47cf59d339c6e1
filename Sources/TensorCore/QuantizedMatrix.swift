// Weights kept in ggml's quantized blocks (from GGUF files) and computed in float32: decoding reads the
// blocks directly, 8.5 bits per value for Q8_0, so a quantized model occupies about its file's size
// and reads a quarter of float32's bytes per token. See docs/gguf.md and docs/tensorcore.md.
import CKernels

/// A frozen `[rows, columns]` matrix in ggml's Q8_0 blocks (per 32 values: an f16 scale and 32
/// signed bytes), used as a `nn.Linear` weight or an embedding table.
///
/// Products compute in float32 with the exact dequantized value `q · d` of every weight. The blocks
/// are read where they are (a memory-mapped GGUF file, kept alive by `owner`).
///
/// ```swift
/// let weight = QuantizedMatrix(format: .q8_0, rows: 768, columns: 768, blocks: pointer, owner: file)
/// let y = x.linear(weight: weight)
/// ```
public struct QuantizedMatrix: CompactMatrix, @unchecked Sendable {
    /// How the values are stored.
    public enum Format: String, Sendable {
        /// ggml's Q8_0: blocks of 32 values, an f16 scale and 32 signed bytes (34 bytes).
        case q8_0
    }

    /// The storage format.
    public let format: Format
    public let rows: Int
    public let columns: Int
    let blocks: UnsafePointer<UInt8>
    public let owner: AnyObject

    /// The matrix over the blocks at `blocks` (row-major: each row `columns / 32` blocks), valid while
    /// `owner` lives.
    ///
    /// - Precondition: `columns` is a multiple of 32 and `blocks` holds `rows · columns / 32` blocks.
    public init(format: Format, rows: Int, columns: Int, blocks: UnsafeRawPointer, owner: AnyObject) {
        precondition(rows >= 0 && columns >= 0 && columns % Int(CRAFT_Q8_0_BLOCK_VALUES) == 0,
                     "QuantizedMatrix: Q8_0 rows are whole blocks of 32 values, not [\(rows), \(columns)]")
        self.format = format
        self.rows = rows
        self.columns = columns
        self.blocks = blocks.assumingMemoryBound(to: UInt8.self)
        self.owner = owner
    }

    /// Bytes per row.
    var rowBytes: Int { columns / Int(CRAFT_Q8_0_BLOCK_VALUES) * Int(CRAFT_Q8_0_BLOCK_BYTES) }

    public var byteCount: Int { rows * rowBytes }

    public func streamingMultiply(input: UnsafePointer<Float>, rowCount: Int, into output: UnsafeMutablePointer<Float>) {
        let (n, k, weight, out) = (rows, columns, blocks, SendablePointer(pointer: output))
        parallelRanges(n, grain: Swift.max(1, 16384 / Swift.max(k, 1))) { range in
            craft_q8_0_matvec(weight, k, range.lowerBound, range.upperBound, input, rowCount, k, out.pointer, n)
        }
    }

    public func convert(rows range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        let (k, source, rowBytes, out) = (columns, blocks + range.lowerBound * rowBytes, rowBytes, SendablePointer(pointer: destination))
        let blocksPerRow = k / Int(CRAFT_Q8_0_BLOCK_VALUES)
        parallelRanges(range.count, grain: Swift.max(1, 32768 / Swift.max(k, 1))) { part in
            craft_q8_0_to_float(source + part.lowerBound * rowBytes, out.pointer + part.lowerBound * k, part.count * blocksPerRow)
        }
    }
}
