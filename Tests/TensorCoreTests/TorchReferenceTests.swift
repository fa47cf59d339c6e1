import Foundation
import Testing
import TestSupport
import TensorCore

/// Forward values and gradients against torch.autograd, from Fixtures/torch_reference.json
/// (made by scripts/tensor_fixtures.py; the file names the torch version).
@Suite("Forward values and gradients against torch.autograd")
struct TorchReferenceTests {
    struct StoredTensor: Decodable {
        let shape: [Int]
        let data: [Float]
        var tensor: Tensor { Tensor(data, shape: shape) }
    }

    struct StoredIndices: Decodable {
        let shape: [Int]
        let data: [Int32]
        var indices: IndexTensor { IndexTensor(data, shape: shape) }
    }

    struct Case: Decodable {
        let inputs: [String: StoredTensor]
        let outputs: [String: StoredTensor]
        let seeds: [String: StoredTensor]
        let gradients: [String: StoredTensor]
        let constants: [String: StoredTensor]?
        let indices: [String: StoredIndices]?
    }

    struct Document: Decodable {
        let cases: [String: Case]
    }

    static let document: Document? = {
        guard let url = Bundle.module.url(forResource: "torch_reference", withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(Document.self, from: data)
    }()

    /// Runs `forward` on the case's inputs (marked as requiring gradients) and compares every output and
    /// the gradient of `Σ output ⊙ seed` for every input.
    private func check(
        _ name: String, relative: Float = 1e-4, absolute: Float = 1e-5,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ forward: ([String: Tensor], Case) throws -> [String: Tensor]
    ) throws {
        let document = try #require(TorchReferenceTests.document, "Fixtures/torch_reference.json is missing or unreadable")
        let reference = try #require(document.cases[name], "no case \(name) in the fixture")
        let names = reference.inputs.keys.sorted()
        let inputs = Dictionary(uniqueKeysWithValues: names.map { ($0, reference.inputs[$0]!.tensor.requiringGradient()) })
        let outputs = try forward(inputs, reference)
        #expect(Set(outputs.keys) == Set(reference.outputs.keys), "\(name): outputs", sourceLocation: sourceLocation)
        var total: Tensor?
        for (key, expected) in reference.outputs {
            guard let actual = outputs[key] else { continue }
            #expect(actual.shape == expected.shape, "\(name).\(key) shape", sourceLocation: sourceLocation)
            let comparison = approximatelyEqual(actual.scalars, expected.data, relative: relative, absolute: absolute)
            #expect(comparison.ok, "\(name).\(key): \(comparison.report)", sourceLocation: sourceLocation)
            let term = (actual * reference.seeds[key]!.tensor).sum()
            total = total.map { $0 + term } ?? term
        }
        let loss = try #require(total)
        let gradients = loss.gradients(withRespectTo: names.map { inputs[$0]! })
        for (key, gradient) in zip(names, gradients) {
            let expected = reference.gradients[key]!
            #expect(gradient.shape == expected.shape, "\(name) ∂\(key) shape", sourceLocation: sourceLocation)
            let comparison = approximatelyEqual(gradient.scalars, expected.data, relative: relative, absolute: absolute)
            #expect(comparison.ok, "\(name) ∂\(key): \(comparison.report)", sourceLocation: sourceLocation)
        }
    }

    @Test func matrixProducts() throws {
        try check("matmul") { x, _ in ["out": x["a"]!.matmul(x["b"]!)] }
        try check("batched_matmul_transposed") { x, _ in ["out": x["a"]!.matmul(x["b"]!.transposed())] }
        try check("transposed_left_shared_right") { x, _ in ["out": x["a"]!.transposed().matmul(x["b"]!)] }
        try check("linear") { x, _ in ["out": x["x"]!.linear(weight: x["weight"]!, bias: x["bias"]!)] }
    }

    @Test func broadcastingArithmetic() throws {
        try check("broadcasting") { x, _ in
            let (a, b, c) = (x["a"]!, x["b"]!, x["c"]!)
            return ["out": (a * b + c) - (a - b) / (c * c + 1), "out2": b / (a * a + 2) - c]
        }
    }

    @Test func elementwiseFunctions() throws {
        try check("elementwise") { t, _ in
            let (x, p) = (t["x"]!, t["p"]!)
            return [
                "exp": (x * 0.5).exp(), "log": p.log(), "sqrt": p.sqrt(), "rsqrt": p.rsqrt(), "tanh": x.tanh(),
                "sigmoid": x.sigmoid(), "logsigmoid": (x * 10).logSigmoid(), "pow": p.pow(2.5),
                "clamp": x.clamped(min: -1.5, max: 2.0), "neg_scale": -x * 0.25 + 1.0,
            ]
        }
        try check("activations") { t, _ in
            ["gelu": t["x"]!.gelu(), "gelu_tanh": t["x"]!.geluTanh(), "silu": t["x"]!.silu()]
        }
    }

    @Test func softmaxAndLogSoftmax() throws {
        try check("softmax") { t, _ in
            let x = t["x"]!
            return ["softmax_last": x.softmax(), "softmax_dim1": x.softmax(along: 1),
                    "log_softmax_last": x.logSoftmax(), "log_softmax_dim0": x.logSoftmax(along: 0)]
        }
    }

    @Test func normalisation() throws {
        try check("layer_norm") { t, _ in
            ["out": t["x"]!.layerNorm(weight: t["weight"]!, bias: t["bias"]!, epsilon: 1e-5)]
        }
        try check("rms_norm") { t, _ in ["out": t["x"]!.rmsNorm(weight: t["weight"]!, epsilon: 1e-6)] }
    }

    @Test func rotaryEmbedding() throws {
        try check("rope") { t, _ in
            let rotary = RotaryEmbedding(headDimension: 8, theta: 10000, positions: Array(0..<5))
            return ["out": t["x"]!.applyingRotaryEmbedding(rotary), "cos": rotary.cos, "sin": rotary.sin]
        }
    }

    @Test func groupedQueryAttentionWithCausalAndPaddingMask() throws {
        try check("attention_gqa_causal_padding") { t, _ in
            let mask = Tensor.attentionMask(
                keyIsValid: [[true, true, true, true, true], [true, true, true, false, false]], queryLength: 5, causal: true)
            return ["out": Tensor.scaledDotProductAttention(query: t["query"]!, key: t["key"]!, value: t["value"]!, mask: mask)]
        }
    }

    @Test func lossesAndEmbedding() throws {
        try check("cross_entropy") { t, reference in
            ["loss": try Tensor.crossEntropy(logits: t["logits"]!, targets: reference.indices!["targets"]!.indices)]
        }
        try check("mse") { t, reference in
            ["loss": Tensor.meanSquaredError(t["prediction"]!, reference.constants!["target"]!.tensor)]
        }
        try check("embedding") { t, reference in ["out": try t["table"]!.rows(at: reference.indices!["ids"]!.indices)] }
    }

    @Test func llamaStylePreNormBlock() throws {
        try check("llama_block", relative: 2e-4, absolute: 2e-5) { p, _ in
            let (batch, length, hidden, heads, kvHeads, headDim) = (2, 5, 16, 4, 2, 4)
            let x = p["x"]!
            func projectHeads(_ t: Tensor, _ count: Int) -> Tensor {
                t.reshaped([batch, length, count, headDim]).transposed(1, 2)
            }
            let rotary = RotaryEmbedding(headDimension: headDim, theta: 10000, positions: Array(0..<length))
            var h = x.rmsNorm(weight: p["attn_norm"]!, epsilon: 1e-6)
            let q = projectHeads(h.linear(weight: p["q_proj"]!), heads).applyingRotaryEmbedding(rotary)
            let k = projectHeads(h.linear(weight: p["k_proj"]!), kvHeads).applyingRotaryEmbedding(rotary)
            let v = projectHeads(h.linear(weight: p["v_proj"]!), kvHeads)
            let attention = Tensor.scaledDotProductAttention(
                query: q, key: k, value: v, mask: Tensor.causalMask(queryLength: length, keyLength: length))
            let residual = x + attention.transposed(1, 2).reshaped([batch, length, hidden]).linear(weight: p["o_proj"]!)
            h = residual.rmsNorm(weight: p["mlp_norm"]!, epsilon: 1e-6)
            let mlp = (h.linear(weight: p["gate_proj"]!).silu() * h.linear(weight: p["up_proj"]!)).linear(weight: p["down_proj"]!)
            return ["out": residual + mlp]
        }
    }

    @Test func vitStylePreNormBlock() throws {
        try check("vit_block", relative: 2e-4, absolute: 2e-5) { p, _ in
            let (batch, length, hidden, heads) = (2, 5, 16, 4)
            let x = p["x"]!
            func projectHeads(_ t: Tensor) -> Tensor {
                t.reshaped([batch, length, heads, hidden / heads]).transposed(1, 2)
            }
            var h = x.layerNorm(weight: p["ln1_weight"]!, bias: p["ln1_bias"]!, epsilon: 1e-6)
            let q = projectHeads(h.linear(weight: p["q_weight"]!, bias: p["q_bias"]!))
            let k = projectHeads(h.linear(weight: p["k_weight"]!, bias: p["k_bias"]!))
            let v = projectHeads(h.linear(weight: p["v_weight"]!, bias: p["v_bias"]!))
            let attention = Tensor.scaledDotProductAttention(query: q, key: k, value: v)
            let residual = x + attention.transposed(1, 2).reshaped([batch, length, hidden])
                .linear(weight: p["o_weight"]!, bias: p["o_bias"]!)
            h = residual.layerNorm(weight: p["ln2_weight"]!, bias: p["ln2_bias"]!, epsilon: 1e-6)
            let mlp = h.linear(weight: p["fc1_weight"]!, bias: p["fc1_bias"]!).geluTanh()
                .linear(weight: p["fc2_weight"]!, bias: p["fc2_bias"]!)
            return ["out": residual + mlp]
        }
    }
}
