// Weights kept in ggml's quantized blocks (from GGUF files) and computed in float32: decoding reads the
// blocks directly, 8.5 bits per value for Q8_0, so a quantized model occupies about its file's size
// and reads a quarter of float32's bytes per token. See docs/gguf.md and docs/tensorcore.md.
import CKernels

/// A frozen `[rows, columns]` matrix in ggml's quantized blocks (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K), used
/// as a `nn.Linear` weight or an embedding table.
///
/// Products compute in float32 on the blocks: each scale group's integer weights are multiplied
/// with the input and scaled once, so the result differs from the product with the dequantized
/// weights only in rounding order. Prefill tiles and embedding rows are dequantized exactly (gguf-py's
/// values). The blocks are read where they are (a memory-mapped GGUF file, kept alive by `owner`).
///
/// ```swift
/// let weight = QuantizedMatrix(format: .q4_K, rows: 768, columns: 768, blocks: pointer, owner: file, activations: .int8)
/// let y = x.linear(weight: weight)
/// ```
public struct QuantizedMatrix: CompactMatrix, @unchecked Sendable {
    /// How the values are stored.
    public enum Format: String, Sendable, CaseIterable {
        /// Q8_0: blocks of 32 values, an f16 scale and 32 signed bytes (34 bytes; 8.5 bits a value).
        case q8_0
        /// Q4_0: blocks of 32 values, an f16 scale and 16 bytes of nibbles (18 bytes; 4.5 bits).
        case q4_0
        /// Q4_K: blocks of 256 values in 8 sub-blocks with 6-bit scales and minimums (144 bytes; 4.5 bits).
        case q4_K
        /// Q5_K: Q4_K with a fifth bit per value (176 bytes; 5.5 bits).
        case q5_K
        /// Q6_K: blocks of 256 values in 16 groups with 8-bit scales, 6-bit values (210 bytes; 6.56 bits).
        case q6_K

        /// The format's id in CKernels.
        var kernelID: Int32 {
            switch self {
            case .q8_0: Int32(CRAFT_QUANT_Q8_0)
            case .q4_0: Int32(CRAFT_QUANT_Q4_0)
            case .q4_K: Int32(CRAFT_QUANT_Q4_K)
            case .q5_K: Int32(CRAFT_QUANT_Q5_K)
            case .q6_K: Int32(CRAFT_QUANT_Q6_K)
            }
        }

        /// Values per block (32 or 256).
        public var blockValues: Int { craft_quant_block_values(kernelID) }
        /// Bytes per block.
        public var blockBytes: Int { craft_quant_block_bytes(kernelID) }
    }

    /// How decoding rows (up to 8 input rows) multiply with the blocks.
    public enum Activations: String, Sendable, CaseIterable {
        /// In float32: the product with the exact dequantized weights, up to rounding order.
        case float32
        /// Rounded to int8 (`round(x · 127 / max|x|)` per 32 values for Q8_0, per 256 for the
        /// K-quants), then exact integer products scaled once per block, as llama.cpp computes:
        /// faster on the blocks, with the error of 8-bit activations. For Q8_0, Q4_K and Q6_K;
        /// other formats compute in float32.
        case int8
    }

    /// The storage format.
    public let format: Format
    /// How decoding rows multiply with the blocks (prefill tiles are always dequantized exactly).
    public let activations: Activations
    public let rows: Int
    public let columns: Int
    let blocks: UnsafePointer<UInt8>
    public let owner: AnyObject

    /// The matrix over the blocks at `blocks` (row-major: each row `columns / format.blockValues`
    /// blocks), valid while `owner` lives.
    ///
    /// - Precondition: `columns` is a multiple of the format's block values and `blocks` holds
    ///   `rows · columns / blockValues` blocks.
    public init(format: Format, rows: Int, columns: Int, blocks: UnsafeRawPointer, owner: AnyObject, activations: Activations = .float32) {
        precondition(rows >= 0 && columns >= 0 && columns % format.blockValues == 0,
                     "QuantizedMatrix: \(format.rawValue) rows are whole blocks of \(format.blockValues) values, not [\(rows), \(columns)]")
        self.format = format
        self.activations = activations
        self.rows = rows
        self.columns = columns
        self.blocks = blocks.assumingMemoryBound(to: UInt8.self)
        self.owner = owner
    }

    /// Bytes per row.
    var rowBytes: Int { columns / format.blockValues * format.blockBytes }

    public var byteCount: Int { rows * rowBytes }

    public func streamingMultiply(input: UnsafePointer<Float>, rowCount: Int, into output: UnsafeMutablePointer<Float>) {
        let (n, k, weight, out, id) = (rows, columns, blocks, SendablePointer(pointer: output), format.kernelID)
        if activations == .int8, craft_quant_has_int8(id) != 0 {
            // The input rows rounded to int8 once, then every row range multiplies them.
            let group = craft_quant_activation_group(id)
            var quantized = [Int8](repeating: 0, count: rowCount * k)
            var scales = [Float](repeating: 0, count: rowCount * k / group)
            var sums = [Int16](repeating: 0, count: rowCount * k / 16)
            craft_quantize_activations(input, rowCount, k, k, group, &quantized, &scales, &sums)
            quantized.withUnsafeBufferPointer { q in
                scales.withUnsafeBufferPointer { d in
                    sums.withUnsafeBufferPointer { s in
                        let (q, d, s) = (SendableConstPointer(pointer: q.baseAddress!), SendableConstPointer(pointer: d.baseAddress!), SendableConstPointer(pointer: s.baseAddress!))
                        parallelRanges(n, grain: Swift.max(1, 16384 / Swift.max(k, 1))) { range in
                            craft_quant_matvec_int8(id, weight, k, range.lowerBound, range.upperBound, q.pointer, d.pointer, s.pointer, rowCount, out.pointer, n)
                        }
                    }
                }
            }
            return
        }
        parallelRanges(n, grain: Swift.max(1, 16384 / Swift.max(k, 1))) { range in
            craft_quant_matvec(id, weight, k, range.lowerBound, range.upperBound, input, rowCount, k, out.pointer, n)
        }
    }

    public func convert(rows range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        let (k, source, rowBytes, out, id) = (columns, blocks + range.lowerBound * rowBytes, rowBytes, SendablePointer(pointer: destination), format.kernelID)
        let blocksPerRow = k / format.blockValues
        parallelRanges(range.count, grain: Swift.max(1, 32768 / Swift.max(k, 1))) { part in
            craft_quant_to_float(id, source + part.lowerBound * rowBytes, out.pointer + part.lowerBound * k, part.count * blocksPerRow)
        }
    }
}

/// A read-only pointer handed to parallel workers that only read through it.
struct SendableConstPointer<Pointee>: @unchecked Sendable {
    let pointer: UnsafePointer<Pointee>
}
