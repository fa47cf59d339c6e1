// Weights kept in half precision (IEEE binary16 or bfloat16, 2 bytes per value) and computed in
// float32: the matrix product converts inside the kernels, a tile at a time, so a model loaded from a
// half-precision checkpoint occupies half the memory of its float32 form and decoding, which is bound
// by the weight bytes read per token, reads half as many. See docs/tensorcore.md.
import CKernels

/// A frozen `[rows, columns]` matrix stored in half precision, used as a `nn.Linear` weight or an
/// embedding table.
///
/// The values are never written: the matrix reads memory it owns or borrows (a memory-mapped
/// checkpoint, kept alive by `owner`). Products compute in float32 with the exact float32 value of
/// every half-precision weight, so they match the float32 weights up to summation order.
///
/// ```swift
/// let weight = HalfMatrix(converting: Tensor(randomNormal: [4, 3], generator: &generator), format: .bfloat16)
/// let y = x.linear(weight: weight, bias: nil)     // x: [..., 3] → [..., 4]
/// ```
public struct HalfMatrix: CompactMatrix, @unchecked Sendable {
    /// How each value is stored.
    public enum Format: String, Sendable {
        /// IEEE 754 binary16 (safetensors `F16`).
        case float16
        /// bfloat16, the upper half of a float32 (safetensors `BF16`).
        case bfloat16

        var cValue: Int32 { self == .bfloat16 ? Int32(CRAFT_HALF_BFLOAT16) : Int32(CRAFT_HALF_FLOAT16) }
    }

    /// The storage format.
    public let format: Format
    /// The number of rows (output features of a linear weight, entries of an embedding table).
    public let rows: Int
    /// The number of columns (input features, embedding width).
    public let columns: Int
    let bits: UnsafePointer<UInt16>
    /// Keeps `bits` valid.
    public let owner: AnyObject

    /// The matrix over `rows × columns` values at `bits` (row-major, host byte order), valid while
    /// `owner` lives.
    ///
    /// - Precondition: `bits` is 2-byte aligned and holds `rows * columns` values.
    public init(format: Format, rows: Int, columns: Int, bits: UnsafeRawPointer, owner: AnyObject) {
        precondition(rows >= 0 && columns >= 0, "HalfMatrix: negative shape [\(rows), \(columns)]")
        precondition(Int(bitPattern: bits) % 2 == 0, "HalfMatrix: the values must be 2-byte aligned")
        self.format = format
        self.rows = rows
        self.columns = columns
        self.bits = bits.assumingMemoryBound(to: UInt16.self)
        self.owner = owner
    }

    /// `matrix` rounded to the nearest half-precision values (round to nearest even, as torch and numpy do).
    public init(converting matrix: Tensor, format: Format) {
        precondition(matrix.rank == 2, "HalfMatrix(converting:): a matrix is [rows, columns], not \(matrix.shape)")
        let buffer = HalfBuffer(count: matrix.scalarCount)
        matrix.withUnsafeScalars { values in
            if let base = values.baseAddress { craft_float_to_half(format.cValue, base, buffer.pointer, values.count) }
        }
        self.init(format: format, rows: matrix.shape[0], columns: matrix.shape[1], bits: buffer.pointer, owner: buffer)
    }

    /// `[rows, columns]`.
    public var shape: [Int] { [rows, columns] }

    /// The bytes the values occupy.
    public var byteCount: Int { rows * columns * 2 }

    /// The name of the kernels used on this CPU: `avx2-fma-f16c` or `portable`.
    public static var kernelName: String { String(cString: craft_half_kernel_name()) }

    /// The `[columns, rows]` transpose, in a new half-precision buffer (the values are not rounded again).
    public func transposed() -> HalfMatrix {
        let buffer = HalfBuffer(count: rows * columns)
        withExtendedLifetime(owner) {
            for row in 0..<rows {
                for column in 0..<columns { buffer.pointer[column * rows + row] = bits[row * columns + column] }
            }
        }
        return HalfMatrix(format: format, rows: columns, columns: rows, bits: buffer.pointer, owner: buffer)
    }

    // MARK: - CompactMatrix

    public func streamingMultiply(input: UnsafePointer<Float>, rowCount: Int, into output: UnsafeMutablePointer<Float>) {
        let (n, k, weight, format, out) = (rows, columns, bits, format.cValue, SendablePointer(pointer: output))
        // Output rows split across threads; each thread streams its share of the weight once.
        parallelRanges(n, grain: Swift.max(1, 16384 / Swift.max(k, 1))) { range in
            craft_half_matvec(format, weight, k, range.lowerBound, range.upperBound, input, rowCount, k, out.pointer, n)
        }
    }

    public func convert(rows range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        let (k, source, format, out) = (columns, bits + range.lowerBound * columns, format.cValue, SendablePointer(pointer: destination))
        parallelRanges(range.count, grain: Swift.max(1, 32768 / Swift.max(k, 1))) { part in
            craft_half_to_float(format, source + part.lowerBound * k, out.pointer + part.lowerBound * k, part.count * k)
        }
    }
}

/// Memory for a ``HalfMatrix`` made by conversion.
private final class HalfBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt16>
    init(count: Int) { pointer = .allocate(capacity: Swift.max(count, 1)) }
    deinit { pointer.deallocate() }
}

