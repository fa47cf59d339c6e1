import CKernels
// Matrix products through OpenBLAS sgemm, with PyTorch's `torch.matmul` shape rules. Transposed views
// are passed to BLAS as transpose flags, never copied; batch dimensions broadcast.

extension Tensor {
    /// The matrix product, batched over leading dimensions, as `torch.matmul`.
    ///
    /// `self` is `[..., m, k]` and `other` is `[..., k, n]`; the result is `[..., m, n]` where the leading
    /// (batch) dimensions broadcast. A rank-1 operand is a row (left) or column (right) vector whose
    /// dimension is dropped from the result. Transposed views (`transposed()`, `permuted(_:)` of the last
    /// two dimensions) go to BLAS as flags without a copy.
    ///
    /// - Precondition: the inner dimensions agree and the batch dimensions broadcast.
    public func matmul(_ other: Tensor) -> Tensor {
        precondition(rank >= 1 && other.rank >= 1, "matmul: shapes \(shape) and \(other.shape) need rank 1 or more")
        if rank == 1 { return unsqueezed(0).matmul(other).squeezed(-2) }
        if other.rank == 1 { return matmul(other.unsqueezed(-1)).squeezed(-1) }
        let result = Tensor.matmulKernel(self, other)
        guard let needs = Tensor.gradientNeeds(self, other) else { return result }
        // Each operand is kept only for the other's gradient (a frozen weight keeps no activation alive).
        let shapeA = shape, shapeB = other.shape
        let a: Tensor? = needs[1] ? detached() : nil, b: Tensor? = needs[0] ? other.detached() : nil
        return result.recorded(from: [self, other]) { g in
            var gradientA: Tensor?
            var gradientB: Tensor?
            if let b { gradientA = Tensor.matmulKernel(g, b.transposed()).summed(toShape: shapeA) }
            if let a {
                if shapeB.count == 2 && a.rank > 2 {
                    // Weights shared over a batch: one GEMM over all rows instead of a batch then a sum.
                    let rowsA = a.reshaped([-1, a.shape[a.rank - 1]])
                    let rowsG = g.reshaped([-1, g.shape[g.rank - 1]])
                    gradientB = Tensor.matmulKernel(rowsA.transposed(), rowsG)
                } else {
                    gradientB = Tensor.matmulKernel(a.transposed(), g).summed(toShape: shapeB)
                }
            }
            return [gradientA, gradientB]
        }
    }

    /// `self · weightᵀ + bias`, a fully connected layer with PyTorch's `[out, in]` weight layout
    /// (`F.linear`) on `[..., in]` inputs. The transpose is a BLAS flag, not a copy, and the bias is
    /// folded into the GEMM (the output starts as the bias rows, `beta = 1`).
    ///
    /// - Precondition: `weight` is `[out, in]` with `in` equal to the last dimension, and `bias` is `[out]`.
    public func linear(weight: Tensor, bias: Tensor? = nil) -> Tensor {
        guard let bias else { return matmul(weight.transposed()) }
        precondition(rank >= 1 && weight.rank == 2 && weight.shape[1] == shape[rank - 1],
                     "linear: weight \(weight.shape) does not map inputs of shape \(shape) (it must be [out, \(shape.last ?? 0)])")
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        precondition(bias.shape == [outFeatures], "linear: bias \(bias.shape) must be [\(outFeatures)] for weight \(weight.shape)")
        let input = contiguous()
        let rows = inFeatures == 0 ? Tensor.elementCount(Array(shape.dropLast())) : input.scalarCount / inFeatures
        var result = Tensor(uninitializedShape: Array(shape.dropLast()) + [outFeatures])
        let biasValues = bias.contiguousStorage()
        var transposedWeight = weight.transposed()
        if Tensor.matrixLayout(transposedWeight) == nil { transposedWeight = withoutGradients { transposedWeight.contiguous() } }
        let layout = Tensor.matrixLayout(transposedWeight)!
        withExtendedLifetime((biasValues, input.storage, transposedWeight.storage)) {
            // The bias rows, split across threads for large outputs (a serial copy was 5 % of the
            // SigLIP encoder's time on two threads).
            let output = SendablePointer(pointer: result.storage.pointer), biasRow = UncheckedSendable(biasValues.pointer)
            parallelRanges(rows, grain: Swift.max(1, (1 << 16) / Swift.max(outFeatures, 1))) { range in
                for row in range { (output.pointer + row * outFeatures).update(from: biasRow.value, count: outFeatures) }
            }
            if rows <= Tensor.smallRowLimit && outFeatures > 0 && inFeatures > 0
                && Tensor.smallRowsProduct(input.storage.pointer + input.offset, lda: inFeatures, rows: rows, transposedWeight,
                                           layout: layout, k: inFeatures, n: outFeatures, into: result.storage.pointer) {
                // A few rows (decoding): done by the row-independent kernels, each weight read once.
            } else if rows == 1 && outFeatures > 0 && inFeatures > 0 {
                // One row (single-token decoding): a matrix-vector product reads the weight once.
                Tensor.rowTimesMatrix(
                    input.storage.pointer + input.offset, incrementX: 1, transposedWeight, layout: layout,
                    k: inFeatures, n: outFeatures, beta: 1, into: result.storage.pointer)
            } else if rows > 0 && outFeatures > 0 && inFeatures > 0 {
                BLAS.sgemm(
                    transposeA: .none, transposeB: layout.transpose, m: rows, n: outFeatures, k: inFeatures,
                    a: input.storage.pointer + input.offset, lda: inFeatures,
                    b: transposedWeight.storage.pointer + transposedWeight.offset, ldb: layout.leading,
                    beta: 1, c: result.storage.pointer, ldc: outFeatures)
            }
        }
        result.node = nil
        guard let needs = Tensor.gradientNeeds(input, weight, bias) else { return result }
        // The input is kept only for the weight's gradient, the weight only for the input's: a frozen
        // layer (a surrogate language model in CRAFT training) keeps none of its inputs alive.
        let inputShape = input.shape
        let x: Tensor? = needs[1] ? input.detached() : nil, w: Tensor? = needs[0] ? weight.detached() : nil
        return result.recorded(from: [input, weight, bias]) { g in
            let rowsG = g.reshaped([rows, outFeatures])
            return [
                w.map { Tensor.matmulKernel(rowsG, $0).reshaped(inputShape) },
                x.map { Tensor.matmulKernel(rowsG.transposed(), $0.reshaped([rows, inFeatures])) },
                needs[2] ? rowsG.sumKernel(axis: 0).reshaped([outFeatures]) : nil,
            ]
        }
    }

    /// How BLAS reads the last two dimensions of a view: as stored or transposed, and the leading
    /// dimension; `nil` when the view is neither (it then needs a copy).
    static func matrixLayout(_ tensor: Tensor) -> (transpose: BLAS.Transpose, leading: Int)? {
        let rows = tensor.shape[tensor.rank - 2], columns = tensor.shape[tensor.rank - 1]
        let rowStride = tensor.strides[tensor.rank - 2], columnStride = tensor.strides[tensor.rank - 1]
        if (columnStride == 1 || columns == 1) && (rows == 1 || rowStride >= Swift.max(columns, 1)) {
            return (.none, rows == 1 ? Swift.max(columns, 1) : rowStride)
        }
        if (rowStride == 1 || rows == 1) && (columns == 1 || columnStride >= Swift.max(rows, 1)) {
            return (.transposed, columns == 1 ? Swift.max(rows, 1) : columnStride)
        }
        return nil
    }

    /// The product without recording.
    static func matmulKernel(_ lhs: Tensor, _ rhs: Tensor) -> Tensor {
        let m = lhs.shape[lhs.rank - 2], k = lhs.shape[lhs.rank - 1]
        let k2 = rhs.shape[rhs.rank - 2], n = rhs.shape[rhs.rank - 1]
        precondition(k == k2, "matmul: inner dimensions of \(lhs.shape) and \(rhs.shape) differ (\(k) and \(k2))")
        let batchA = Array(lhs.shape.dropLast(2)), batchB = Array(rhs.shape.dropLast(2))

        // One GEMM when the right side is a single matrix and the left side's rows fold into one matrix.
        if batchB.isEmpty && !batchA.isEmpty && lhs.isContiguous {
            let rows = lhs.reshapedRowsView(k)
            let product = matmulKernel(rows, rhs)
            return Tensor(storage: product.storage, shape: batchA + [m, n],
                          strides: contiguousStrides(batchA + [m, n]), offset: 0)
        }

        let batchShape = broadcastShape(batchA, batchB)
        var a = lhs, b = rhs
        if matrixLayout(a) == nil { a = withoutGradients { lhs.contiguous() } }
        if matrixLayout(b) == nil { b = withoutGradients { rhs.contiguous() } }
        let layoutA = matrixLayout(a)!, layoutB = matrixLayout(b)!
        // sgemm with beta = 0 writes every element of C, so C need not be initialised (k = 0 aside).
        let result = k == 0 ? Tensor(shape: batchShape + [m, n], repeating: 0) : Tensor(uninitializedShape: batchShape + [m, n])
        if m == 0 || n == 0 || k == 0 { return result }
        if batchShape.isEmpty && m <= smallRowLimit && layoutA.transpose == .none {
            // A few rows (decoding): row-independent kernels, so each row's bits do not depend on
            // how many rows are multiplied together.
            result.storage.pointer.initialize(repeating: 0, count: m * n)
            let done = withExtendedLifetime((a.storage, b.storage)) {
                smallRowsProduct(a.storage.pointer + a.offset, lda: layoutA.leading, rows: m, b, layout: layoutB, k: k, n: n,
                                 into: result.storage.pointer)
            }
            if done { return result }
        }
        if m == 1 && batchShape.isEmpty {
            // A single row times a matrix: sgemv (see `BLAS.sgemv` for why not sgemm).
            withExtendedLifetime((a.storage, b.storage)) {
                rowTimesMatrix(
                    a.storage.pointer + a.offset, incrementX: layoutA.transpose == .none ? 1 : layoutA.leading,
                    b, layout: layoutB, k: k, n: n, beta: 0, into: result.storage.pointer)
            }
            return result
        }
        let stridesA = Array(a.broadcastStrides(to: batchShape + [m, k]).dropLast(2))
        let stridesB = Array(b.broadcastStrides(to: batchShape + [k, n]).dropLast(2))
        let batches = elementCount(batchShape)
        var index = [Int](repeating: 0, count: batchShape.count)
        withExtendedLifetime((a.storage, b.storage)) {
            for batch in 0..<batches {
                var offsetA = a.offset, offsetB = b.offset
                for dimension in batchShape.indices {
                    offsetA += index[dimension] * stridesA[dimension]
                    offsetB += index[dimension] * stridesB[dimension]
                }
                BLAS.sgemm(
                    transposeA: layoutA.transpose, transposeB: layoutB.transpose, m: m, n: n, k: k,
                    a: a.storage.pointer + offsetA, lda: layoutA.leading,
                    b: b.storage.pointer + offsetB, ldb: layoutB.leading,
                    c: result.storage.pointer + batch * m * n, ldc: n)
                var dimension = batchShape.count - 1
                while dimension >= 0 {
                    index[dimension] += 1
                    if index[dimension] < batchShape[dimension] { break }
                    index[dimension] = 0
                    dimension -= 1
                }
            }
        }
        return result
    }

    /// The most rows multiplied by the row-independent kernels (``smallRowsProduct``): a decoding
    /// batch of up to this many sequences gets, for each sequence, the bits it gets alone.
    public static let smallRowLimit = 8

    /// `y[i, :] += x[i, :] · B` for `rows` rows of `x` (row stride `lda`) and a rank-2 view `B` with
    /// BLAS layout `layout`, through Craft's matrix-vector kernels (`Sources/CKernels`): every output
    /// is one dot product summed in a fixed order whatever `rows` is or how threads split the work.
    /// Returns false, doing nothing, when `B`'s rows are not dense (the caller uses BLAS then).
    static func smallRowsProduct(
        _ x: UnsafePointer<Float>, lda: Int, rows: Int, _ b: Tensor, layout: (transpose: BLAS.Transpose, leading: Int),
        k: Int, n: Int, into y: UnsafeMutablePointer<Float>
    ) -> Bool {
        let base = UnsafePointer(b.storage.pointer + b.offset)
        let out = SendablePointer(pointer: y)
        if layout.transpose == .transposed {
            // B is stored [n, k]: output n is row n's dot product with x.
            guard layout.leading == k || n == 1 else { return false }
            parallelRanges(n, grain: Swift.max(1, 16384 / Swift.max(k, 1))) { range in
                craft_float_matvec(base, k, range.lowerBound, range.upperBound, x, rows, lda, out.pointer, n)
            }
        } else {
            // B is stored [k, n] (GPT-2's Conv1D): outputs accumulate over k in order.
            guard layout.leading == n || k == 1 else { return false }
            parallelRanges(n, grain: Swift.max(64, 16384 / Swift.max(k, 1))) { range in
                craft_float_vecmat(base, k, n, range.lowerBound, range.upperBound, x, rows, lda, out.pointer, n)
            }
        }
        return true
    }

    /// `y[n] = x[k] · B[k, n] + beta · y` for a rank-2 view `B` with BLAS layout `layout` (the view's
    /// last two dimensions as stored or transposed), through sgemv.
    static func rowTimesMatrix(
        _ x: UnsafePointer<Float>, incrementX: Int, _ b: Tensor, layout: (transpose: BLAS.Transpose, leading: Int),
        k: Int, n: Int, beta: Float, into y: UnsafeMutablePointer<Float>
    ) {
        let base = b.storage.pointer + b.offset
        if layout.transpose == .transposed {
            // B is stored as an [n, k] matrix (row stride `leading`): y = stored · x.
            BLAS.sgemv(transpose: .none, rows: n, columns: k, a: base, lda: layout.leading, x: x, incrementX: incrementX,
                       beta: beta, y: y, incrementY: 1)
        } else {
            // B is stored as [k, n]: y = storedᵀ · x.
            BLAS.sgemv(transpose: .transposed, rows: k, columns: n, a: base, lda: layout.leading, x: x, incrementX: incrementX,
                       beta: beta, y: y, incrementY: 1)
        }
    }

    /// A contiguous tensor viewed as `[rows, columns]` (no recording, no copy).
    private func reshapedRowsView(_ columns: Int) -> Tensor {
        let rows = columns == 0 ? elementCount(Array(shape.dropLast())) : scalarCount / columns
        return Tensor(storage: storage, shape: [rows, columns], strides: [columns, 1], offset: offset)
    }

    private func elementCount(_ shape: [Int]) -> Int { Tensor.elementCount(shape) }
}
