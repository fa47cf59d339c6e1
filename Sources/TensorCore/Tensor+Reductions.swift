// Reductions: sum, mean and max over dimensions or in total, and argmax. Each output element is
// accumulated by one thread in a fixed order, so results do not depend on the thread count.

extension Tensor {
    /// The sum over the given dimensions; they are kept with size 1 when `keepingDimensions` is true.
    public func sum(alongDimensions dimensions: [Int], keepingDimensions: Bool = false) -> Tensor {
        let axes = Set(dimensions.map { Tensor.normalize(dimension: $0, rank: rank) }).sorted(by: >)
        var keptShape = shape
        for axis in axes { keptShape[axis] = 1 }
        var result = withoutGradients { () -> Tensor in
            var current = self
            for axis in axes { current = current.sumKernel(axis: axis) }
            return current
        }
        if axes.isEmpty { result = withoutGradients { contiguous() } }
        let finalShape = keepingDimensions ? keptShape : shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
        result = Tensor(storage: result.storage, shape: finalShape, strides: Tensor.contiguousStrides(finalShape),
                        offset: result.offset)
        guard Tensor.gradientNeeds(self) != nil else { return result }
        let inputShape = shape, gradientShape = keptShape
        return result.recorded(from: [self]) { g in [g.reshaped(gradientShape).expanded(to: inputShape)] }
    }

    /// The sum over one dimension.
    public func sum(along dimension: Int, keepingDimensions: Bool = false) -> Tensor {
        sum(alongDimensions: [dimension], keepingDimensions: keepingDimensions)
    }

    /// The sum of all elements, as a scalar tensor.
    public func sum() -> Tensor {
        sum(alongDimensions: Array(0..<rank))
    }

    /// The mean over the given dimensions.
    public func mean(alongDimensions dimensions: [Int], keepingDimensions: Bool = false) -> Tensor {
        let axes = Set(dimensions.map { Tensor.normalize(dimension: $0, rank: rank) })
        let count = axes.reduce(1) { $0 * shape[$1] }
        return sum(alongDimensions: Array(axes), keepingDimensions: keepingDimensions).scaled(by: 1 / Float(count))
    }

    /// The mean over one dimension.
    public func mean(along dimension: Int, keepingDimensions: Bool = false) -> Tensor {
        mean(alongDimensions: [dimension], keepingDimensions: keepingDimensions)
    }

    /// The mean of all elements, as a scalar tensor.
    public func mean() -> Tensor { sum().scaled(by: 1 / Float(scalarCount)) }

    /// The largest value along `dimension`; the gradient goes to the first position holding it (as
    /// `torch.max(x, dim)`, whose index picks one element).
    ///
    /// - Precondition: the dimension is not empty.
    public func max(along dimension: Int, keepingDimensions: Bool = false) -> Tensor {
        let axis = Tensor.normalize(dimension: dimension, rank: rank)
        precondition(shape[axis] > 0, "max(along:): dimension \(dimension) of shape \(shape) is empty")
        let (values, indices) = maxKernel(axis: axis)
        var keptShape = shape
        keptShape[axis] = 1
        var finalShape = keptShape
        if !keepingDimensions { finalShape.remove(at: axis) }
        let result = Tensor(storage: values.storage, shape: finalShape, strides: Tensor.contiguousStrides(finalShape), offset: 0)
        guard Tensor.gradientNeeds(self) != nil else { return result }
        let inputShape = shape
        let n = shape[axis]
        let inner = Tensor.elementCount(Array(shape[(axis + 1)...]))
        return result.recorded(from: [self]) { g in
            var gradient = Tensor.zeros(inputShape)
            let source = g.contiguousStorage()
            withExtendedLifetime(source) {
                gradient.withUnsafeMutableScalars { out in
                    for (position, index) in indices.enumerated() {
                        let outerIndex = position / inner, innerIndex = position % inner
                        out[(outerIndex * n + index) * inner + innerIndex] += source.pointer[position]
                    }
                }
            }
            return [gradient]
        }
    }

    /// The largest element, as a scalar tensor.
    public func max() -> Tensor { reshaped([scalarCount]).max(along: 0) }

    /// The index of the largest value along `dimension` (the first one on ties), without the dimension.
    public func argmax(along dimension: Int) -> IndexTensor {
        let axis = Tensor.normalize(dimension: dimension, rank: rank)
        precondition(shape[axis] > 0, "argmax(along:): dimension \(dimension) of shape \(shape) is empty")
        let (_, indices) = maxKernel(axis: axis)
        var resultShape = shape
        resultShape.remove(at: axis)
        return IndexTensor(indices.map { Int32($0) }, shape: resultShape)
    }

    // MARK: - Kernels

    /// Sums one axis, keeping it with size 1 (not recorded).
    func sumKernel(axis: Int) -> Tensor {
        let outer = Tensor.elementCount(Array(shape[..<axis]))
        let n = shape[axis]
        let inner = Tensor.elementCount(Array(shape[(axis + 1)...]))
        var keptShape = shape
        keptShape[axis] = 1
        let result = Tensor(shape: keptShape, repeating: 0)
        let input = contiguousStorage()
        let output = SendablePointer(pointer: result.storage.pointer)
        withExtendedLifetime(input) {
            if inner == 1 {
                parallelRanges(outer, grain: Swift.max(1, 16384 / Swift.max(n, 1))) { range in
                    for o in range { output.pointer[o] = Tensor.sumContiguous(input.pointer + o * n, n) }
                }
            } else if outer >= ThreadSettings.shared.threadCount || inner < 256 {
                parallelRanges(outer, grain: Swift.max(1, 16384 / Swift.max(n * inner, 1))) { range in
                    for o in range {
                        let out = output.pointer + o * inner
                        for i in 0..<n {
                            let row = input.pointer + (o * n + i) * inner
                            for j in 0..<inner { out[j] += row[j] }
                        }
                    }
                }
            } else {
                // Few outer blocks (a bias gradient summing [rows, features] to [features]): split columns.
                for o in 0..<outer {
                    parallelRanges(inner, grain: 64) { columns in
                        let out = output.pointer + o * inner
                        for i in 0..<n {
                            let row = input.pointer + (o * n + i) * inner
                            for j in columns { out[j] += row[j] }
                        }
                    }
                }
            }
        }
        return result
    }

    /// The maximum along one axis and the (first) index of it, for each outer/inner position.
    func maxKernel(axis: Int) -> (values: Tensor, indices: [Int]) {
        let outer = Tensor.elementCount(Array(shape[..<axis]))
        let n = shape[axis]
        let inner = Tensor.elementCount(Array(shape[(axis + 1)...]))
        let values = Tensor(uninitializedShape: [outer * inner])
        var indices = [Int](repeating: 0, count: outer * inner)
        let input = contiguousStorage()
        withExtendedLifetime(input) {
            for o in 0..<outer {
                for j in 0..<inner {
                    var best = input.pointer[o * n * inner + j]
                    var bestIndex = 0
                    for i in 1..<Swift.max(n, 1) {
                        let value = input.pointer[(o * n + i) * inner + j]
                        if value > best || (value.isNaN && !best.isNaN) { best = value; bestIndex = i }
                    }
                    values.storage.pointer[o * inner + j] = best
                    indices[o * inner + j] = bestIndex
                }
            }
        }
        return (values, indices)
    }

    /// The sum of `count` contiguous floats with sixteen-lane partial sums.
    @inline(__always)
    static func sumContiguous(_ pointer: UnsafePointer<Float>, _ count: Int) -> Float {
        var accumulator = SIMD16<Float>.zero
        var index = 0
        let raw = UnsafeRawPointer(pointer)
        while index + 16 <= count {
            accumulator += raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            index += 16
        }
        var total = accumulator.sum()
        while index < count { total += pointer[index]; index += 1 }
        return total
    }

    /// The dot product of two contiguous float runs with sixteen-lane partial sums.
    @inline(__always)
    static func dotContiguous(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        var accumulator = SIMD16<Float>.zero
        var index = 0
        let rawA = UnsafeRawPointer(a), rawB = UnsafeRawPointer(b)
        while index + 16 <= count {
            accumulator += rawA.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
                * rawB.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            index += 16
        }
        var total = accumulator.sum()
        while index < count { total += a[index] * b[index]; index += 1 }
        return total
    }
}
