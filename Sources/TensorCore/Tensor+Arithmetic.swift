// Elementwise arithmetic with NumPy-style broadcasting. Kernels walk coalesced dimensions with an inner
// loop over contiguous (or stride-0) rows, so the common cases (same shape, bias over the last dimension,
// per-row scale, additive attention masks) run as plain vectorisable loops without materialising
// broadcast operands.
import Foundation

enum BinaryOperation: Sendable {
    case add, subtract, multiply, divide, maximum, minimum
}

extension Tensor {
    // MARK: - Broadcasting

    /// The shape two shapes broadcast to (NumPy rules).
    ///
    /// - Precondition: the shapes are compatible.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let rank = Swift.max(a.count, b.count)
        var result = [Int](repeating: 1, count: rank)
        for index in 0..<rank {
            let x = index < rank - a.count ? 1 : a[index - (rank - a.count)]
            let y = index < rank - b.count ? 1 : b[index - (rank - b.count)]
            precondition(x == y || x == 1 || y == 1, "shapes \(a) and \(b) do not broadcast together")
            result[index] = x == 1 ? y : x
        }
        return result
    }

    /// This tensor's strides when read as broadcast to `target` (0 along repeated dimensions).
    func broadcastStrides(to target: [Int]) -> [Int] {
        let lead = target.count - rank
        var result = [Int](repeating: 0, count: target.count)
        for index in 0..<rank where shape[index] == target[lead + index] && shape[index] != 1 {
            result[lead + index] = strides[index]
        }
        return result
    }

    /// The gradient of a broadcast: sums `self` over the dimensions that broadcasting added or repeated.
    func summed(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        var dimensions: [Int] = Array(0..<lead)
        for index in 0..<target.count where target[index] == 1 && shape[lead + index] != 1 {
            dimensions.append(lead + index)
        }
        var result = self
        if !dimensions.isEmpty { result = result.sum(alongDimensions: dimensions, keepingDimensions: true) }
        return result.reshaped(target)
    }

    // MARK: - Binary kernels

    static func binary(_ a: Tensor, _ b: Tensor, _ operation: BinaryOperation) -> Tensor {
        let outShape = a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape)
        var result = Tensor(uninitializedShape: outShape)
        let count = result.scalarCount
        if count == 0 { return result }
        let (dims, steps) = coalesce(
            shape: outShape,
            strideSets: [result.strides, a.broadcastStrides(to: outShape), b.broadcastStrides(to: outShape)])
        let inner = dims[dims.count - 1]
        let rows = count / inner
        let output = SendablePointer(pointer: result.storage.pointer)
        let left = a.storage.pointer + a.offset, right = b.storage.pointer + b.offset
        withExtendedLifetime((a.storage, b.storage)) {
            parallelRanges(rows, grain: Swift.max(1, 16384 / inner)) { range in
                var index = [Int](repeating: 0, count: dims.count)
                var remainder = range.lowerBound
                var offsets = (0, 0, 0)
                for dimension in stride(from: dims.count - 2, through: 0, by: -1) {
                    index[dimension] = remainder % dims[dimension]
                    remainder /= dims[dimension]
                    offsets.0 += index[dimension] * steps[0][dimension]
                    offsets.1 += index[dimension] * steps[1][dimension]
                    offsets.2 += index[dimension] * steps[2][dimension]
                }
                let strideA = steps[1][dims.count - 1], strideB = steps[2][dims.count - 1]
                for _ in range {
                    binaryRow(operation, left + offsets.1, strideA, right + offsets.2, strideB,
                              output.pointer + offsets.0, inner)
                    var dimension = dims.count - 2
                    while dimension >= 0 {
                        index[dimension] += 1
                        offsets.0 += steps[0][dimension]
                        offsets.1 += steps[1][dimension]
                        offsets.2 += steps[2][dimension]
                        if index[dimension] < dims[dimension] { break }
                        offsets.0 -= steps[0][dimension] * dims[dimension]
                        offsets.1 -= steps[1][dimension] * dims[dimension]
                        offsets.2 -= steps[2][dimension] * dims[dimension]
                        index[dimension] = 0
                        dimension -= 1
                    }
                }
            }
        }
        result.node = nil
        return result
    }

    @inline(__always)
    static func binaryRow(
        _ operation: BinaryOperation, _ a: UnsafePointer<Float>, _ strideA: Int, _ b: UnsafePointer<Float>,
        _ strideB: Int, _ out: UnsafeMutablePointer<Float>, _ count: Int
    ) {
        switch operation {
        case .add: row(a, strideA, b, strideB, out, count) { $0 + $1 }
        case .subtract: row(a, strideA, b, strideB, out, count) { $0 - $1 }
        case .multiply: row(a, strideA, b, strideB, out, count) { $0 * $1 }
        case .divide: row(a, strideA, b, strideB, out, count) { $0 / $1 }
        case .maximum: row(a, strideA, b, strideB, out, count) { Swift.max($0, $1) }
        case .minimum: row(a, strideA, b, strideB, out, count) { Swift.min($0, $1) }
        }
    }

    @inline(__always)
    static func row(
        _ a: UnsafePointer<Float>, _ strideA: Int, _ b: UnsafePointer<Float>, _ strideB: Int,
        _ out: UnsafeMutablePointer<Float>, _ count: Int, _ f: (Float, Float) -> Float
    ) {
        if strideA == 1 && strideB == 1 {
            for i in 0..<count { out[i] = f(a[i], b[i]) }
        } else if strideA == 1 && strideB == 0 {
            let y = b.pointee
            for i in 0..<count { out[i] = f(a[i], y) }
        } else if strideA == 0 && strideB == 1 {
            let x = a.pointee
            for i in 0..<count { out[i] = f(x, b[i]) }
        } else {
            for i in 0..<count { out[i] = f(a[i * strideA], b[i * strideB]) }
        }
    }

    // MARK: - Differentiable arithmetic

    /// Elementwise sum with broadcasting.
    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor {
        let result = binary(lhs, rhs, .add)
        guard let needs = gradientNeeds(lhs, rhs) else { return result }
        let (shapeA, shapeB) = (lhs.shape, rhs.shape)
        return result.recorded(from: [lhs, rhs]) { g in
            [needs[0] ? g.summed(toShape: shapeA) : nil, needs[1] ? g.summed(toShape: shapeB) : nil]
        }
    }

    /// Elementwise difference with broadcasting.
    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor {
        let result = binary(lhs, rhs, .subtract)
        guard let needs = gradientNeeds(lhs, rhs) else { return result }
        let (shapeA, shapeB) = (lhs.shape, rhs.shape)
        return result.recorded(from: [lhs, rhs]) { g in
            [needs[0] ? g.summed(toShape: shapeA) : nil, needs[1] ? (-g).summed(toShape: shapeB) : nil]
        }
    }

    /// Elementwise product with broadcasting.
    public static func * (lhs: Tensor, rhs: Tensor) -> Tensor {
        let result = binary(lhs, rhs, .multiply)
        guard let needs = gradientNeeds(lhs, rhs) else { return result }
        // Each factor is kept only for the other's gradient.
        let (shapeA, shapeB) = (lhs.shape, rhs.shape)
        let a: Tensor? = needs[1] ? lhs.detached() : nil, b: Tensor? = needs[0] ? rhs.detached() : nil
        return result.recorded(from: [lhs, rhs]) { g in
            [b.map { (g * $0).summed(toShape: shapeA) }, a.map { (g * $0).summed(toShape: shapeB) }]
        }
    }

    /// Elementwise quotient with broadcasting.
    public static func / (lhs: Tensor, rhs: Tensor) -> Tensor {
        let result = binary(lhs, rhs, .divide)
        guard let needs = gradientNeeds(lhs, rhs) else { return result }
        // The dividend is never needed; the quotient only for the divisor's gradient.
        let (shapeA, shapeB) = (lhs.shape, rhs.shape)
        let b = rhs.detached(), quotient: Tensor? = needs[1] ? result.detached() : nil
        return result.recorded(from: [lhs, rhs]) { g in
            let ga = g / b
            return [needs[0] ? ga.summed(toShape: shapeA) : nil,
                    quotient.map { (-(ga * $0)).summed(toShape: shapeB) }]
        }
    }

    /// Elementwise maximum with broadcasting; the gradient goes to `lhs` where the values tie.
    public static func maximum(_ lhs: Tensor, _ rhs: Tensor) -> Tensor {
        selecting(lhs, rhs, .maximum) { $0 >= $1 }
    }

    /// Elementwise minimum with broadcasting; the gradient goes to `lhs` where the values tie.
    public static func minimum(_ lhs: Tensor, _ rhs: Tensor) -> Tensor {
        selecting(lhs, rhs, .minimum) { $0 <= $1 }
    }

    private static func selecting(
        _ lhs: Tensor, _ rhs: Tensor, _ operation: BinaryOperation, _ picksLeft: @escaping @Sendable (Float, Float) -> Bool
    ) -> Tensor {
        let result = binary(lhs, rhs, operation)
        guard let needs = gradientNeeds(lhs, rhs) else { return result }
        let (a, b) = (lhs.detached(), rhs.detached())
        return result.recorded(from: [lhs, rhs]) { g in
            let shape = g.shape
            let left = zipMap(a.expanded(to: shape), b.expanded(to: shape)) { picksLeft($0, $1) ? 1 : 0 }
            return [needs[0] ? (g * left).summed(toShape: a.shape) : nil,
                    needs[1] ? (g * (1 - left)).summed(toShape: b.shape) : nil]
        }
    }

    /// Elementwise negation.
    public static prefix func - (operand: Tensor) -> Tensor {
        operand.mapped(derivative: .constant(-1)) { -$0 }
    }

    /// Adds a scalar to every element.
    public static func + (lhs: Tensor, rhs: Float) -> Tensor { lhs.mapped(derivative: .constant(1)) { $0 + rhs } }
    /// Adds a scalar to every element.
    public static func + (lhs: Float, rhs: Tensor) -> Tensor { rhs + lhs }
    /// Subtracts a scalar from every element.
    public static func - (lhs: Tensor, rhs: Float) -> Tensor { lhs.mapped(derivative: .constant(1)) { $0 - rhs } }
    /// Subtracts every element from a scalar.
    public static func - (lhs: Float, rhs: Tensor) -> Tensor { rhs.mapped(derivative: .constant(-1)) { lhs - $0 } }
    /// Multiplies every element by a scalar.
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { lhs.scaled(by: rhs) }
    /// Multiplies every element by a scalar.
    public static func * (lhs: Float, rhs: Tensor) -> Tensor { rhs.scaled(by: lhs) }
    /// Divides every element by a scalar.
    public static func / (lhs: Tensor, rhs: Float) -> Tensor { lhs.scaled(by: 1 / rhs) }
    /// Divides a scalar by every element.
    public static func / (lhs: Float, rhs: Tensor) -> Tensor {
        rhs.mapped(derivative: .fromInputAndOutput { x, y in -y / x }) { lhs / $0 }
    }

    /// Every element multiplied by `factor`.
    public func scaled(by factor: Float) -> Tensor {
        mapped(derivative: .constant(factor)) { $0 * factor }
    }

    // MARK: - Same-shape helpers for kernels

    /// `f` applied to corresponding elements of two tensors of the same shape (not recorded).
    static func zipMap(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(a.shape == b.shape, "TensorCore internal error: zipMap shapes \(a.shape) and \(b.shape)")
        let x = a.contiguousStorage(), y = b.contiguousStorage()
        return filledInParallel(shape: a.shape, keeping: (x, y), grain: 32768) { output, range in
            for i in range { output[i] = f(x.pointer[i], y.pointer[i]) }
        }
    }
}
