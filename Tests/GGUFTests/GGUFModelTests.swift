import CraftModels
import Foundation
import TensorCore
import Testing

@testable import GGUF

@Suite("Llama and Qwen2 decoders from GGUF files, against transformers loading the same files")
struct GGUFModelTests {
    static let models = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/models")

    /// transformers dequantizes with gguf-py, which Craft matches bit for bit, so the float32
    /// weights are the same on both sides and only the arithmetic order differs.
    @Test("logits equal transformers' on the same GGUF file", arguments: ["llama_f32", "llama_q8_0", "qwen2_f16", "llama_q4_k", "qwen2_q4_0"])
    func logits(name: String) throws {
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.models.appendingPathComponent("\(name).logits.json"))) as! [String: Any]
        let tokens = reference["tokens"] as! [Int]
        let expected = (reference["logits"] as! [NSNumber]).map { $0.floatValue }
        let model = try LlamaModel(gguf: Self.models.appendingPathComponent("\(name).gguf"), activations: .float32)
        let logits = try withoutGradients { try model.logits(tokens: tokens) }
        #expect(logits.shape == reference["shape"] as? [Int])
        let scale = expected.map(abs).max() ?? 1
        let difference = zip(logits.scalars, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference / scale < 1e-4, "max |difference| \(difference) against max |logit| \(scale)")
        // Greedy continuations agree at every position.
        let rows = logits.shape[0], vocabulary = logits.shape[1]
        for row in 0..<rows {
            let ours = (0..<vocabulary).max { logits.scalars[row * vocabulary + $0] < logits.scalars[row * vocabulary + $1] }
            let theirs = (0..<vocabulary).max { expected[row * vocabulary + $0] < expected[row * vocabulary + $1] }
            #expect(ours == theirs, "position \(row)")
        }
    }

    /// Decoding over int8 activations (the default, llama.cpp's arithmetic) adds an error no larger
    /// than Q8_0's own weight rounding: llama_q8_0 is llama_f32's weights in Q8_0, so transformers'
    /// logits of the two files measure what rounding the weights to 8 bits costs; rounding the
    /// activations to 8 bits per group of 32 costs at most that much more.
    @Test("int8-activation decoding costs no more than rounding the weights to Q8_0")
    func int8Decoding() throws {
        func reference(_ name: String) throws -> (tokens: [Int], logits: [Float], vocabulary: Int) {
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.models.appendingPathComponent("\(name).logits.json"))) as! [String: Any]
            return (json["tokens"] as! [Int], (json["logits"] as! [NSNumber]).map { $0.floatValue }, (json["shape"] as! [Int])[1])
        }
        let (tokens, quantized, vocabulary) = try reference("llama_q8_0")
        let float = try reference("llama_f32").logits
        func row(_ values: [Float], _ position: Int) -> [Float] { Array(values[(position * vocabulary)..<((position + 1) * vocabulary)]) }
        func difference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! / (b.map(abs).max() ?? 1) }
        let weightRounding = tokens.indices.map { difference(row(quantized, $0), row(float, $0)) }.max()!

        let model = try LlamaModel(gguf: Self.models.appendingPathComponent("llama_q8_0.gguf"))
        var cache = model.makeCache()
        var worst: Float = 0
        for (position, token) in tokens.enumerated() {
            // One token at a time through the KV cache: every step is a decoding row.
            let logits = try withoutGradients { try model.logits(tokens: [token], cache: &cache) }
            worst = max(worst, difference(logits.scalars, row(quantized, position)))
        }
        #expect(worst > 1e-4 && worst <= weightRounding, "int8 activations: \(worst) of the largest logit; Q8_0 weights: \(weightRounding)")
    }

    /// Q8_0 matrices stay Q8_0 blocks (`.stored`), or become float32 on request; both give the
    /// transformers logits, and batched generation over the blocks equals generation alone.
    @Test("Q8_0 weights are kept as blocks, and batched decoding over them equals decoding alone")
    func quantizedWeights() throws {
        let url = Self.models.appendingPathComponent("llama_q8_0.gguf")
        let kept = try LlamaModel(gguf: url, activations: .float32)
        let widened = try LlamaModel(gguf: url, precision: .float32)
        let summary = WeightMatrix.summary(of: kept.weights.values)
        #expect(summary.contains("16 Q8_0 matrices"), "\(summary)")  // 7 per layer, the embedding and the output
        #expect(!WeightMatrix.summary(of: widened.weights.values).contains("Q8_0"))
        let tokens = [1, 17, 42, 5, 99]
        let a = try withoutGradients { try kept.logits(tokens: tokens) }
        let b = try withoutGradients { try widened.logits(tokens: tokens) }
        let difference = zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference < 1e-4 * (b.scalars.map(abs).max() ?? 1))
        let prompts = [[1, 17, 42], [1, 5], [1, 99, 3, 64, 120], [1, 7]]
        let together = try generate(kept, prompts: prompts, parameters: .init(maxNewTokens: 6))
        let alone = try prompts.map { try generate(kept, prompt: $0, parameters: .init(maxNewTokens: 6)) }
        #expect(together == alone)
    }

    /// A Q4_K_M-like mix: every matrix stays in its file's blocks, so the weights in memory are about
    /// the file's size (the norms are the only float32 tensors); batched decoding equals alone.
    @Test("K-quant weights are kept as blocks, about the file's size in memory")
    func kQuantWeights() throws {
        let url = Self.models.appendingPathComponent("llama_q4_k.gguf")
        let kept = try LlamaModel(gguf: url)
        let summary = WeightMatrix.summary(of: kept.weights.values)
        #expect(summary.contains("11 Q4_K matrices") && summary.contains("4 Q6_K matrices") && summary.contains("1 Q5_K matrices"), "\(summary)")
        let floatBytes = kept.weights.values.filter { if case .float32 = $0 { true } else { false } }.map(\.byteCount).reduce(0, +)
        #expect(floatBytes < 8 * 1024, "only norms in float32: \(summary)")
        let total = kept.weights.values.map(\.byteCount).reduce(0, +)
        let fileSize = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! Int
        #expect(Double(total) <= Double(fileSize) && Double(total) > 0.9 * Double(fileSize), "\(total) bytes of weights for a \(fileSize)-byte file")
        let prompts = [[1, 17, 42], [1, 5], [1, 99, 3, 64, 120]]
        let together = try generate(kept, prompts: prompts, parameters: .init(maxNewTokens: 5))
        let alone = try prompts.map { try generate(kept, prompt: $0, parameters: .init(maxNewTokens: 5)) }
        #expect(together == alone)
    }

    @Test("the configuration comes from the {arch}.* keys; Qwen2 has query, key and value biases")
    func configuration() throws {
        let llama = try LlamaConfiguration(gguf: GGUFFile(contentsOf: Self.models.appendingPathComponent("llama_f32.gguf")))
        #expect(llama.hiddenSize == 64 && llama.intermediateSize == 128 && llama.hiddenLayers == 2)
        #expect(llama.attentionHeads == 4 && llama.kvHeads == 2 && llama.vocabularySize == 600 && !llama.tieWordEmbeddings)
        #expect(llama.rmsNormEpsilon == 1e-5 && llama.maxPositionEmbeddings == 64 && llama.bosTokenID == 1 && llama.eosTokenIDs == [2])
        let qwen = try LlamaConfiguration(gguf: GGUFFile(contentsOf: Self.models.appendingPathComponent("qwen2_f16.gguf")))
        #expect(qwen.modelType == "qwen2" && qwen.tieWordEmbeddings && qwen.attentionBiases.query && !qwen.attentionBiases.output)
    }

    @Test("undoing llama.cpp's permutation is the inverse of it")
    func unpermute() {
        // llama.cpp: reshape(heads, 2, rows / heads / 2, columns).swapaxes(1, 2): row (h, s, p) moves to (h, p, s).
        let (heads, rows, columns) = (2, 8, 3)
        let original = (0..<(rows * columns)).map(Float.init)
        var permuted = [Float](repeating: 0, count: original.count)
        let half = rows / heads / 2
        for h in 0..<heads { for s in 0..<2 { for p in 0..<half {
            let from = ((h * 2 + s) * half + p) * columns, to = ((h * half + p) * 2 + s) * columns
            permuted[to..<(to + columns)] = original[from..<(from + columns)]
        } } }
        #expect(permuted != original)
        #expect(LlamaModel.unpermute(permuted, shape: [rows, columns], heads: heads) == original)
    }
}
