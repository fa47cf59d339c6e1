// Reverse-mode automatic differentiation: a graph of nodes built while operations run, walked backwards
// by `gradients(of:withRespectTo:)`. Gradient conventions follow torch.autograd.

/// How one recorded tensor was computed: its inputs' nodes and the function mapping the gradient of
/// the output to gradients of the inputs.
final class GradientNode: @unchecked Sendable {
    /// The input nodes, `nil` where an input does not take part in differentiation.
    let inputs: [GradientNode?]
    /// Maps the output gradient to one gradient per input (`nil` for inputs that need none).
    /// `nil` for a leaf (a tensor marked with `requiringGradient()`).
    let backward: (@Sendable (Tensor) -> [Tensor?])?
    /// The shape of the tensor this node produced.
    let shape: [Int]

    init(inputs: [GradientNode?], shape: [Int], backward: (@Sendable (Tensor) -> [Tensor?])?) {
        self.inputs = inputs
        self.shape = shape
        self.backward = backward
    }
}

/// Whether operations record onto the gradient graph (task-local, so each task or thread decides).
enum GradientRecording {
    @TaskLocal static var isEnabled = true
}

/// Runs `body` without recording any operation for differentiation.
///
/// Inside, operations produce plain tensors: no graph node, closure or saved input is allocated, so
/// inference costs nothing beyond the arithmetic. Tensors made inside do not require gradients.
/// The setting is task-local: it applies to `body` and to tasks it starts, not to other threads.
///
/// ```swift
/// let logits = withoutGradients { model(tokens) }
/// ```
public func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
    try GradientRecording.$isEnabled.withValue(false) { try body() }
}

/// Whether operations on tensors that require gradients are currently being recorded.
public var isRecordingGradients: Bool { GradientRecording.isEnabled }

extension Tensor {
    // MARK: - Marking and detaching

    /// Whether gradients with respect to this tensor can be computed (it is a parameter, or was computed
    /// from one while recording).
    public var requiresGradient: Bool { node != nil }

    /// This tensor marked as a differentiable leaf, such as a trainable parameter.
    ///
    /// Each call makes a new leaf: gradients are reported for the tensor returned here (and computations
    /// that use it), not for other copies of the same values. In ``withoutGradients(_:)`` it still marks
    /// the tensor, so parameters can be created anywhere.
    public func requiringGradient() -> Tensor {
        var marked = self
        marked.node = GradientNode(inputs: [], shape: shape, backward: nil)
        return marked
    }

    /// The same values cut from the gradient graph (PyTorch's `detach()`, JAX's `stop_gradient`).
    ///
    /// Gradients do not flow through the result; it shares storage with this tensor (no copy).
    public func detached() -> Tensor {
        var plain = self
        plain.node = nil
        return plain
    }

    /// The same values cut from the gradient graph; an alias of ``detached()`` named as in the paper.
    public func stopGradient() -> Tensor { detached() }

    // MARK: - Recording

    /// Whether an input needs a gradient (`[true]`), or `nil` when nothing is to be recorded (it does not
    /// require one, or recording is off). Operations call this before building any closure, so
    /// no-gradient mode allocates nothing for the graph.
    @inline(__always)
    static func gradientNeeds(_ input: Tensor) -> [Bool]? {
        guard input.node != nil, GradientRecording.isEnabled else { return nil }
        return [true]
    }

    /// Which of two inputs need gradients, or `nil` when nothing is to be recorded.
    @inline(__always)
    static func gradientNeeds(_ first: Tensor, _ second: Tensor) -> [Bool]? {
        guard first.node != nil || second.node != nil, GradientRecording.isEnabled else { return nil }
        return [first.node != nil, second.node != nil]
    }

    /// Which of three inputs need gradients, or `nil` when nothing is to be recorded.
    @inline(__always)
    static func gradientNeeds(_ first: Tensor, _ second: Tensor, _ third: Tensor) -> [Bool]? {
        guard first.node != nil || second.node != nil || third.node != nil, GradientRecording.isEnabled else { return nil }
        return [first.node != nil, second.node != nil, third.node != nil]
    }

    /// `self` with a node recording that it was computed from `inputs`.
    func recorded(from inputs: [Tensor], backward: @escaping @Sendable (Tensor) -> [Tensor?]) -> Tensor {
        var result = self
        result.node = GradientNode(inputs: inputs.map(\.node), shape: shape, backward: backward)
        return result
    }

    // MARK: - Gradients

    /// The gradients of this tensor with respect to `targets` (see ``Tensor/gradients(of:withRespectTo:seed:)``).
    public func gradients(withRespectTo targets: [Tensor], seed: Tensor? = nil) -> [Tensor] {
        Tensor.gradients(of: self, withRespectTo: targets, seed: seed)
    }

    /// Reverse-mode differentiation: the gradient of `output` with respect to each of `targets`.
    ///
    /// Walks the graph recorded while `output` was computed, from `output` back to the targets, summing
    /// the contributions of every path (a parameter used twice gets the sum of both uses). Each gradient
    /// has its target's shape; a target that `output` does not depend on gets zeros. Gradients of
    /// broadcast operations are summed back to the input's shape, as in PyTorch. The backward pass itself
    /// is not recorded (no higher-order derivatives).
    ///
    /// - Parameters:
    ///   - output: usually a scalar loss; otherwise pass `seed`.
    ///   - targets: parameters or intermediate tensors that require gradients.
    ///   - seed: the gradient of some scalar with respect to `output` (default: ones, i.e. the output is summed).
    /// - Precondition: every target requires gradients, and `seed` has `output`'s shape.
    public static func gradients(of output: Tensor, withRespectTo targets: [Tensor], seed: Tensor? = nil) -> [Tensor] {
        gradients(of: output, withRespectTo: targets, seed: seed, contiguous: true)
    }

    /// ``gradients(of:withRespectTo:seed:)``, returning each gradient in the layout the backward pass
    /// made it (`contiguous: false`) as an inner graph's gradients flow on unchanged.
    static func gradients(of output: Tensor, withRespectTo targets: [Tensor], seed: Tensor?, contiguous: Bool) -> [Tensor] {
        for (position, target) in targets.enumerated() {
            precondition(target.node != nil,
                         "gradients(of:withRespectTo:): target \(position) (shape \(target.shape)) does not require gradients; mark it with requiringGradient() before using it")
        }
        if let seed {
            precondition(seed.shape == output.shape,
                         "gradients(of:withRespectTo:): seed shape \(seed.shape) differs from output shape \(output.shape)")
        }
        guard let root = output.node else {
            return targets.map { Tensor.zeros($0.shape) }
        }
        return withoutGradients {
            let order = topologicalOrder(from: root)
            var pending: [ObjectIdentifier: Tensor] = [:]
            pending[ObjectIdentifier(root)] = (seed ?? Tensor.ones(output.shape)).detached()
            let wanted = Set(targets.map { ObjectIdentifier($0.node!) })
            var found: [ObjectIdentifier: Tensor] = [:]
            for node in order.reversed() {
                let key = ObjectIdentifier(node)
                guard let gradient = pending.removeValue(forKey: key) else { continue }
                if wanted.contains(key) { found[key] = gradient }
                guard let backward = node.backward else { continue }
                let inputGradients = backward(gradient)
                for (input, inputGradient) in zip(node.inputs, inputGradients) {
                    guard let input, let inputGradient else { continue }
                    precondition(inputGradient.shape == input.shape,
                                 "TensorCore internal error: gradient shape \(inputGradient.shape) for an input of shape \(input.shape)")
                    let inputKey = ObjectIdentifier(input)
                    if let existing = pending[inputKey] {
                        pending[inputKey] = existing + inputGradient
                    } else {
                        pending[inputKey] = inputGradient
                    }
                }
            }
            return targets.map { target in
                found[ObjectIdentifier(target.node!)].map { contiguous ? $0.contiguous() : $0 } ?? Tensor.zeros(target.shape)
            }
        }
    }

    /// Nodes reachable from `root`, each after all of its inputs (iterative depth-first post-order).
    static func topologicalOrder(from root: GradientNode) -> [GradientNode] {
        var order: [GradientNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(node: GradientNode, nextInput: Int)] = [(root, 0)]
        visited.insert(ObjectIdentifier(root))
        while !stack.isEmpty {
            let (node, nextInput) = stack[stack.count - 1]
            if nextInput < node.inputs.count {
                stack[stack.count - 1].nextInput += 1
                if let input = node.inputs[nextInput], visited.insert(ObjectIdentifier(input)).inserted {
                    stack.append((input, 0))
                }
            } else {
                order.append(node)
                stack.removeLast()
            }
        }
        return order
    }
}
