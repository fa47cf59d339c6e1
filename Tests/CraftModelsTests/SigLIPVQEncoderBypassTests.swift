import CraftCore
import Foundation
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

@Suite("SiglipVQEncoder with the quantizer bypassed (continuous baseline)")
struct SigLIPVQEncoderBypassTests {
    func encoder(bypassing: Bool) throws -> SiglipVQEncoder {
        let tower = try SiglipVisionModel(directory: ModelFixtures.directory("siglip_head_prefixed"))
        var generator = TensorCore.SplitMix64(seed: 11)
        let codebook = try Codebook(values: Tensor(randomNormal: [24, 32], generator: &generator).scalars, entries: 24, dimension: 32, metric: .l2)
        return try SiglipVQEncoder(tower: tower, codebook: codebook, quantizeAfterLayer: 1, bypassesQuantizer: bypassing)
    }

    @Test("tokens keep the codes and residual norms but carry z_e, the layer output, as features")
    func bypassedTokensCarryTheContinuousFeatures() throws {
        let bypassed = try encoder(bypassing: true)
        let quantized = try encoder(bypassing: false)
        #expect(bypassed.bypassesQuantizer && !quantized.bypassesQuantizer)
        let reference = try ModelFixtures.reference("siglip_head_prefixed")
        let pixels = try reference.tensor("pixel_values")
        let layerOutput = try reference.tensor("hidden_state_after_layer_1")
        let continuous = try bypassed.encode(pixels)
        let discrete = try quantized.encode(pixels)
        #expect(continuous.map { $0.codes.scalars } == discrete.map { $0.codes.scalars })
        #expect(continuous.map(\.residualNorms) == discrete.map(\.residualNorms))
        for image in 0..<2 {
            let features = try #require(continuous[image].features)
            expectClose(features, layerOutput.sliced(along: 0, image..<(image + 1)).squeezed(0), relative: 1e-4, absolute: 1e-5, "z_e of image \(image)")
            let codeVectors = try #require(discrete[image].features)
            #expect(!approximatelyEqual(features.scalars, codeVectors.scalars, relative: 1e-3, absolute: 1e-3).ok)
        }
        // The differentiable path gives the same features.
        let encoding = try bypassed.encodeDifferentiably(pixels, parameters: bypassed.parameters)
        expectClose(try #require(encoding.tokens[1].features), try #require(continuous[1].features), relative: 1e-6, absolute: 1e-6, "differentiable z_e")
    }

    @Test("the flag can be switched on an existing encoder")
    func flagIsMutable() throws {
        var encoder = try encoder(bypassing: false)
        encoder.bypassesQuantizer = true
        let reference = try ModelFixtures.reference("siglip_head_prefixed")
        let features = try #require(try encoder.encode(reference.tensor("pixel_values"))[0].features)
        expectClose(features, try reference.tensor("hidden_state_after_layer_1").sliced(along: 0, 0..<1).squeezed(0), relative: 1e-4, absolute: 1e-5, "z_e")
    }
}
