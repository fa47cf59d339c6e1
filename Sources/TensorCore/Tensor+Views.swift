// Shape operations. Reshape of contiguous data, transpose, permute, slice, squeeze, unsqueeze and expand
// are views (no copy); their gradients map the output gradient back through the inverse view.

extension Tensor {
    /// This tensor laid out contiguously: itself when it already is, otherwise a copy.
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        var result = Tensor(storage: contiguousCopyStorage(), shape: shape, strides: Tensor.contiguousStrides(shape), offset: 0)
        result.node = nil
        guard Tensor.gradientNeeds(self) != nil else { return result }
        return result.recorded(from: [self]) { gradient in [gradient] }
    }

    /// The same elements with a new shape (a view when the tensor is contiguous, a copy otherwise).
    ///
    /// One dimension may be `-1` and is then inferred.
    /// - Precondition: the shapes hold the same number of elements.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        precondition(inferred.count <= 1, "reshaped: shape \(newShape) has more than one -1")
        if let position = inferred.first {
            let known = newShape.enumerated().filter { $0.offset != position }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && scalarCount % known == 0,
                         "reshaped: cannot infer -1 in \(newShape) for \(scalarCount) elements (shape \(shape))")
            resolved[position] = scalarCount / known
        }
        Tensor.checkShape(resolved)
        precondition(Tensor.elementCount(resolved) == scalarCount,
                     "reshaped: shape \(shape) (\(scalarCount) elements) cannot become \(newShape)")
        if resolved == shape { return self }
        let source = isContiguous ? self : contiguous()
        let result = Tensor(storage: source.storage, shape: resolved, strides: Tensor.contiguousStrides(resolved),
                            offset: source.offset)
        guard Tensor.gradientNeeds(source) != nil else { return result }
        let inputShape = shape
        return result.recorded(from: [source]) { gradient in [gradient.reshaped(inputShape)] }
    }

    /// The dimensions reordered: result dimension `i` is this tensor's dimension `order[i]` (a view).
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.count == rank, "permuted: order \(order) does not list the \(rank) dimensions of \(shape)")
        let resolved = order.map { Tensor.normalize(dimension: $0, rank: rank) }
        precondition(Set(resolved).count == rank, "permuted: order \(order) repeats a dimension")
        let result = Tensor(storage: storage, shape: resolved.map { shape[$0] }, strides: resolved.map { strides[$0] },
                            offset: offset)
        guard Tensor.gradientNeeds(self) != nil else { return result }
        var inverse = [Int](repeating: 0, count: rank)
        for (position, dimension) in resolved.enumerated() { inverse[dimension] = position }
        let inverseOrder = inverse
        return result.recorded(from: [self]) { gradient in [gradient.permuted(inverseOrder)] }
    }

    /// Two dimensions swapped (a view); by default the last two, i.e. the matrix transpose.
    public func transposed(_ first: Int = -2, _ second: Int = -1) -> Tensor {
        precondition(rank >= 2, "transposed: a tensor of shape \(shape) has no two dimensions to swap")
        let a = Tensor.normalize(dimension: first, rank: rank)
        let b = Tensor.normalize(dimension: second, rank: rank)
        var order = Array(0..<rank)
        order.swapAt(a, b)
        return permuted(order)
    }

    /// The elements whose index along `dimension` lies in `range` (a view).
    public func sliced(along dimension: Int, _ range: Range<Int>) -> Tensor {
        let axis = Tensor.normalize(dimension: dimension, rank: rank)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[axis],
                     "sliced: range \(range) is outside 0..<\(shape[axis]) of dimension \(dimension) in shape \(shape)")
        var newShape = shape
        newShape[axis] = range.count
        let result = Tensor(storage: storage, shape: newShape, strides: strides,
                            offset: offset + range.lowerBound * strides[axis])
        guard Tensor.gradientNeeds(self) != nil else { return result }
        let inputShape = shape
        return result.recorded(from: [self]) { gradient in
            [Tensor.padded(gradient, along: axis, to: inputShape, at: range.lowerBound)]
        }
    }

    /// The tensor broadcast to `newShape` (a view with stride 0 along repeated dimensions).
    ///
    /// Follows NumPy rules: dimensions align from the end; a dimension of size 1 (or a missing leading
    /// one) repeats. The gradient sums over the repeated dimensions.
    public func expanded(to newShape: [Int]) -> Tensor {
        precondition(newShape.count >= rank, "expanded: cannot broadcast shape \(shape) to the lower-rank \(newShape)")
        if newShape == shape { return self }
        let lead = newShape.count - rank
        var newStrides = [Int](repeating: 0, count: newShape.count)
        for index in 0..<rank {
            let target = newShape[lead + index]
            if shape[index] == target {
                newStrides[lead + index] = strides[index]
            } else {
                precondition(shape[index] == 1, "expanded: cannot broadcast shape \(shape) to \(newShape)")
            }
        }
        let result = Tensor(storage: storage, shape: newShape, strides: newStrides, offset: offset)
        guard Tensor.gradientNeeds(self) != nil else { return result }
        let inputShape = shape
        return result.recorded(from: [self]) { gradient in [gradient.summed(toShape: inputShape)] }
    }

    /// A dimension of size 1 inserted at `dimension` (a view; `-1` appends).
    public func unsqueezed(_ dimension: Int) -> Tensor {
        let position = Tensor.normalize(dimension: dimension, rank: rank + 1)
        var newShape = shape
        newShape.insert(1, at: position)
        return reshapedView(newShape, stridesInserting: position)
    }

    /// The dimension `dimension`, which must have size 1, removed (a view).
    public func squeezed(_ dimension: Int) -> Tensor {
        let axis = Tensor.normalize(dimension: dimension, rank: rank)
        precondition(shape[axis] == 1, "squeezed: dimension \(dimension) of shape \(shape) has size \(shape[axis]), not 1")
        var newShape = shape
        newShape.remove(at: axis)
        var newStrides = strides
        newStrides.remove(at: axis)
        let result = Tensor(storage: storage, shape: newShape, strides: newStrides, offset: offset)
        guard Tensor.gradientNeeds(self) != nil else { return result }
        let inputShape = shape
        return result.recorded(from: [self]) { gradient in [gradient.reshaped(inputShape)] }
    }

    private func reshapedView(_ newShape: [Int], stridesInserting position: Int) -> Tensor {
        var newStrides = strides
        newStrides.insert(position < rank ? strides[position] * shape[position] : 1, at: position)
        let result = Tensor(storage: storage, shape: newShape, strides: newStrides, offset: offset)
        guard Tensor.gradientNeeds(self) != nil else { return result }
        let inputShape = shape
        return result.recorded(from: [self]) { gradient in [gradient.reshaped(inputShape)] }
    }

    /// Tensors joined along `dimension`; all other dimensions must agree.
    public static func concatenated(_ tensors: [Tensor], along dimension: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenated: no tensors to join")
        let first = tensors[0]
        let axis = Tensor.normalize(dimension: dimension, rank: first.rank)
        var newShape = first.shape
        newShape[axis] = 0
        for tensor in tensors {
            var check = tensor.shape
            precondition(check.count == first.rank, "concatenated: shapes \(tensors.map(\.shape)) differ in rank")
            newShape[axis] += check[axis]
            check[axis] = first.shape[axis]
            precondition(check == first.shape, "concatenated: shapes \(tensors.map(\.shape)) differ outside dimension \(dimension)")
        }
        var result = Tensor(uninitializedShape: newShape)
        let outer = Tensor.elementCount(Array(newShape[..<axis]))
        let innerUnit = Tensor.elementCount(Array(newShape[(axis + 1)...]))
        let outputRow = newShape[axis] * innerUnit
        var start = 0
        for tensor in tensors {
            let width = tensor.shape[axis] * innerUnit
            let source = tensor.contiguousStorage()
            withExtendedLifetime(source) {
                for row in 0..<outer where width > 0 {
                    (result.storage.pointer + row * outputRow + start).update(from: source.pointer + row * width, count: width)
                }
            }
            start += width
        }
        guard tensors.contains(where: { $0.node != nil }), GradientRecording.isEnabled else { return result }
        let widths = tensors.map { $0.shape[axis] }
        let needs = tensors.map { $0.node != nil }
        result = result.recorded(from: tensors) { gradient in
            var position = 0
            return zip(widths, needs).map { width, need in
                defer { position += width }
                return need ? gradient.sliced(along: axis, position..<(position + width)) : nil
            }
        }
        return result
    }

    /// The tensor cut along `dimension` into pieces of the given sizes (views).
    public func split(sizes: [Int], along dimension: Int) -> [Tensor] {
        let axis = Tensor.normalize(dimension: dimension, rank: rank)
        precondition(sizes.reduce(0, +) == shape[axis] && sizes.allSatisfy { $0 >= 0 },
                     "split: sizes \(sizes) do not add up to dimension \(dimension) of shape \(shape)")
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return sliced(along: axis, start..<(start + size))
        }
    }

    /// The tensor cut along `dimension` into `count` equal pieces (views).
    public func chunked(_ count: Int, along dimension: Int) -> [Tensor] {
        let axis = Tensor.normalize(dimension: dimension, rank: rank)
        precondition(count > 0 && shape[axis] % count == 0,
                     "chunked: dimension \(dimension) of shape \(shape) does not split into \(count) equal pieces")
        return split(sizes: Array(repeating: shape[axis] / count, count: count), along: axis)
    }

    /// `gradient` placed at `start` along `axis` inside zeros of `shape` (the gradient of a slice).
    static func padded(_ gradient: Tensor, along axis: Int, to shape: [Int], at start: Int) -> Tensor {
        let result = Tensor.zeros(shape)
        let outer = Tensor.elementCount(Array(shape[..<axis]))
        let innerUnit = Tensor.elementCount(Array(shape[(axis + 1)...]))
        let width = gradient.shape[axis] * innerUnit
        let row = shape[axis] * innerUnit
        let source = gradient.contiguousStorage()
        withExtendedLifetime(source) {
            for index in 0..<outer where width > 0 {
                (result.storage.pointer + index * row + start * innerUnit).update(from: source.pointer + index * width, count: width)
            }
        }
        return result
    }
}
