import TensorCore

/// Named tensors in a fixed (sorted) order: the trainable parameters an optimiser updates, or their
/// gradients.
///
/// The order is the UTF-8 order of the names, so reductions over all tensors (the global gradient
/// norm) and files written from a set are the same on every run.
public struct ParameterSet: Sendable {
    /// The tensors by name.
    public private(set) var tensors: [String: Tensor]
    /// The names, sorted.
    public private(set) var names: [String]

    /// Creates a set from named tensors.
    public init(_ tensors: [String: Tensor]) {
        self.tensors = tensors
        names = tensors.keys.sorted()
    }

    /// The tensor called `name`, if any.
    public subscript(name: String) -> Tensor? { tensors[name] }

    /// The number of tensors.
    public var count: Int { names.count }

    /// The total number of scalars over all tensors.
    public var scalarCount: Int { tensors.values.reduce(0) { $0 + $1.scalarCount } }

    /// A copy whose tensors are fresh differentiable leaves (``Tensor/requiringGradient()``), to pass
    /// to a forward pass whose loss is then differentiated with respect to them.
    public func requiringGradients() -> ParameterSet {
        ParameterSet(tensors.mapValues { $0.detached().requiringGradient() })
    }

    /// The gradients of `loss` with respect to every tensor of this set (made by
    /// ``requiringGradients()``), as a set with the same names.
    public func gradients(of loss: Tensor) -> ParameterSet {
        let ordered = names.map { tensors[$0]! }
        let gradients = loss.gradients(withRespectTo: ordered)
        return ParameterSet(Dictionary(uniqueKeysWithValues: zip(names, gradients)))
    }

    /// Replaces the tensor called `name`.
    ///
    /// - Throws: ``TrainingError`` (`parameterMismatch`) when the name is unknown or the shape differs.
    public mutating func update(_ name: String, to tensor: Tensor) throws {
        guard let current = tensors[name] else {
            throw TrainingError(.parameterMismatch, "there is no parameter named \"\(name)\"; the set holds \(names.count) tensors")
        }
        guard current.shape == tensor.shape else {
            throw TrainingError(.parameterMismatch, "parameter \"\(name)\" has shape \(current.shape), not \(tensor.shape)")
        }
        tensors[name] = tensor.detached()
    }

    /// Checks that `other` has exactly these names and shapes.
    ///
    /// - Throws: ``TrainingError`` (`parameterMismatch`) naming the first missing, unexpected or
    ///   differently shaped tensor, prefixed by `what`.
    public func checkMatches(_ other: ParameterSet, what: String) throws {
        if let missing = names.first(where: { other.tensors[$0] == nil }) {
            throw TrainingError(.parameterMismatch, "\(what) has no tensor \"\(missing)\"; it must hold every trainable parameter")
        }
        if let extra = other.names.first(where: { tensors[$0] == nil }) {
            throw TrainingError(.parameterMismatch, "\(what) has an unexpected tensor \"\(extra)\" that is not a trainable parameter")
        }
        for name in names where tensors[name]!.shape != other.tensors[name]!.shape {
            throw TrainingError(.parameterMismatch, "\(what): tensor \"\(name)\" has shape \(other.tensors[name]!.shape), the parameter has \(tensors[name]!.shape)")
        }
    }
}
