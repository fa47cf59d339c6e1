import CraftModels
import Foundation
import Testing

@Suite("The model-type table")
struct ModelArchitectureTests {
    @Test("model_type selects first, then architectures; names and model types are unique")
    func detectionFollowsTheTable() throws {
        #expect(try ModelArchitecture.detect(configuration: ["model_type": "llama"], source: "x") == .llama)
        #expect(try ModelArchitecture.detect(configuration: ["model_type": "siglip"], source: "x") == .siglipVision)
        #expect(try ModelArchitecture.detect(configuration: ["architectures": ["GPT2Model"]], source: "x") == .gpt2)
        // model_type wins over a contradicting architectures list.
        #expect(try ModelArchitecture.detect(configuration: ["model_type": "gpt2", "architectures": ["LlamaForCausalLM"]], source: "x") == .gpt2)
        let names = ModelArchitecture.all.map(\.name)
        #expect(Set(names).count == names.count)
        let types = ModelArchitecture.all.flatMap(\.modelTypes)
        #expect(Set(types).count == types.count)
        // Every decoder can be loaded; no other role pretends to.
        #expect(ModelArchitecture.all.allSatisfy { ($0.role == .decoder) == ($0.loadDecoder != nil) })
        #expect(ModelArchitecture.decoders.map(\.name) == ["llama", "qwen2", "gpt2"])
    }

    @Test("an unknown model_type is an error naming it and every known architecture")
    func unknownModelTypeNamesTheKnownOnes() throws {
        let error = try #require(throws: ModelError.self) {
            try ModelArchitecture.detect(configuration: ["model_type": "mamba", "architectures": ["MambaForCausalLM"]], source: "m/config.json")
        }
        #expect(error.code == .unsupported)
        #expect(error.message.contains("m/config.json names model_type 'mamba'"), "\(error.message)")
        for architecture in ModelArchitecture.all {
            #expect(error.message.contains(architecture.modelTypes[0]), "\(error.message)")
        }
        let none = try #require(throws: ModelError.self) { try ModelArchitecture.detect(configuration: [:], source: "c") }
        #expect(none.message.contains("no model_type"), "\(none.message)")
    }
}
