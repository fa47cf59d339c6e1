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
public struct HalfMatrix: @unchecked Sendable {
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
    let owner: AnyObject

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

    /// The matrix as a float32 tensor (a new `rows × columns` buffer).
    public func floats() -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        withExtendedLifetime(owner) {
            craft_half_to_float(format.cValue, bits, result.storage.pointer, rows * columns)
        }
        return result
    }

    /// The rows at `indices` as float32, shaped `indices.shape + [columns]` (an embedding lookup).
    ///
    /// - Throws: ``TensorError`` when an index is outside `0..<rows`.
    public func rows(at indices: IndexTensor) throws(TensorError) -> Tensor {
        for (position, index) in indices.scalars.enumerated() where index < 0 || Int(index) >= rows {
            throw TensorError(.indexOutOfRange,
                              "index \(index) at position \(position) is outside the table's \(rows) rows; check the token or code ids against the model's vocabulary size")
        }
        let result = Tensor(uninitializedShape: indices.shape + [columns])
        withExtendedLifetime(owner) {
            for (position, index) in indices.scalars.enumerated() {
                craft_half_to_float(format.cValue, bits + Int(index) * columns,
                                    result.storage.pointer + position * columns, columns)
            }
        }
        return result
    }

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

    // MARK: - Products

    /// The most input rows multiplied by streaming the weight once per row (decoding, short prompts;
    /// each row's result independent of how many are multiplied together); more rows convert tiles
    /// of the weight to float32 and use `sgemm`.
    static let streamingRowLimit = Tensor.smallRowLimit
    /// The float32 values in one converted tile (1 MiB): it stays in cache while `sgemm` reads it.
    static let tileValues = 1 << 18

    /// `output[r, n] = bias[n] + Σ_k input[r, k] · self[n, k]` for `input` `[rows, columns]` row-major.
    func multiply(input: UnsafePointer<Float>, rowCount: Int, bias: UnsafePointer<Float>?, into output: UnsafeMutablePointer<Float>) {
        let (n, k) = (rows, columns)
        for row in 0..<rowCount {
            if let bias {
                (output + row * n).update(from: bias, count: n)
            } else {
                (output + row * n).initialize(repeating: 0, count: n)
            }
        }
        guard n > 0, k > 0, rowCount > 0 else { return }
        withExtendedLifetime(owner) {
            if rowCount <= HalfMatrix.streamingRowLimit {
                let (weight, format, out) = (bits, format.cValue, SendablePointer(pointer: output))
                let x = UnsafePointer(input)
                // Output rows split across threads; each thread streams its share of the weight once.
                parallelRanges(n, grain: Swift.max(1, 16384 / Swift.max(k, 1))) { range in
                    craft_half_matvec(format, weight, k, range.lowerBound, range.upperBound, x, rowCount, k, out.pointer, n)
                }
                return
            }
            forEachTile { rows, tile in
                BLAS.sgemm(transposeA: .none, transposeB: .transposed, m: rowCount, n: rows.count, k: k,
                           a: input, lda: k, b: tile, ldb: k, beta: 1, c: output + rows.lowerBound, ldc: n)
            }
        }
    }

    /// Calls `body` with consecutive ranges of rows and their float32 values (`[range.count, columns]`,
    /// valid during the call), in tiles of about ``tileValues``.
    private func forEachTile(_ body: (Range<Int>, UnsafePointer<Float>) -> Void) {
        let tileRows = Swift.max(1, Swift.min(rows, HalfMatrix.tileValues / Swift.max(columns, 1)))
        // From the buffer cache: a fresh 1 MiB allocation per product would page-fault every time.
        let storage = TensorStorage(uninitializedCount: tileRows * columns)
        withExtendedLifetime(storage) {
            var start = 0
            while start < rows {
                let range = start..<Swift.min(rows, start + tileRows)
                convert(rows: range, into: storage.pointer)
                body(range, storage.pointer)
                start = range.upperBound
            }
        }
    }

    /// `output[r, k] = Σ_n gradient[r, n] · self[n, k]`: the gradient of a linear layer's input.
    func multiplyTransposed(gradient: UnsafePointer<Float>, rowCount: Int, into output: UnsafeMutablePointer<Float>) {
        let (n, k) = (rows, columns)
        output.initialize(repeating: 0, count: rowCount * k)
        guard n > 0, k > 0, rowCount > 0 else { return }
        withExtendedLifetime(owner) {
            forEachTile { rows, tile in
                BLAS.sgemm(transposeA: .none, transposeB: .none, m: rowCount, n: k, k: rows.count,
                           a: gradient + rows.lowerBound, lda: n, b: tile, ldb: k, beta: 1, c: output, ldc: k)
            }
        }
    }

    /// Converts `range`'s rows to float32 at `destination`, split across threads.
    private func convert(rows range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
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

extension Tensor {
    /// `self · weightᵀ + bias` with a half-precision `[out, in]` weight, computed in float32.
    ///
    /// Differentiable with respect to the input (a frozen language model passes gradients back to
    /// the visual tokens during training); the weight is a constant.
    public func linear(weight: HalfMatrix, bias: Tensor? = nil) -> Tensor {
        precondition(rank >= 1 && shape[rank - 1] == weight.columns,
                     "linear: weight \(weight.shape) does not map inputs of shape \(shape) (it must be [out, \(shape.last ?? 0)])")
        if let bias {
            precondition(bias.shape == [weight.rows], "linear: bias \(bias.shape) must be [\(weight.rows)] for weight \(weight.shape)")
        }
        let input = contiguous()
        let rowCount = weight.columns == 0 ? Tensor.elementCount(Array(shape.dropLast())) : input.scalarCount / weight.columns
        let result = Tensor(uninitializedShape: Array(shape.dropLast()) + [weight.rows])
        let biasValues = bias?.contiguousStorage()
        withExtendedLifetime((input.storage, biasValues)) {
            weight.multiply(input: input.storage.pointer + input.offset, rowCount: rowCount,
                            bias: biasValues.map { UnsafePointer($0.pointer) }, into: result.storage.pointer)
        }
        guard let needs = Tensor.gradientNeeds(input, bias ?? Tensor(0)) else { return result }
        let inputShape = input.shape, outputs = weight.rows
        return result.recorded(from: [input] + (bias.map { [$0] } ?? [])) { g in
            let rows = g.contiguous()
            var gradients: [Tensor?] = []
            if needs[0] {
                let gradient = Tensor(uninitializedShape: inputShape)
                withExtendedLifetime(rows.storage) {
                    weight.multiplyTransposed(gradient: rows.storage.pointer + rows.offset, rowCount: rowCount,
                                              into: gradient.storage.pointer)
                }
                gradients.append(gradient)
            } else {
                gradients.append(nil)
            }
            if bias != nil {
                gradients.append(needs[1] ? rows.reshaped([rowCount, outputs]).sumKernel(axis: 0).reshaped([outputs]) : nil)
            }
            return gradients
        }
    }
}
