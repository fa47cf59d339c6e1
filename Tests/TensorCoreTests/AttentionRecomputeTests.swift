import Foundation
import Testing
@testable import TensorCore

/// Attention that recomputes its scores and weights in the backward pass (activation checkpointing,
/// ``Tensor/recomputesAttentionInBackward``) against the matrix-product path that keeps them: the
/// same bits for the output, the loss and every gradient, with masks, causal blocks at the end of a
/// longer cache and grouped-query heads.
@Suite struct AttentionRecomputeTests {
    struct Case: Sendable, CustomStringConvertible {
        var queryHeads: Int, keyHeads: Int, queryLength: Int, keyLength: Int, causal: Bool, masked: Bool
        var description: String {
            "Hq \(queryHeads) Hkv \(keyHeads) T \(queryLength) S \(keyLength)\(causal ? " causal" : "")\(masked ? " masked" : "")"
        }
    }

    static let cases = [
        Case(queryHeads: 2, keyHeads: 2, queryLength: 7, keyLength: 7, causal: false, masked: true),
        Case(queryHeads: 3, keyHeads: 3, queryLength: 9, keyLength: 9, causal: true, masked: false),
        Case(queryHeads: 4, keyHeads: 2, queryLength: 3, keyLength: 8, causal: true, masked: true),
    ]

    @Test(arguments: cases)
    func recomputingGivesTheSameBits(_ c: Case) {
        let batch = 2, depth = 8, width = 12
        var generator = SplitMix64(seed: 3)
        let x = Tensor(randomNormal: [batch, c.keyLength, width], generator: &generator).requiringGradient()
        let wq = Tensor(randomNormal: [width, c.queryHeads * depth], generator: &generator).requiringGradient()
        let wk = Tensor(randomNormal: [width, c.keyHeads * depth], generator: &generator).requiringGradient()
        let wv = Tensor(randomNormal: [width, c.keyHeads * depth], generator: &generator).requiringGradient()
        let upstream = Tensor(randomNormal: [batch, c.queryHeads, c.queryLength, depth], generator: &generator)
        let mask: Tensor? = c.masked
            ? Tensor.attentionMask(keyIsValid: (0..<batch).map { b in (0..<c.keyLength).map { $0 != b + 1 } },
                                   queryLength: c.queryLength, causal: false)
            : nil
        func heads(_ t: Tensor, _ count: Int, _ length: Int) -> Tensor {
            t.reshaped([batch, length, count, depth]).permuted([0, 2, 1, 3])
        }
        func run(recompute: Bool) -> (output: [Float], loss: Float, gradients: [[Float]]) {
            let queries = x.sliced(along: 1, (c.keyLength - c.queryLength)..<c.keyLength)
            let q = heads(queries.matmul(wq), c.queryHeads, c.queryLength)
            let k = heads(x.matmul(wk), c.keyHeads, c.keyLength)
            let v = heads(x.matmul(wv), c.keyHeads, c.keyLength)
            let scale = 1 / Float(depth).squareRoot()
            let output = recompute
                ? Tensor.recomputedAttention(query: q, key: k, value: v, mask: mask, causal: c.causal, scale: scale)
                : Tensor.unfusedAttention(query: q, key: k, value: v, mask: mask, causal: c.causal, scale: scale)
            let loss = (output * upstream).sum()
            let gradients = loss.gradients(withRespectTo: [x, wq, wk, wv])
            return (output.contiguous().scalars, loss.scalars[0], gradients.map(\.scalars))
        }
        let kept = run(recompute: false), recomputed = run(recompute: true)
        #expect(recomputed.output.map(\.bitPattern) == kept.output.map(\.bitPattern), "\(c): output")
        #expect(recomputed.loss.bitPattern == kept.loss.bitPattern, "\(c): loss")
        for (index, name) in ["x", "wq", "wk", "wv"].enumerated() {
            #expect(recomputed.gradients[index].map(\.bitPattern) == kept.gradients[index].map(\.bitPattern), "\(c): gradient of \(name)")
            #expect(recomputed.gradients[index].contains { $0 != 0 }, "\(c): gradient of \(name) is not zero")
        }
    }

    @Test func recordedAttentionRecomputesByDefault() {
        #expect(Tensor.recomputesAttentionInBackward)
    }
}
