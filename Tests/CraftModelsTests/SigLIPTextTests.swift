import Foundation
import SafeTensors
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

@Suite struct SigLIPTextTests {
    @Test func outputsMatchTransformers() throws {
        let model = try SiglipTextModel(directory: ModelFixtures.directory("siglip_text"))
        #expect(model.configuration.projectionSize == 24 && model.configuration.maxPositionEmbeddings == 12)
        #expect(model.parameters.keys.allSatisfy { !$0.hasPrefix("text_model.") })
        let reference = try ModelFixtures.reference("siglip_text")
        let ids = try reference.ints("input_ids")
        let output = try model(tokens: [Array(ids[0..<12]), Array(ids[12..<24])])
        expectClose(output.lastHiddenState, try reference.tensor("last_hidden_state"), "text last_hidden_state")
        expectClose(output.poolerOutput, try reference.tensor("pooler_output"), "text pooler_output")
    }

    @Test func rejectsBadBatches() throws {
        let model = try SiglipTextModel(directory: ModelFixtures.directory("siglip_text"))
        #expect(throws: ModelError.self) { _ = try model(tokens: []) }
        #expect(throws: ModelError.self) { _ = try model(tokens: [[1, 2], [1]]) }
        #expect(throws: ModelError.self) { _ = try model(tokens: [Array(repeating: 1, count: 13)]) }
        #expect(throws: ModelError.self) { _ = try model(tokens: [[1, 100]]) }
    }
}
