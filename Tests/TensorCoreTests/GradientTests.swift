import Testing
@testable import TensorCore

@Suite("Gradients against central finite differences")
struct GradientTests {
    let check = GradientCheck()

    private func expectGradients(
        _ inputs: [Tensor], _ check: GradientCheck? = nil, _ function: ([Tensor]) throws -> Tensor,
        sourceLocation: SourceLocation = #_sourceLocation
    ) rethrows {
        let report = try (check ?? self.check).mismatches(inputs, function)
        #expect(report.isEmpty, "\(report)", sourceLocation: sourceLocation)
    }

    @Test func broadcastingArithmetic() {
        let a = randomTensor([2, 3, 4], seed: 1), b = randomTensor([3, 1], seed: 2)
        let positive = randomTensor([4], seed: 3, range: 0.5..<2)
        expectGradients([a, b]) { $0[0] + $0[1] }
        expectGradients([a, b]) { $0[0] - $0[1] }
        expectGradients([a, b]) { $0[0] * $0[1] }
        expectGradients([a, positive]) { $0[0] / $0[1] }
        expectGradients([b, a]) { $0[0] - $0[1] * $0[0] }
        expectGradients([a]) { -$0[0] * 3 + 2 - 1 / ($0[0].squared() + 1) }
        expectGradients([a, randomTensor([2, 3, 4], seed: 4)]) { Tensor.maximum($0[0], $0[1]) + Tensor.minimum($0[0], $0[1]) * 2 }
    }

    @Test func elementwiseFunctions() {
        let x = randomTensor([3, 5], seed: 5)
        let positive = randomTensor([3, 5], seed: 6, range: 0.5..<2)
        expectGradients([x]) { $0[0].exp() }
        expectGradients([positive]) { $0[0].log() }
        expectGradients([positive]) { $0[0].sqrt() }
        expectGradients([positive]) { $0[0].rsqrt() }
        expectGradients([positive]) { $0[0].pow(1.5) }
        expectGradients([x]) { $0[0].pow(3) }
        expectGradients([x]) { $0[0].tanh() }
        expectGradients([x]) { $0[0].sigmoid() }
        expectGradients([x * 4]) { $0[0].logSigmoid() }
        expectGradients([x]) { $0[0].silu() }
        expectGradients([x]) { $0[0].gelu() }
        expectGradients([x]) { $0[0].geluTanh() }
        // Away from the kinks so finite differences are valid.
        let awayFromKinks = randomTensor([3, 5], seed: 7, range: 0.2..<1) * Tensor([1, -1, 1, -1, 1], shape: [5])
        expectGradients([awayFromKinks]) { $0[0].abs() + $0[0].relu() }
        expectGradients([awayFromKinks * 2]) { $0[0].clamped(min: -1, max: 1) }
    }

    @Test func matrixProducts() {
        let a = randomTensor([3, 4], seed: 8), b = randomTensor([4, 5], seed: 9)
        expectGradients([a, b]) { $0[0].matmul($0[1]) }
        expectGradients([a, b]) { $0[1].transposed().matmul($0[0].transposed()) }
        let batchA = randomTensor([2, 3, 4], seed: 10), batchB = randomTensor([2, 4, 5], seed: 11)
        expectGradients([batchA, batchB]) { $0[0].matmul($0[1]) }
        expectGradients([batchA, b]) { $0[0].matmul($0[1]) }
        expectGradients([batchA, randomTensor([2, 5, 4], seed: 12)]) { $0[0].matmul($0[1].transposed()) }
        expectGradients([randomTensor([2, 1, 3, 4], seed: 13), randomTensor([3, 4, 2], seed: 14)]) { $0[0].matmul($0[1]) }
        expectGradients([randomTensor([4], seed: 15), b]) { $0[0].matmul($0[1]) }
        expectGradients([a, randomTensor([4], seed: 16)]) { $0[0].matmul($0[1]) }
        expectGradients([batchA, randomTensor([5, 4], seed: 17), randomTensor([5], seed: 18)]) {
            $0[0].linear(weight: $0[1], bias: $0[2])
        }
    }

    @Test func reductions() {
        let x = randomTensor([2, 3, 4], seed: 19)
        expectGradients([x]) { $0[0].sum() }
        expectGradients([x]) { $0[0].sum(along: 1) }
        expectGradients([x]) { $0[0].sum(alongDimensions: [0, 2], keepingDimensions: true) }
        expectGradients([x]) { $0[0].mean(along: -1, keepingDimensions: true) }
        expectGradients([x]) { $0[0].mean() }
        expectGradients([x]) { $0[0].max(along: 1) }
        expectGradients([x]) { $0[0].max(along: -1, keepingDimensions: true) }
    }

    @Test func shapeOperations() {
        let x = randomTensor([2, 3, 4], seed: 20)
        expectGradients([x]) { $0[0].permuted([2, 0, 1]).reshaped([4, 6]) * Tensor(Array(0..<6).map(Float.init), shape: [6]) }
        expectGradients([x]) { $0[0].transposed(0, 1).sliced(along: 2, 1..<3).contiguous() }
        expectGradients([x, randomTensor([2, 2, 4], seed: 21)]) { Tensor.concatenated([$0[0], $0[1]], along: 1) }
        expectGradients([x]) {
            let parts = $0[0].split(sizes: [1, 3], along: -1)
            return parts[0] * parts[1]
        }
        expectGradients([randomTensor([3, 1], seed: 22)]) { $0[0].expanded(to: [2, 3, 4]) }
        expectGradients([x]) { $0[0].unsqueezed(1).squeezed(1).sliced(along: 0, 1..<2).squeezed(0) }
        expectGradients([x]) { $0[0].splittingDimension(2, into: [2, 2]).transposed(-1, -2) }
    }

    @Test func softmaxAndNormalisation() {
        let x = randomTensor([2, 3, 5], seed: 23)
        expectGradients([x]) { $0[0].softmax() }
        expectGradients([x]) { $0[0].softmax(along: 1) }
        expectGradients([x]) { $0[0].logSoftmax() }
        expectGradients([x]) { $0[0].logSoftmax(along: 0) }
        let weight = randomTensor([5], seed: 24) + 1, bias = randomTensor([5], seed: 25)
        expectGradients([x, weight, bias]) { $0[0].layerNorm(weight: $0[1], bias: $0[2]) }
        expectGradients([x]) { $0[0].layerNorm(weight: nil, bias: nil) }
        expectGradients([x, weight]) { $0[0].rmsNorm(weight: $0[1]) }
    }

    @Test func lossesAndGather() throws {
        let logits = randomTensor([4, 6], seed: 26)
        let targets = IndexTensor([2, -100, 5, 0])
        try expectGradients([logits]) { try Tensor.crossEntropy(logits: $0[0], targets: targets) }
        // Rows wider than 16 take the vectorised path plus a tail.
        let wide = randomTensor([5, 37], seed: 41) * 3
        try expectGradients([wide]) { try Tensor.crossEntropy(logits: $0[0], targets: IndexTensor([36, 0, -100, 17, 5])) }
        expectGradients([wide]) { $0[0].logSoftmax() }
        expectGradients([wide]) { $0[0].softmax() }
        expectGradients([logits, randomTensor([4, 6], seed: 27)]) { Tensor.meanSquaredError($0[0], $0[1]) }
        let table = randomTensor([5, 3], seed: 28)
        let indices = IndexTensor([1, 4, 1, 0, 2, 1], shape: [2, 3])
        try expectGradients([table]) { try $0[0].rows(at: indices) }
    }

    @Test func rotaryEmbeddingAndAttention() {
        let rotary = RotaryEmbedding(headDimension: 4, theta: 100, positions: [0, 1, 2])
        expectGradients([randomTensor([1, 2, 3, 4], seed: 29)]) { $0[0].applyingRotaryEmbedding(rotary) }
        let query = randomTensor([2, 4, 3, 4], seed: 30)
        let key = randomTensor([2, 2, 3, 4], seed: 31), value = randomTensor([2, 2, 3, 4], seed: 32)
        let mask = Tensor.attentionMask(keyIsValid: [[true, true, true], [true, true, false]], queryLength: 3, causal: true)
        expectGradients([query, key, value]) {
            Tensor.scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2], mask: mask)
        }
        expectGradients([query, randomTensor([2, 4, 3, 4], seed: 33), randomTensor([2, 4, 3, 4], seed: 34)]) {
            Tensor.scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2], mask: Tensor.causalMask(queryLength: 3, keyLength: 3), scale: 0.3)
        }
    }

    @Test func gradientsAccumulateOverRepeatedUse() {
        let x = Tensor([1, 2, 3], shape: [3]).requiringGradient()
        let y = (x * x + x * 3).sum()
        let gradient = y.gradients(withRespectTo: [x])[0]
        #expect(gradient.scalars == [5, 7, 9])
    }

    @Test func stopGradientBlocksFlow() {
        let x = Tensor([1, 2, 3], shape: [3]).requiringGradient()
        // Straight-through pattern: value of x², gradient of x.
        let y = x + (x.squared() - x).stopGradient()
        #expect(y.scalars == [1, 4, 9])
        #expect(y.sum().gradients(withRespectTo: [x])[0].scalars == [1, 1, 1])
        let unrelated = Tensor([1], shape: [1]).requiringGradient()
        #expect(y.sum().gradients(withRespectTo: [unrelated])[0].scalars == [0])
    }
}

@Suite("The gradient checker itself")
struct GradientCheckerTests {
    @Test func detectsAWrongGradient() {
        // x² recorded with the wrong derivative (x instead of 2x): the checker must report it.
        let report = GradientCheck().mismatches([randomTensor([4], seed: 40, range: 0.5..<1)]) { inputs in
            let x = inputs[0]
            let y = withoutGradients { x * x }
            guard x.requiresGradient else { return y }
            return y.recorded(from: [x]) { g in [g * x.detached()] }
        }
        #expect(!report.isEmpty)
    }
}

@Suite("What the backward pass keeps alive")
struct SavedActivationTests {
    /// Whether `make(h)`'s graph keeps the intermediate `h` alive once only the graph refers to it.
    private func keepsIntermediate(_ make: (Tensor) -> Tensor) -> (kept: Bool, gradient: Tensor) {
        let x = randomTensor([3, 4], seed: 71, range: -1..<1).requiringGradient()
        weak var saved: TensorStorage?
        let output = { () -> Tensor in
            let h = x.scaled(by: 2)          // a constant derivative: nothing saved by this op
            saved = h.storage
            return make(h)
        }()
        let kept = saved != nil
        return (kept, output.sum().gradients(withRespectTo: [x])[0])
    }

    @Test("a frozen weight keeps no input alive; a trained one keeps it, and the gradients are right")
    func frozenOperandsSaveNothing() {
        let weight = randomTensor([5, 4], seed: 72, range: -1..<1)
        let bias = randomTensor([5], seed: 73, range: -1..<1)
        let other = randomTensor([3, 4], seed: 74, range: -1..<1)
        let cases: [(String, (Tensor, Tensor?) -> Tensor)] = [
            ("linear", { h, trained in h.linear(weight: trained ?? weight, bias: bias) }),
            ("matmul", { h, trained in h.matmul((trained ?? weight).transposed()) }),
            ("product", { h, trained in h * (trained ?? weight).sliced(along: 0, 0..<3) }),
        ]
        for (name, operation) in cases {
            let frozen = keepsIntermediate { operation($0, nil) }
            #expect(!frozen.kept, "\(name) with a frozen operand kept its input")
            let trained = keepsIntermediate { operation($0, weight.requiringGradient()) }
            #expect(trained.kept, "\(name) with a trained operand must keep its input for that gradient")
            // The input's gradient does not depend on which operand is trained.
            #expect(frozen.gradient.scalars == trained.gradient.scalars, "\(name)")
        }
        // The quotient: the dividend is never needed.
        #expect(!keepsIntermediate { $0 / (other + 3) }.kept)
    }
}
