import Foundation
import SafeTensors
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

/// The tiny models written for the transformers cross-check (scripts/check_written_models.py), their
/// fixed inputs and their outputs.
enum WrittenModels {
    /// Every tensor plus `0.1·N(0,1)`: biases and norms away from 0 and 1, so a misplaced one shows.
    static func scrambled(_ weights: [String: Tensor], seed: UInt64) -> [String: Tensor] {
        var generator = TensorCore.SplitMix64(seed: seed)
        var result: [String: Tensor] = [:]
        for name in weights.keys.sorted() {
            let tensor = weights[name]!
            result[name] = tensor + Tensor(randomNormal: tensor.shape, standardDeviation: 0.1, generator: &generator)
        }
        return result
    }

    static let tokens = [1, 5, 9, 2, 7, 3, 39, 0]
    static let textTokens = [[3, 4, 5, 6, 0, 0, 0, 0], [7, 8, 9, 10, 11, 12, 13, 0]]
    static var pixels: Tensor { Tensor((0..<384).map { Float(sin(0.37 * Double($0))) }, shape: [2, 3, 8, 8]) }

    static func llama(_ configuration: LlamaConfiguration, seed: UInt64) throws -> LlamaModel {
        try LlamaModel(configuration: configuration, weights: scrambled(ModelInitialization.llama(configuration, seed: seed), seed: seed + 100))
    }
    static func gpt2(_ configuration: GPT2Configuration, seed: UInt64) throws -> GPT2Model {
        try GPT2Model(configuration: configuration, weights: scrambled(ModelInitialization.gpt2(configuration, seed: seed), seed: seed + 100))
    }
    static func vision(_ configuration: SiglipVisionConfiguration, seed: UInt64) throws -> SiglipVisionModel {
        try SiglipVisionModel(configuration: configuration,
                              weights: scrambled(ModelInitialization.siglipVision(configuration, seed: seed), seed: seed + 100))
    }
    static func text(_ configuration: SiglipTextConfiguration, seed: UInt64) throws -> SiglipTextModel {
        try SiglipTextModel(configuration: configuration,
                            weights: scrambled(ModelInitialization.siglipText(configuration, seed: seed), seed: seed + 100))
    }

    /// Writes the six models under `root` (one directory each).
    static func writeAll(to root: URL) throws {
        try ModelWriting.write(llama(TinyConfigurations.llama, seed: 1), to: root.appendingPathComponent("llama"))
        try ModelWriting.write(llama(TinyConfigurations.llamaTied, seed: 2), to: root.appendingPathComponent("llama_tied"))
        try ModelWriting.write(gpt2(TinyConfigurations.gpt2, seed: 3), to: root.appendingPathComponent("gpt2"))
        try ModelWriting.write(gpt2(TinyConfigurations.gpt2Untied, seed: 4), to: root.appendingPathComponent("gpt2_untied"))
        try ModelWriting.write(vision(TinyConfigurations.vision, seed: 5), to: root.appendingPathComponent("vision"))
        try ModelWriting.write(vision(TinyConfigurations.visionNoHead, seed: 6), to: root.appendingPathComponent("vision_no_head"))
        try ModelWriting.write(text(TinyConfigurations.text, seed: 7), to: root.appendingPathComponent("text"))
    }

    /// The outputs of the models loaded back from `root`, named as in the reference fixture.
    static func outputs(from root: URL) throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for name in ["llama", "llama_tied"] {
            result[name + "_logits"] = try LlamaModel(directory: root.appendingPathComponent(name)).logits(tokens: tokens)
        }
        for name in ["gpt2", "gpt2_untied"] {
            result[name + "_logits"] = try GPT2Model(directory: root.appendingPathComponent(name)).logits(tokens: tokens)
        }
        for name in ["vision", "vision_no_head"] {
            let output = try SiglipVisionModel(directory: root.appendingPathComponent(name))(pixelValues: pixels)
            result[name + "_last_hidden_state"] = output.lastHiddenState
            if let pooled = output.poolerOutput { result[name + "_pooler_output"] = pooled }
        }
        let text = try SiglipTextModel(directory: root.appendingPathComponent("text"))(tokens: textTokens)
        result["text_last_hidden_state"] = text.lastHiddenState
        result["text_pooler_output"] = text.poolerOutput
        return result
    }
}

@Suite struct ModelWritingTests {
    func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("craft-model-writing-\(UUID().uuidString)")
    }

    @Test func everyKindRoundTripsThroughItsDirectory() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        try WrittenModels.writeAll(to: root)

        let llama = try WrittenModels.llama(TinyConfigurations.llama, seed: 1)
        let llamaBack = try LlamaModel(directory: root.appendingPathComponent("llama"))
        #expect(llamaBack.configuration == llama.configuration)
        #expect(llamaBack.parameters.mapValues(\.scalars) == llama.parameters.mapValues(\.scalars))
        let tied = try LlamaModel(directory: root.appendingPathComponent("llama_tied"))
        #expect(tied.configuration.tieWordEmbeddings && tied.parameters["lm_head.weight"] == nil)

        let gpt2 = try WrittenModels.gpt2(TinyConfigurations.gpt2Untied, seed: 4)
        let gpt2Back = try GPT2Model(directory: root.appendingPathComponent("gpt2_untied"))
        #expect(gpt2Back.configuration == gpt2.configuration)
        #expect(gpt2Back.parameters.mapValues(\.scalars) == gpt2.parameters.mapValues(\.scalars))

        for (name, configuration, seed) in [("vision", TinyConfigurations.vision, UInt64(5)), ("vision_no_head", TinyConfigurations.visionNoHead, 6)] {
            let vision = try WrittenModels.vision(configuration, seed: seed)
            let back = try SiglipVisionModel(directory: root.appendingPathComponent(name))
            #expect(back.configuration == vision.configuration)
            #expect(back.parameters.mapValues(\.scalars) == vision.parameters.mapValues(\.scalars))
        }
        let text = try WrittenModels.text(TinyConfigurations.text, seed: 7)
        let textBack = try SiglipTextModel(directory: root.appendingPathComponent("text"))
        #expect(textBack.configuration == text.configuration)
        #expect(textBack.parameters.mapValues(\.scalars) == text.parameters.mapValues(\.scalars))

        // Published layouts: prefixes, model_type, the architecture detection.
        let gpt2File = try SafeTensorsFile(contentsOf: root.appendingPathComponent("gpt2/model.safetensors"))
        #expect(gpt2File.names.allSatisfy { $0.hasPrefix("transformer.") })
        let visionFile = try SafeTensorsFile(contentsOf: root.appendingPathComponent("vision/model.safetensors"))
        #expect(visionFile.names.allSatisfy { $0.hasPrefix("vision_model.") })
        let expected: [String: ModelArchitecture] = ["llama": .llama, "gpt2": .gpt2, "vision": .siglipVision, "text": .siglipText]
        for (name, architecture) in expected {
            #expect(try ModelArchitecture.detect(directory: root.appendingPathComponent(name)) == architecture)
        }
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("llama/config.json"))) as? [String: Any]
        #expect(config?["eos_token_id"] as? Int == 2 && config?["model_type"] as? String == "llama")
    }

    /// transformers 5.24 loaded these directories and computed these outputs (scripts/check_written_models.py).
    @Test func transformersComputesTheSameOutputsFromTheWrittenModels() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        try WrittenModels.writeAll(to: root)
        let outputs = try WrittenModels.outputs(from: root)
        if let export = ProcessInfo.processInfo.environment["CRAFT_EXPORT_WRITTEN_MODELS"] {
            // By hand: keep the directories and Swift's outputs for the Python check.
            let target = URL(fileURLWithPath: export)
            try? FileManager.default.removeItem(at: target)
            try FileManager.default.copyItem(at: root, to: target)
            var writer = SafeTensorsWriter()
            for (name, tensor) in outputs { try writer.add(name, floats: tensor.scalars, shape: tensor.shape) }
            try writer.write(to: target.appendingPathComponent("swift_outputs.safetensors"))
        }
        let url = try #require(Bundle.module.url(forResource: "written_models.reference", withExtension: "safetensors", subdirectory: "Fixtures"))
        let reference = try SafeTensorsFile(contentsOf: url)
        #expect(Set(reference.names) == Set(outputs.keys))
        for name in reference.names {
            let actual = try #require(outputs[name])
            expectClose(actual, try reference.tensor(name), relative: 1e-4, absolute: 1e-5, name)
        }
    }

    @Test func unwritableDirectoryIsAnError() throws {
        let model = try WrittenModels.gpt2(TinyConfigurations.gpt2, seed: 3)
        let file = temporaryDirectory()
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let error = #expect(throws: ModelError.self) { try ModelWriting.write(model, to: file.appendingPathComponent("inside")) }
        #expect(error?.code == .writeFailed && error?.message.contains(file.path) == true)
    }
}
