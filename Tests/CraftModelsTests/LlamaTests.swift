import Foundation
import SafeTensors
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

@Suite struct LlamaTests {
    /// Llama checkpoints, and Qwen2 ones (the same network with query/key/value biases): one untied in
    /// float32, one tied saved in bfloat16 (its reference is transformers on the same file in float32;
    /// `llama_untied_f16` likewise in float16): the half-precision ones run with their weights kept in
    /// half precision.
    /// The `llama_rope_*` ones use scaled RoPE (`linear`, `llama3` with an original context of 16) and
    /// the default one on 40-token sequences, longer than that original context.
    static let fixtures = [
        "llama_tied", "llama_untied_old_rope", "llama_biases_head_dim", "qwen2_untied", "qwen2_tied_bf16",
        "llama_rope_linear", "llama_rope_llama3", "llama_rope_default_long", "llama_untied_f16",
    ]

    @Test(arguments: fixtures) func logitsMatchTransformers(name: String) throws {
        let model = try LlamaModel(directory: ModelFixtures.directory(name))
        let reference = try ModelFixtures.reference(name)
        let logits = try model.logits(tokens: reference.ints("input_ids"))
        expectClose(logits, try reference.tensor("logits"), "\(name) logits")
    }

    @Test func readsBothRopeLayouts() throws {
        let tied = try LlamaModel(directory: ModelFixtures.directory("llama_tied")).configuration
        let old = try LlamaModel(directory: ModelFixtures.directory("llama_untied_old_rope")).configuration
        #expect(tied.ropeTheta == 10000 && tied.tieWordEmbeddings)
        #expect(old.ropeTheta == 500000 && !old.tieWordEmbeddings)
        #expect(tied.kvHeads == 2 && tied.attentionHeads == 4 && tied.headDimension == 8)
    }

    @Test(arguments: fixtures) func greedyGenerationMatchesTransformers(name: String) throws {
        let model = try LlamaModel(directory: ModelFixtures.directory(name))
        let reference = try ModelFixtures.reference(name)
        let prompt = try reference.ints("input_ids")
        let expected = try reference.ints("generated")
        let generated = try generate(model, prompt: prompt, parameters: .init(maxNewTokens: expected.count - prompt.count))
        #expect(prompt + generated == expected)
    }

    @Test func cachedLogitsEqualFullRecompute() throws {
        let model = try LlamaModel(directory: ModelFixtures.directory("llama_tied"))
        let tokens = [5, 17, 99, 3, 42, 8]
        let full = try model.logits(tokens: tokens)
        var cache = model.makeCache()
        var pieces: [Tensor] = [try model.logits(tokens: Array(tokens[0..<3]), cache: &cache)]
        for token in tokens[3...] { pieces.append(try model.logits(tokens: [token], cache: &cache)) }
        #expect(cache.length == tokens.count)
        expectClose(Tensor.concatenated(pieces, along: 0), full, relative: 1e-5, "cached logits")
    }

    @Test(arguments: fixtures) func embeddingInputGradientMatchesAutograd(name: String) throws {
        let model = try LlamaModel(directory: ModelFixtures.directory(name))
        let reference = try ModelFixtures.reference(name)
        let embeddings = try reference.tensor("embeddings").requiringGradient()
        let logits = try model.logits(embeddings: embeddings)
        expectClose(logits, try reference.tensor("embeddings_logits"), "\(name) embedding logits")
        let loss = try Tensor.crossEntropy(logits: logits, targets: IndexTensor(try reference.ints("targets")))
        expectClose(loss, try reference.tensor("loss"), "\(name) loss")
        let gradient = loss.gradients(withRespectTo: [embeddings])[0]
        expectClose(gradient, try reference.tensor("embeddings_gradient"), relative: 1e-3, absolute: 1e-6, "\(name) gradient")
    }

    @Test func rejectsTokenOutsideVocabulary() throws {
        let model = try LlamaModel(directory: ModelFixtures.directory("llama_tied"))
        #expect(throws: ModelError.self) { _ = try model.logits(tokens: [1, 128]) }
        #expect(throws: ModelError.self) { _ = try model.logits(tokens: []) }
        // max_position_embeddings is 64: a longer sequence is refused rather than run out of range.
        #expect(throws: ModelError.self) { _ = try model.logits(tokens: Array(repeating: 1, count: 65)) }
        #expect(throws: ModelError.self) { _ = try model.logits(embeddings: Tensor.zeros([2, 31])) }
    }

    @Test func qwen2ConfigurationsSetTheirOwnBiasesAndRefuseSlidingWindows() throws {
        let directory = try ModelFixtures.directory("qwen2_untied")
        #expect(try ModelArchitecture.detect(directory: directory) == .qwen2)
        let model = try LlamaModel(directory: directory)
        let c = model.configuration
        #expect(c.modelType == "qwen2" && c.attentionBiases == .qwen2 && !c.mlpBias && !c.tieWordEmbeddings)
        #expect(c.ropeTheta == 1_000_000 && c.kvHeads == 2 && c.attentionHeads == 4)
        #expect(model.parameters["model.layers.0.self_attn.q_proj.bias"] != nil)
        #expect(model.parameters["model.layers.0.self_attn.o_proj.bias"] == nil)
        #expect(try LlamaModel(directory: try ModelFixtures.directory("qwen2_tied_bf16")).configuration.tieWordEmbeddings)
        let stored = try SafeTensorsFile(contentsOf: try ModelFixtures.directory("qwen2_tied_bf16").appendingPathComponent("model.safetensors"))
        #expect(try stored.info("model.layers.0.self_attn.q_proj.weight").dtype == .bf16)

        // A copy whose config.json turns on the sliding window (not implemented): refused, naming the field.
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("craft-qwen2-window-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: copy) }
        try FileManager.default.copyItem(at: directory, to: copy)
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: copy.appendingPathComponent("config.json"))) as? [String: Any])
        object["use_sliding_window"] = true
        try JSONSerialization.data(withJSONObject: object).write(to: copy.appendingPathComponent("config.json"))
        let error = try #require(throws: ModelError.self) { _ = try LlamaModel(directory: copy) }
        #expect(error.message.contains("use_sliding_window true is not supported"), "\(error.message)")
        object["use_sliding_window"] = false
        object["model_type"] = "mistral"
        try JSONSerialization.data(withJSONObject: object).write(to: copy.appendingPathComponent("config.json"))
        let other = try #require(throws: ModelError.self) { _ = try LlamaModel(directory: copy) }
        #expect(other.message.contains("model_type 'mistral' is not a Llama-family decoder"), "\(other.message)")

        // A Qwen2 configuration written by Craft reads back as Qwen2.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("craft-qwen2-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try ModelWriting.write(model, to: root)
        #expect(try ModelArchitecture.detect(directory: root) == .qwen2)
        let back = try LlamaModel(directory: root)
        #expect(back.configuration == c)
        expectClose(try back.logits(tokens: [3, 5, 7]), try model.logits(tokens: [3, 5, 7]), relative: 1e-6, "written Qwen2")
    }

    @Test func ropeVariantsAreReadFromEitherLayoutAndBadOnesAreRefused() throws {
        let llama3 = try LlamaModel(directory: try ModelFixtures.directory("llama_rope_llama3")).configuration
        #expect(llama3.ropeScaling == .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 16))
        #expect(llama3.ropeTheta == 500_000)
        #expect(try LlamaModel(directory: try ModelFixtures.directory("llama_rope_linear")).configuration.ropeScaling == .linear(factor: 4))

        // llama3 scaling divides low frequencies by the factor, keeps high ones, and blends between.
        let scaled = llama3.ropeScaling.inverseFrequencies(headDimension: 8, theta: 500_000)
        let plain = RotaryEmbedding.inverseFrequencies(headDimension: 8, theta: 500_000)
        #expect(scaled[1] == plain[1] / 8 && scaled[3] == plain[3] / 8)
        #expect(scaled[0] < plain[0] && scaled[0] > plain[0] / 8)

        func decode(_ rope: [String: Any], key: String = "rope_parameters") throws -> LlamaConfiguration {
            let object: [String: Any] = ["hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                                         "vocab_size": 16, key: rope]
            return try JSONDecoder().decode(LlamaConfiguration.self, from: JSONSerialization.data(withJSONObject: object))
        }
        // transformers 4's rope_scaling layout carries the type too.
        #expect(try decode(["rope_type": "linear", "factor": 2.0], key: "rope_scaling").ropeScaling == .linear(factor: 2))
        #expect(try decode(["type": "linear", "factor": 2.0], key: "rope_scaling").ropeScaling == .linear(factor: 2))
        let refused: [([String: Any], String)] = [
            (["rope_type": "yarn", "factor": 4.0], "RoPE type 'yarn' is not supported"),
            (["rope_type": "linear"], "needs factor"),
            (["rope_type": "linear", "factor": -1.0], "must be positive"),
            (["rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0, "original_max_position_embeddings": 16],
             "must be larger than low_freq_factor"),
            (["rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0], "original_max_position_embeddings"),
        ]
        for (rope, expected) in refused {
            do {
                _ = try decode(rope)
                Issue.record("\(rope) was accepted")
            } catch {
                #expect("\(error)".contains(expected), "\(rope): \(error)")
            }
        }

        // Written back by Craft, a scaled configuration reads back the same.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("craft-rope-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let model = try LlamaModel(directory: try ModelFixtures.directory("llama_rope_llama3"))
        try ModelWriting.write(model, to: root)
        #expect(try LlamaModel(directory: root).configuration == model.configuration)
    }
}
