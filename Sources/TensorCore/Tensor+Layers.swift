// Neural-network building blocks with fused kernels: softmax and log-softmax, layer norm, RMS norm,
// row gather (embeddings), cross-entropy and mean-squared error. Semantics follow torch.nn.functional
// (softmax, log_softmax, layer_norm, transformers' LlamaRMSNorm, embedding, cross_entropy, mse_loss).
import CKernels
import Foundation

extension Tensor {
    // MARK: - Softmax

    /// `exp(x) / sum(exp(x))` along `dimension` (default the last), computed with the maximum subtracted.
    public func softmax(along dimension: Int = -1) -> Tensor {
        let axis = Tensor.normalize(dimension: dimension, rank: rank)
        if axis != rank - 1 { return transposed(axis, -1).softmax(along: -1).transposed(axis, -1) }
        let n = shape[axis]
        let result = mapLastDimensionRowRanges { x, y, rows, n in craft_softmax_rows(x, y, rows, n) }
        guard Tensor.gradientNeeds(self) != nil else { return result }
        let probabilities = result
        return result.recorded(from: [self]) { g in
            // dx = y ⊙ (g − Σ g ⊙ y)
            [Tensor.rowKernel(g, probabilities, n: n) { g, y, dx, n in
                let dot = Tensor.dotContiguous(g, y, n)
                for i in 0..<n { dx[i] = y[i] * (g[i] - dot) }
            }]
        }
    }

    /// `x − log(sum(exp(x)))` along `dimension` (default the last), computed stably.
    public func logSoftmax(along dimension: Int = -1) -> Tensor {
        let axis = Tensor.normalize(dimension: dimension, rank: rank)
        if axis != rank - 1 { return transposed(axis, -1).logSoftmax(along: -1).transposed(axis, -1) }
        let n = shape[axis]
        let result = mapLastDimensionRows { x, y, n in
            let shift = Tensor.logSumExp(x, n)
            for i in 0..<n { y[i] = x[i] - shift }
        }
        guard Tensor.gradientNeeds(self) != nil else { return result }
        let logProbabilities = result
        return result.recorded(from: [self]) { g in
            // dx = g − exp(y) Σ g
            [Tensor.rowKernel(g, logProbabilities, n: n) { g, y, dx, n in
                let total = Tensor.sumContiguous(g, n)
                Tensor.scaledExponentials(y, shift: 0, scale: -total, dx, n)
                for i in 0..<n { dx[i] += g[i] }
            }]
        }
    }

    /// A new tensor of the same shape whose rows along the last dimension are `row(x, y, n)` of this
    /// tensor's rows (`x` in, `y` out, `n` values each), computed in parallel; no gradient is recorded.
    func mapLastDimensionRows(
        _ row: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    ) -> Tensor {
        mapLastDimensionRowRanges { x, y, rows, n in
            for index in 0..<rows { row(x + index * n, y + index * n, n) }
        }
    }

    /// As ``mapLastDimensionRows(_:)`` with `rows(x, y, count, n)` given runs of `count` consecutive
    /// rows (for the C kernels, which take several rows per call).
    func mapLastDimensionRowRanges(
        _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int) -> Void
    ) -> Tensor {
        let n = shape.last ?? 1
        let rows = n == 0 ? 0 : scalarCount / n
        let result = Tensor(uninitializedShape: shape)
        let input = contiguousStorage()
        let output = SendablePointer(pointer: result.storage.pointer)
        withExtendedLifetime(input) {
            parallelRanges(rows, grain: Swift.max(1, 8192 / Swift.max(n, 1))) { range in
                body(input.pointer + range.lowerBound * n, output.pointer + range.lowerBound * n, range.count, n)
            }
        }
        return result
    }

    /// The largest of `count` contiguous floats (−∞ when empty; NaN if any is NaN is not guaranteed).
    @inline(__always)
    static func maximumContiguous(_ pointer: UnsafePointer<Float>, _ count: Int) -> Float {
        var best = Vector(repeating: -.infinity)
        var index = 0
        let raw = UnsafeRawPointer(pointer)
        while index + 16 <= count {
            let value = raw.loadUnaligned(fromByteOffset: index * 4, as: Vector.self)
            best.replace(with: value, where: value .> best)
            index += 16
        }
        var result = best.max()
        while index < count { result = Swift.max(result, pointer[index]); index += 1 }
        return result
    }

    /// `log Σ exp(x)` over a contiguous row, with the maximum subtracted, 16 lanes at a time.
    @inline(__always)
    static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let maximum = maximumContiguous(x, n)
        if maximum == -.infinity || maximum == .infinity { return maximum }
        let shift = Vector(repeating: maximum)
        let source = UnsafeRawPointer(x)
        var sums = Vector(repeating: 0)
        var index = 0
        while index + 16 <= n {
            sums += VectorMath.exp(source.loadUnaligned(fromByteOffset: index * 4, as: Vector.self) - shift)
            index += 16
        }
        var total = sums.sum()
        while index < n { total += Foundation.exp(x[index] - maximum); index += 1 }
        return maximum + Foundation.log(total)
    }

    /// `out[i] = exp(x[i] − shift) · scale` over a contiguous row, 16 lanes at a time.
    @inline(__always)
    static func scaledExponentials(
        _ x: UnsafePointer<Float>, shift: Float, scale: Float, _ out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let shiftVector = Vector(repeating: shift), scaleVector = Vector(repeating: scale)
        let source = UnsafeRawPointer(x), destination = UnsafeMutableRawPointer(out)
        var index = 0
        while index + 16 <= n {
            let value = VectorMath.exp(source.loadUnaligned(fromByteOffset: index * 4, as: Vector.self) - shiftVector) * scaleVector
            destination.storeBytes(of: value, toByteOffset: index * 4, as: Vector.self)
            index += 16
        }
        while index < n { out[index] = Foundation.exp(x[index] - shift) * scale; index += 1 }
    }

    /// Applies `body(a_row, b_row, out_row, n)` to corresponding rows of two same-shape tensors.
    static func rowKernel(
        _ a: Tensor, _ b: Tensor, n: Int,
        _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    ) -> Tensor {
        precondition(a.shape == b.shape, "TensorCore internal error: row kernel shapes \(a.shape) and \(b.shape)")
        let result = Tensor(uninitializedShape: a.shape)
        let rows = n == 0 ? 0 : a.scalarCount / n
        let x = a.contiguousStorage(), y = b.contiguousStorage()
        let output = SendablePointer(pointer: result.storage.pointer)
        withExtendedLifetime((x, y)) {
            withoutActuallyEscaping(body) { body in
                parallelRanges(rows, grain: Swift.max(1, 8192 / Swift.max(n, 1))) { range in
                    for row in range { body(x.pointer + row * n, y.pointer + row * n, output.pointer + row * n, n) }
                }
            }
        }
        return result
    }

    // MARK: - Normalisation

    /// Layer normalisation over the last dimension, as `F.layer_norm(x, [D], weight, bias, eps)`.
    ///
    /// `(x − mean) / sqrt(var + eps) · weight + bias` with the biased variance.
    /// - Parameters:
    ///   - weight: `[D]` scale, or `nil` for none.
    ///   - bias: `[D]` shift, or `nil` for none.
    ///   - epsilon: added to the variance (PyTorch's default is 1e-5; SigLIP uses 1e-6).
    public func layerNorm(weight: Tensor?, bias: Tensor?, epsilon: Float = 1e-5) -> Tensor {
        normalized(weight: weight, bias: bias, epsilon: epsilon, centered: true)
    }

    /// Root-mean-square normalisation over the last dimension, as transformers' `LlamaRMSNorm`:
    /// `weight · x / sqrt(mean(x²) + eps)`.
    public func rmsNorm(weight: Tensor?, epsilon: Float = 1e-6) -> Tensor {
        normalized(weight: weight, bias: nil, epsilon: epsilon, centered: false)
    }

    private func normalized(weight: Tensor?, bias: Tensor?, epsilon: Float, centered: Bool) -> Tensor {
        precondition(rank >= 1, "layerNorm/rmsNorm: a scalar has no dimension to normalise")
        let n = shape[rank - 1]
        for parameter in [weight, bias].compactMap({ $0 }) {
            precondition(parameter.shape == [n], "layerNorm/rmsNorm: parameter shape \(parameter.shape) differs from [\(n)] for input \(shape)")
        }
        let rows = n == 0 ? 0 : scalarCount / n
        let result = Tensor(uninitializedShape: shape)
        // Per row: mean (0 for RMS norm) and the reciprocal standard deviation, saved for the backward pass.
        let statistics = Tensor(uninitializedShape: [rows, 2])
        let input = contiguousStorage()
        let gamma = weight?.contiguous(), beta = bias?.contiguous()
        let output = SendablePointer(pointer: result.storage.pointer), stats = SendablePointer(pointer: statistics.storage.pointer)
        withExtendedLifetime((input, gamma, beta)) {
            let w = gamma.map { UnsafePointer($0.storage.pointer + $0.offset) }
            let b = beta.map { UnsafePointer($0.storage.pointer + $0.offset) }
            parallelRanges(rows, grain: Swift.max(1, 8192 / Swift.max(n, 1))) { range in
                let x = input.pointer + range.lowerBound * n, y = output.pointer + range.lowerBound * n
                let rowStatistics = stats.pointer + 2 * range.lowerBound
                if centered {
                    craft_layer_norm_rows(x, y, range.count, n, w, b, epsilon, rowStatistics)
                } else {
                    craft_rms_norm_rows(x, y, range.count, n, w, epsilon, rowStatistics)
                }
            }
        }
        let inputs = [self] + [weight, bias].compactMap { $0 }
        guard inputs.contains(where: { $0.node != nil }), GradientRecording.isEnabled else { return result }
        let x = detached(), savedWeight = gamma?.detached()
        let needsInput = node != nil, needsWeight = weight?.node != nil, needsBias = bias?.node != nil
        let hasWeight = weight != nil, hasBias = bias != nil
        let shape = self.shape
        return result.recorded(from: inputs) { g in
            // x̂ = (x − mean)·rstd; with ĝ = g·w: dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) (mean(ĝ) term only
            // when centred); dw = Σ_rows g·x̂; db = Σ_rows g.
            let normalizedInput = Tensor.rowKernelWithStatistics(x, statistics, n: n, outColumns: n) { x, mean, rstd, out, n in
                for i in 0..<n { out[i] = (x[i] - mean) * rstd }
            }.reshaped(shape)
            var gradients: [Tensor?] = []
            if needsInput {
                let scaledGradient = savedWeight.map { g * $0 } ?? g
                let combined = Tensor.concatenatedRows(scaledGradient, normalizedInput, n: n)
                let dx = Tensor.rowKernelWithStatistics(combined, statistics, n: 2 * n, outColumns: n) { pair, _, rstd, out, twoN in
                    let n = twoN / 2
                    let gh = pair, xh = pair + n
                    let meanG = centered ? Tensor.sumContiguous(gh, n) / Float(n) : 0
                    let meanGX = Tensor.dotContiguous(gh, xh, n) / Float(n)
                    for i in 0..<n { out[i] = rstd * (gh[i] - meanG - xh[i] * meanGX) }
                }
                gradients.append(Tensor(storage: dx.storage, shape: shape, strides: Tensor.contiguousStrides(shape), offset: 0))
            } else {
                gradients.append(nil)
            }
            if hasWeight {
                gradients.append(needsWeight ? (g * normalizedInput).reshaped([rows, n]).sumKernel(axis: 0).reshaped([n]) : nil)
            }
            if hasBias {
                gradients.append(needsBias ? g.reshaped([rows, n]).sumKernel(axis: 0).reshaped([n]) : nil)
            }
            return gradients
        }
    }

    /// Applies `body(row, mean, rstd, out, n)` to each `n`-wide row of `x` with its saved statistics,
    /// writing `outColumns` values per row.
    private static func rowKernelWithStatistics(
        _ x: Tensor, _ statistics: Tensor, n: Int, outColumns: Int,
        _ body: (UnsafePointer<Float>, Float, Float, UnsafeMutablePointer<Float>, Int) -> Void
    ) -> Tensor {
        let rows = statistics.shape[0]
        let result = Tensor(uninitializedShape: [rows, outColumns])
        let input = x.contiguousStorage()
        let output = SendablePointer(pointer: result.storage.pointer)
        let stats = statistics.storage.pointer
        withExtendedLifetime((input, statistics)) {
            withoutActuallyEscaping(body) { body in
                parallelRanges(rows, grain: Swift.max(1, 8192 / Swift.max(n, 1))) { range in
                    for row in range {
                        body(input.pointer + row * n, stats[2 * row], stats[2 * row + 1], output.pointer + row * outColumns, n)
                    }
                }
            }
        }
        return result
    }

    /// Rows of `a` and `b` (each `n` wide) placed side by side as `[rows, 2n]`.
    private static func concatenatedRows(_ a: Tensor, _ b: Tensor, n: Int) -> Tensor {
        let rows = n == 0 ? 0 : a.scalarCount / n
        return Tensor.concatenated([a.reshaped([rows, n]), b.reshaped([rows, n])], along: 1)
    }

    // MARK: - Gather

    /// The rows of this `[V, D]` table picked by `indices`, shaped `indices.shape + [D]` (`F.embedding`).
    ///
    /// The gradient adds each output row's gradient into the row it came from (repeated indices sum).
    /// - Throws: ``TensorError`` with code `indexOutOfRange` when an index is negative or not below `V`.
    public func rows(at indices: IndexTensor) throws(TensorError) -> Tensor {
        precondition(rank == 2, "rows(at:): the table must be [rows, columns], not \(shape)")
        let (vocabulary, width) = (shape[0], shape[1])
        for (position, index) in indices.scalars.enumerated() where index < 0 || Int(index) >= vocabulary {
            throw TensorError(.indexOutOfRange,
                              "index \(index) at position \(position) is outside the table's \(vocabulary) rows; check the token or code ids against the model's vocabulary size")
        }
        let result = Tensor(uninitializedShape: indices.shape + [width])
        let table = contiguousStorage()
        withExtendedLifetime(table) {
            for (position, index) in indices.scalars.enumerated() {
                (result.storage.pointer + position * width).update(from: table.pointer + Int(index) * width, count: width)
            }
        }
        guard Tensor.gradientNeeds(self) != nil else { return result }
        let tableShape = shape
        return result.recorded(from: [self]) { g in
            var gradient = Tensor.zeros(tableShape)
            let source = g.contiguousStorage()
            withExtendedLifetime(source) {
                gradient.withUnsafeMutableScalars { out in
                    for (position, index) in indices.scalars.enumerated() {
                        let row = out.baseAddress! + Int(index) * width, from = source.pointer + position * width
                        for column in 0..<width { row[column] += from[column] }
                    }
                }
            }
            return [gradient]
        }
    }

    // MARK: - Losses

    /// Mean cross-entropy of `logits` `[..., C]` against integer `targets` `[...]`, skipping targets equal
    /// to `ignoreIndex`, as `F.cross_entropy(logits, targets, ignore_index=-100)` (reduction "mean").
    ///
    /// The mean is over the targets that are not ignored; when every target is ignored the result is NaN,
    /// as in PyTorch.
    /// - Throws: ``TensorError`` when a target is neither `ignoreIndex` nor in `0..<C`, or the shapes differ.
    public static func crossEntropy(logits: Tensor, targets: IndexTensor, ignoreIndex: Int32 = -100) throws(TensorError) -> Tensor {
        precondition(logits.rank >= 1, "crossEntropy: logits need a class dimension, got shape \(logits.shape)")
        let classes = logits.shape[logits.rank - 1]
        guard Array(logits.shape.dropLast()) == targets.shape else {
            throw TensorError(.invalidShape,
                              "cross-entropy targets have shape \(targets.shape) but logits \(logits.shape) need \(Array(logits.shape.dropLast())); pass one target per row of logits")
        }
        var valid = 0
        for (position, target) in targets.scalars.enumerated() where target != ignoreIndex {
            guard target >= 0 && Int(target) < classes else {
                throw TensorError(.indexOutOfRange,
                                  "cross-entropy target \(target) at position \(position) is outside 0..<\(classes) and is not the ignore index \(ignoreIndex); check the labels against the number of classes")
            }
            valid += 1
        }
        let rows = targets.scalarCount
        let input = logits.contiguousStorage()
        // Per-row losses in parallel, then summed in row order (the same bits for any thread count).
        let losses = Tensor(shape: [rows], repeating: 0)
        let lossPointer = SendablePointer(pointer: losses.storage.pointer)
        targets.scalars.withUnsafeBufferPointer { labels in
            withExtendedLifetime(input) {
                parallelRanges(rows, grain: Swift.max(1, 65536 / Swift.max(classes, 1))) { range in
                    for row in range where labels[row] != ignoreIndex {
                        let x = input.pointer + row * classes
                        lossPointer.pointer[row] = logSumExp(x, classes) - x[Int(labels[row])]
                    }
                }
            }
        }
        var total: Double = 0
        for row in 0..<rows { total += Double(losses.storage.pointer[row]) }
        let result = Tensor(Float(total / Double(valid)))
        guard Tensor.gradientNeeds(logits) != nil else { return result }
        let savedLogits = logits.detached(), validCount = valid
        return result.recorded(from: [logits]) { g in
            let scale = g.scalar / Float(validCount)
            let gradient = Tensor.zeros(savedLogits.shape)
            let source = savedLogits.contiguousStorage()
            let output = SendablePointer(pointer: gradient.storage.pointer)
            targets.scalars.withUnsafeBufferPointer { labels in
                withExtendedLifetime(source) {
                    parallelRanges(rows, grain: Swift.max(1, 65536 / Swift.max(classes, 1))) { range in
                        for row in range where labels[row] != ignoreIndex {
                            let x = source.pointer + row * classes, dx = output.pointer + row * classes
                            scaledExponentials(x, shift: logSumExp(x, classes), scale: scale, dx, classes)
                            dx[Int(labels[row])] -= scale
                        }
                    }
                }
            }
            return [gradient]
        }
    }

    /// The mean of squared differences, as `F.mse_loss(prediction, target)` (reduction "mean").
    ///
    /// - Precondition: the shapes are equal.
    public static func meanSquaredError(_ prediction: Tensor, _ target: Tensor) -> Tensor {
        precondition(prediction.shape == target.shape,
                     "meanSquaredError: prediction shape \(prediction.shape) differs from target shape \(target.shape)")
        return (prediction - target).squared().mean()
    }
}
