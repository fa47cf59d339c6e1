// Integer tensors for indices: token ids, code ids, class targets, argmax results.

/// An n-dimensional array of `Int32` indices (token ids, class targets, argmax results).
///
/// Operations that take indices (``Tensor/embedding(_:)``, ``Tensor/crossEntropy(logits:targets:ignoreIndex:)``)
/// check every index against the size it addresses and throw ``TensorError`` for one out of range,
/// since indices usually come from data (a tokenizer, a file, a user).
public struct IndexTensor: Sendable, Equatable, CustomStringConvertible {
    /// The size of each dimension, outermost first.
    public let shape: [Int]
    /// The indices in row-major order.
    public let scalars: [Int32]

    /// Creates an index tensor from row-major indices.
    ///
    /// - Precondition: `scalars.count` is the product of `shape`.
    public init(_ scalars: [Int32], shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == scalars.count,
                     "IndexTensor: \(scalars.count) indices do not fill shape \(shape)")
        self.shape = shape
        self.scalars = scalars
    }

    /// Creates a rank-1 index tensor.
    public init(_ scalars: [Int32]) { self.init(scalars, shape: [scalars.count]) }

    /// Creates a rank-1 index tensor from `Int` values.
    ///
    /// - Precondition: every value fits in `Int32`.
    public init(_ values: [Int]) {
        self.init(values.map { value in
            guard let converted = Int32(exactly: value) else {
                preconditionFailure("IndexTensor: index \(value) does not fit in Int32")
            }
            return converted
        })
    }

    /// The number of indices.
    public var scalarCount: Int { scalars.count }

    /// The same indices with a new shape of the same element count.
    public func reshaped(_ newShape: [Int]) -> IndexTensor { IndexTensor(scalars, shape: newShape) }

    /// The shape and, for small tensors, the values.
    public var description: String {
        "IndexTensor(shape: \(shape), \(scalars.count <= 16 ? "\(scalars)" : "\(Array(scalars.prefix(8)))…"))"
    }
}
