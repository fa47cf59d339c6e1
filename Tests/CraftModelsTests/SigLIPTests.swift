import Foundation
import SafeTensors
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

@Suite struct SigLIPTests {
    static let fixtures = ["siglip_head_prefixed", "siglip_no_head"]

    @Test(arguments: fixtures) func outputsMatchTransformers(name: String) throws {
        let model = try SiglipVisionModel(directory: ModelFixtures.directory(name))
        let reference = try ModelFixtures.reference(name)
        let output = try model(pixelValues: reference.tensor("pixel_values"), hiddenStatesAfter: [1])
        expectClose(output.lastHiddenState, try reference.tensor("last_hidden_state"), "\(name) last_hidden_state")
        expectClose(try #require(output.hiddenStates[1]), try reference.tensor("hidden_state_after_layer_1"), "\(name) layer 1")
        if reference.contains("pooler_output") {
            #expect(model.hasHead)
            expectClose(try #require(output.poolerOutput), try reference.tensor("pooler_output"), "\(name) pooler_output")
        } else {
            #expect(!model.hasHead && output.poolerOutput == nil)
        }
    }

    @Test func stoppingAfterALayerGivesThatLayersHiddenState() throws {
        let name = "siglip_no_head"
        let model = try SiglipVisionModel(directory: ModelFixtures.directory(name))
        let reference = try ModelFixtures.reference(name)
        let output = try model(pixelValues: reference.tensor("pixel_values"), stopAfterLayer: 1)
        expectClose(output.lastHiddenState, try reference.tensor("hidden_state_after_layer_1"), "stop after layer 1")
    }

    @Test(arguments: fixtures) func pixelAndWeightGradientsMatchAutograd(name: String) throws {
        let loaded = try SiglipVisionModel(directory: ModelFixtures.directory(name))
        // Training rebuilds the model from parameters marked for differentiation.
        let trainable = loaded.parameters.mapValues { $0.requiringGradient() }
        let model = try SiglipVisionModel(configuration: loaded.configuration, weights: trainable)
        let reference = try ModelFixtures.reference(name)
        let pixels = try reference.tensor("pixel_values").requiringGradient()
        let output = try model(pixelValues: pixels)
        var loss = (output.lastHiddenState * (try reference.tensor("hidden_loss_weight"))).sum()
        if let pooled = output.poolerOutput {
            loss = loss + (pooled * (try reference.tensor("pooler_loss_weight"))).sum()
        }
        let weightNames = reference.names.filter { $0.hasPrefix("weight_gradient.") }
        #expect(weightNames.count >= 4)
        let targets = try [pixels] + weightNames.map { name throws in
            try #require(trainable[String(name.dropFirst("weight_gradient.".count))], "no parameter for \(name)")
        }
        let gradients = loss.gradients(withRespectTo: targets)
        expectClose(gradients[0], try reference.tensor("pixel_gradient"), relative: 1e-3, absolute: 1e-5, "\(name) pixel gradient")
        for (index, weightName) in weightNames.enumerated() {
            expectClose(gradients[index + 1], try reference.tensor(weightName), relative: 1e-3, absolute: 1e-4, "\(name) \(weightName)")
        }
    }

    @Test func rejectsPixelsOfTheWrongSize() throws {
        let model = try SiglipVisionModel(directory: ModelFixtures.directory("siglip_no_head"))
        #expect(throws: ModelError.self) { _ = try model(pixelValues: Tensor.zeros([1, 3, 16, 16])) }
        #expect(throws: ModelError.self) { _ = try model(pixelValues: Tensor.zeros([3, 32, 32])) }
    }

    @Test func parametersRebuildTheSameModel() throws {
        let model = try SiglipVisionModel(directory: ModelFixtures.directory("siglip_head_prefixed"))
        #expect(model.parameters.keys.allSatisfy { !$0.hasPrefix("vision_model.") })
        let rebuilt = try SiglipVisionModel(configuration: model.configuration, weights: model.parameters)
        let pixels = Tensor.ones([1, 3, 32, 32])
        expectClose(try rebuilt(pixelValues: pixels).lastHiddenState, try model(pixelValues: pixels).lastHiddenState,
                    relative: 0, absolute: 0, "rebuilt")
    }
}
