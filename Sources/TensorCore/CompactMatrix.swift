// What half-precision and quantized weights share: frozen matrices stored compactly and computed in
// float32. Up to Tensor.smallRowLimit input rows stream the weight once through a row kernel (each
// row's result independent of how many are multiplied together); more rows convert tiles of the
// weight to float32 for sgemm. See docs/tensorcore.md.

/// A frozen `[rows, columns]` matrix stored in a compact form (``HalfMatrix``, ``QuantizedMatrix``)
/// and multiplied in float32, used as a `nn.Linear` weight or an embedding table.
public protocol CompactMatrix: Sendable {
    /// The number of rows (output features of a linear weight, entries of an embedding table).
    var rows: Int { get }
    /// The number of columns (input features, embedding width).
    var columns: Int { get }
    /// The bytes the stored values occupy.
    var byteCount: Int { get }
    /// Keeps the stored values valid.
    var owner: AnyObject { get }
    /// Adds `input[r] · selfᵀ` to `output[r]` for the `rowCount` rows of `input` `[rowCount, columns]`
    /// (at most ``Tensor/smallRowLimit``), streaming the weight once; each row's result has the same
    /// bits whatever `rowCount` is.
    func streamingMultiply(input: UnsafePointer<Float>, rowCount: Int, into output: UnsafeMutablePointer<Float>)
    /// Writes the float32 values of the rows in `range` to `destination` (`range.count × columns`).
    func convert(rows range: Range<Int>, into destination: UnsafeMutablePointer<Float>)
}

extension CompactMatrix {
    /// `[rows, columns]`.
    public var shape: [Int] { [rows, columns] }

    /// The float32 values in one converted tile (1 MiB): it stays in cache while `sgemm` reads it.
    static var tileValues: Int { 1 << 18 }

    /// The matrix as a float32 tensor (a new `rows × columns` buffer).
    public func floats() -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        withExtendedLifetime(owner) { if rows > 0 { convert(rows: 0..<rows, into: result.storage.pointer) } }
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
                convert(rows: Int(index)..<(Int(index) + 1), into: result.storage.pointer + position * columns)
            }
        }
        return result
    }

    /// `output[r, n] = bias[n] + Σ_k input[r, k] · self[n, k]` for `input` `[rowCount, columns]` row-major.
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
            if rowCount <= Tensor.smallRowLimit {
                streamingMultiply(input: input, rowCount: rowCount, into: output)
                return
            }
            forEachTile { rows, tile in
                BLAS.sgemm(transposeA: .none, transposeB: .transposed, m: rowCount, n: rows.count, k: k,
                           a: input, lda: k, b: tile, ldb: k, beta: 1, c: output + rows.lowerBound, ldc: n)
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

    /// Calls `body` with consecutive ranges of rows and their float32 values (`[range.count, columns]`,
    /// valid during the call), in tiles of about ``tileValues``.
    private func forEachTile(_ body: (Range<Int>, UnsafePointer<Float>) -> Void) {
        let tileRows = Swift.max(1, Swift.min(rows, Self.tileValues / Swift.max(columns, 1)))
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
}

extension Tensor {
    /// `self · weightᵀ + bias` with a compact `[out, in]` weight (half precision or quantized),
    /// computed in float32.
    ///
    /// Differentiable with respect to the input (a frozen language model passes gradients back to
    /// the visual tokens during training); the weight is a constant.
    public func linear(weight: some CompactMatrix, bias: Tensor? = nil) -> Tensor {
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
