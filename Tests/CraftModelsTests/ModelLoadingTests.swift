import Foundation
import SafeTensors
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

@Suite struct ModelLoadingTests {
    func llamaWeights() throws -> (LlamaConfiguration, [String: Tensor]) {
        let model = try LlamaModel(directory: ModelFixtures.directory("llama_untied_old_rope"))
        return (model.configuration, model.parameters)
    }

    func expectError(_ code: ModelError.Code, mentioning text: String, _ body: () throws -> Void,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("expected a \(code) error", sourceLocation: sourceLocation)
        } catch let error as ModelError {
            #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
            #expect(error.message.contains(text), "\(error.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func missingTensorIsNamed() throws {
        var (configuration, weights) = try llamaWeights()
        weights["model.layers.1.mlp.up_proj.weight"] = nil
        expectError(.missingTensor, mentioning: "model.layers.1.mlp.up_proj.weight") {
            _ = try LlamaModel(configuration: configuration, weights: weights, origin: "test.safetensors")
        }
    }

    @Test func unexpectedTensorIsNamed() throws {
        var (configuration, weights) = try llamaWeights()
        weights["model.layers.2.mlp.up_proj.weight"] = Tensor.zeros([64, 32])
        expectError(.unexpectedTensor, mentioning: "model.layers.2.mlp.up_proj.weight") {
            _ = try LlamaModel(configuration: configuration, weights: weights)
        }
    }

    @Test func wrongShapeIsNamed() throws {
        var (configuration, weights) = try llamaWeights()
        weights["lm_head.weight"] = Tensor.zeros([127, 32])
        expectError(.shapeMismatch, mentioning: "lm_head.weight") {
            _ = try LlamaModel(configuration: configuration, weights: weights)
        }
        var gpt2 = try GPT2Model(directory: ModelFixtures.directory("gpt2")).parameters
        gpt2["h.0.attn.c_attn.weight"] = Tensor.zeros([96, 32])  // transposed Conv1D weight
        let configuration2 = try GPT2Model(directory: ModelFixtures.directory("gpt2")).configuration
        expectError(.shapeMismatch, mentioning: "h.0.attn.c_attn.weight") {
            _ = try GPT2Model(configuration: configuration2, weights: gpt2)
        }
    }

    @Test func missingHeadTensorsAreReportedForAHeadConfiguration() throws {
        let noHead = try SiglipVisionModel(directory: ModelFixtures.directory("siglip_no_head"))
        var configuration = noHead.configuration
        configuration.useHead = true
        expectError(.missingTensor, mentioning: "head.") {
            _ = try SiglipVisionModel(configuration: configuration, weights: noHead.parameters)
        }
    }

    /// A temporary model directory with the given config and tensors.
    func temporaryModel(config: String, tensors: [String: Tensor]) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(config.utf8).write(to: directory.appendingPathComponent("config.json"))
        var writer = SafeTensorsWriter()
        for (name, tensor) in tensors { try writer.add(name, floats: tensor.scalars, shape: tensor.shape) }
        try writer.write(to: directory.appendingPathComponent("model.safetensors"))
        return directory
    }

    @Test func missingDirectoryIsNotFound() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-model-\(UUID().uuidString)")
        expectError(.notFound, mentioning: "config.json") { _ = try LlamaModel(directory: missing) }
    }

    @Test func invalidConfigurationsAreRejected() throws {
        let cases = [
            (#"{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 10}"#, "num_key_value_heads"),
            (#"{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10}"#, "intermediate_size"),
            (#"{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5}}"#, "llama3"),
            (#"{"hidden_size": "big"}"#, "hidden_size"),
            ("not json", "config.json"),
        ]
        for (config, mention) in cases {
            let directory = try temporaryModel(config: config, tensors: [:])
            defer { try? FileManager.default.removeItem(at: directory) }
            expectError(.invalidConfiguration, mentioning: mention) { _ = try LlamaModel(directory: directory) }
        }
    }

    @Test func duplicatePrefixedAndBareTensorsAreRejected() throws {
        let config = #"{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "image_size": 32, "patch_size": 8, "vision_use_head": false}"#
        let directory = try temporaryModel(config: config, tensors: [
            "post_layernorm.weight": Tensor.ones([32]), "vision_model.post_layernorm.weight": Tensor.ones([32]),
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        expectError(.unexpectedTensor, mentioning: "post_layernorm.weight") { _ = try SiglipVisionModel(directory: directory) }
    }

    @Test func missingWeightsFileIsNotFound() throws {
        let directory = try temporaryModel(config: #"{"n_embd": 32, "n_layer": 1, "n_head": 4}"#, tensors: [:])
        try FileManager.default.removeItem(at: directory.appendingPathComponent("model.safetensors"))
        defer { try? FileManager.default.removeItem(at: directory) }
        expectError(.notFound, mentioning: "model.safetensors") { _ = try GPT2Model(directory: directory) }
    }
}

@Suite struct ModelLoadingFormatTests {
    /// Copies a fixture checkpoint into a temporary directory with its tensors re-stored by `store`.
    func restored(_ name: String, store: ([String: (floats: [Float], shape: [Int])]) throws -> [String: Data]) throws -> URL {
        let source = try ModelFixtures.directory(name)
        let file = try SafeTensorsFile(contentsOf: source.appendingPathComponent("model.safetensors"))
        var tensors: [String: (floats: [Float], shape: [Int])] = [:]
        for tensorName in file.names { tensors[tensorName] = (try file.floats(tensorName), try file.info(tensorName).shape) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"), to: directory.appendingPathComponent("config.json"))
        for (fileName, data) in try store(tensors) { try data.write(to: directory.appendingPathComponent(fileName)) }
        return directory
    }

    @Test func shardedCheckpointLoadsLikeTheSingleFile() throws {
        let directory = try restored("llama_untied_old_rope") { tensors in
            var first = SafeTensorsWriter(), second = SafeTensorsWriter()
            var weightMap: [String: String] = [:]
            for (index, (name, tensor)) in tensors.sorted(by: { $0.key < $1.key }).enumerated() {
                let shard = index % 2 == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors"
                if index % 2 == 0 {
                    try first.add(name, floats: tensor.floats, shape: tensor.shape)
                } else {
                    try second.add(name, floats: tensor.floats, shape: tensor.shape)
                }
                weightMap[name] = shard
            }
            let index = try JSONSerialization.data(withJSONObject: ["metadata": [:] as [String: String], "weight_map": weightMap])
            return ["model-00001-of-00002.safetensors": try first.serialized(),
                    "model-00002-of-00002.safetensors": try second.serialized(), "model.safetensors.index.json": index]
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let sharded = try LlamaModel(directory: directory)
        let single = try LlamaModel(directory: ModelFixtures.directory("llama_untied_old_rope"))
        let tokens = [4, 8, 15, 16, 23, 42]
        expectClose(try sharded.logits(tokens: tokens), try single.logits(tokens: tokens), relative: 0, absolute: 0, "sharded logits")
    }

    /// How weights are kept: F16/BF16 matrices in half precision (2 bytes per value) by default,
    /// converted with `.float32`; F32 ones read in place from the mapped file; vectors as float32.
    @Test func weightsAreKeptAsStored() throws {
        let halfDirectory = try ModelFixtures.directory("qwen2_tied_bf16")
        let half = try LlamaModel(directory: halfDirectory)
        guard case .half(let query)? = half.weights["model.layers.0.self_attn.q_proj.weight"] else {
            Issue.record("a bfloat16 matrix was not kept in half precision")
            return
        }
        #expect(query.format == .bfloat16)
        guard case .float32? = half.weights["model.norm.weight"] else {
            Issue.record("a norm vector should be float32")
            return
        }
        let converted = try LlamaModel(directory: halfDirectory, precision: .float32)
        #expect(converted.weights.values.allSatisfy { if case .float32 = $0 { true } else { false } })
        let halfBytes = half.weights.values.reduce(0) { $0 + $1.byteCount }
        let floatBytes = converted.weights.values.reduce(0) { $0 + $1.byteCount }
        #expect(Double(halfBytes) < 0.55 * Double(floatBytes), "\(halfBytes) vs \(floatBytes)")
        let tokens = [4, 8, 15, 16, 23, 42]
        expectClose(try half.logits(tokens: tokens), try converted.logits(tokens: tokens), relative: 1e-5, "half vs float32 logits")

        let float = try LlamaModel(directory: ModelFixtures.directory("llama_tied"))
        guard case .float32(let embedding)? = float.weights["model.embed_tokens.weight"] else {
            Issue.record("a float32 matrix should load as float32")
            return
        }
        #expect(embedding.isBorrowed, "float32 weights are read in place from the mapped file")
    }

    /// A generation's prefill computes the last position's logits only; they equal the last row of
    /// the full logits, and the cache it leaves continues the same way (half and float32 weights).
    @Test(arguments: ["llama_tied", "qwen2_tied_bf16", "gpt2_bf16", "gpt2"])
    func lastLogitsEqualTheLastRow(name: String) throws {
        let directory = try ModelFixtures.directory(name)
        let model: any CausalLanguageModel = name.hasPrefix("gpt2") ? try GPT2Model(directory: directory) : try LlamaModel(directory: directory)
        let tokens = [5, 17, 99, 3, 42]
        var fullCache = model.makeCache(), lastCache = model.makeCache()
        let full = try model.logits(tokens: tokens, cache: &fullCache)
        let last = try model.lastLogits(tokens: tokens, cache: &lastCache)
        #expect(last.shape == [1, model.vocabularySize] && lastCache.length == tokens.count)
        expectClose(last, full.sliced(along: 0, 4..<5), relative: 1e-6, "\(name) last logits")
        expectClose(try model.logits(tokens: [8], cache: &lastCache), try model.logits(tokens: [8], cache: &fullCache),
                    relative: 1e-6, "\(name) next step")
    }

    /// Safetensors data need not be aligned: a header whose length leaves the tensors at odd offsets
    /// still loads (converted to float32 buffers instead of being read in place).
    @Test func unalignedTensorsLoadThroughACopy() throws {
        let directory = try restored("llama_tied") { tensors in
            var header: [String: Any] = [:]
            var data = Data()
            for name in tensors.keys.sorted() {
                let tensor = tensors[name]!
                var bits = tensor.floats.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
                let start = data.count
                data.append(Data(bytes: &bits, count: bits.count * 2))
                header[name] = ["dtype": "BF16", "shape": tensor.shape, "data_offsets": [start, data.count]]
            }
            var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
            if json.count % 2 == 0 { json.append(0x20) }  // an odd header length: every tensor starts at an odd address
            var length = UInt64(json.count).littleEndian
            return ["model.safetensors": Data(bytes: &length, count: 8) + json + data]
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try LlamaModel(directory: directory)
        guard case .float32(let query)? = model.weights["model.layers.0.self_attn.q_proj.weight"] else {
            Issue.record("an unaligned bfloat16 matrix should be converted")
            return
        }
        #expect(!query.isBorrowed)
        #expect(try model.logits(tokens: [1, 2, 3]).shape == [3, 128])
    }

    @Test func halfPrecisionCheckpointLoads() throws {
        let directory = try restored("gpt2") { tensors in
            var writer = SafeTensorsWriter()
            for (name, tensor) in tensors { try writer.add(name, floats: tensor.floats, shape: tensor.shape, as: .bf16) }
            return ["model.safetensors": try writer.serialized()]
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let bf16 = try GPT2Model(directory: directory)
        let reference = try ModelFixtures.reference("gpt2")
        let logits = try bf16.logits(tokens: reference.ints("input_ids"))
        // bfloat16 keeps 8 bits of mantissa: the logits stay close, not equal.
        expectClose(logits, try reference.tensor("logits"), relative: 0.1, absolute: 0.1, "bf16 logits")
    }
}

@Suite("config.json limits: sizes and file size are checked before anything is allocated")
struct ModelConfigurationLimitTests {
    func directory(config: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(config.utf8).write(to: directory.appendingPathComponent("config.json"))
        return directory
    }

    func expectInvalid(_ config: String, mentioning fields: [String], load: (URL) throws -> Void,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let directory = try directory(config: config)
        defer { try? FileManager.default.removeItem(at: directory) }
        let error = try #require(throws: ModelError.self, sourceLocation: sourceLocation) { try load(directory) }
        #expect(error.code == .invalidConfiguration, "\(error.message)", sourceLocation: sourceLocation)
        #expect(error.message.contains("config.json"), "\(error.message)", sourceLocation: sourceLocation)
        for field in fields {
            #expect(error.message.contains(field), "\(error.message)", sourceLocation: sourceLocation)
        }
    }

    @Test("a Llama config declaring a 10^12-element embedding is a typed error, not an allocation")
    func hugeLlamaEmbedding() throws {
        // 4 000 000 × 250 000 = 10^12 elements; each size alone is also over its limit or not.
        try expectInvalid(#"{"hidden_size": 100000, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 4000000}"#,
                          mentioning: ["vocab_size", "token embedding"]) { _ = try LlamaModel(directory: $0) }
        try expectInvalid(#"{"hidden_size": 1000000, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 1000000}"#,
                          mentioning: ["hidden_size", "limit"]) { _ = try LlamaModel(directory: $0) }
        try expectInvalid(#"{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1000000000000, "num_attention_heads": 4, "vocab_size": 10}"#,
                          mentioning: ["num_hidden_layers"]) { _ = try LlamaModel(directory: $0) }
        try expectInvalid(#"{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10, "max_position_embeddings": 1000000000000}"#,
                          mentioning: ["max_position_embeddings"]) { _ = try LlamaModel(directory: $0) }
        try expectInvalid(#"{"hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 1024, "num_key_value_heads": 1024, "head_dim": 131072, "vocab_size": 10}"#,
                          mentioning: ["num_attention_heads", "query projection"]) { _ = try LlamaModel(directory: $0) }
    }

    @Test("sizes near Int.max do not overflow (GPT-2's default n_inner is 4 × n_embd)")
    func overflowingSizes() throws {
        try expectInvalid(#"{"n_embd": 4611686018427387904, "n_layer": 1, "n_head": 1}"#, mentioning: ["n_embd"]) { _ = try GPT2Model(directory: $0) }
        try expectInvalid(#"{"n_embd": 32, "n_layer": 1, "n_head": 4, "n_positions": 100000000, "vocab_size": 10}"#, mentioning: ["n_positions"]) { _ = try GPT2Model(directory: $0) }
        try expectInvalid(#"{"n_embd": 65536, "n_inner": 64, "n_layer": 1, "n_head": 4, "n_positions": 1048576, "vocab_size": 10}"#, mentioning: ["position embedding"]) { _ = try GPT2Model(directory: $0) }
        try expectInvalid(#"{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "image_size": 9223372036854775807, "patch_size": 1}"#,
                          mentioning: ["image_size"]) { _ = try SiglipVisionModel(directory: $0) }
        try expectInvalid(#"{"vocab_size": 10, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "max_position_embeddings": -5}"#,
                          mentioning: ["max_position_embeddings", "positive"]) { _ = try SiglipTextModel(directory: $0) }
    }

    @Test("a composite config's tower is checked with its field path")
    func compositeTower() throws {
        try expectInvalid(#"{"model_type": "siglip", "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "patch_size": 100000}}"#,
                          mentioning: ["vision_config", "patch_size"]) { _ = try SiglipVisionModel(directory: $0) }
    }

    @Test("a config.json over 4 MiB is refused before it is read")
    func oversizedConfig() throws {
        let directory = try directory(config: "{")
        defer { try? FileManager.default.removeItem(at: directory) }
        let handle = try FileHandle(forWritingTo: directory.appendingPathComponent("config.json"))
        try handle.truncate(atOffset: UInt64(ModelFileLimits.maximumConfigurationBytes) + 1)
        try handle.close()
        for load in [{ _ = try LlamaModel(directory: directory) }, { _ = try ModelArchitecture.detect(directory: directory) },
                     { _ = try SiglipVisionModel(directory: directory) }] as [() throws -> Void] {
            let error = try #require(throws: ModelError.self) { try load() }
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.contains("config.json") && error.message.contains("\(ModelFileLimits.maximumConfigurationBytes)-byte limit"), "\(error.message)")
        }
    }

    @Test("published-size configurations stay within the limits")
    func realSizesPass() throws {
        let llama405 = #"{"hidden_size": 16384, "intermediate_size": 53248, "num_hidden_layers": 126, "num_attention_heads": 128, "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072}"#
        let configuration = try JSONDecoder().decode(LlamaConfiguration.self, from: Data(llama405.utf8))
        #expect(configuration.vocabularySize == 128256 && configuration.headDimension == 128)
    }
}
