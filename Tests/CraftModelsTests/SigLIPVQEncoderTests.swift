import CraftCore
import Foundation
import SafeTensors
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

@Suite struct SigLIPVQEncoderTests {
    func encoder(layer: Int? = 1) throws -> SiglipVQEncoder {
        let tower = try SiglipVisionModel(directory: ModelFixtures.directory("siglip_head_prefixed"))
        var generator = TensorCore.SplitMix64(seed: 11)
        let codebook = try Codebook(values: Tensor(randomNormal: [24, 32], generator: &generator).scalars, entries: 24, dimension: 32, metric: .l2)
        return try SiglipVQEncoder(tower: tower, codebook: codebook, quantizeAfterLayer: layer)
    }

    @Test func codesAreTheNearestEntriesOfTheReferenceLayerOutput() throws {
        let encoder = try encoder()
        let reference = try ModelFixtures.reference("siglip_head_prefixed")
        let tokens = try encoder.encode(reference.tensor("pixel_values"))
        #expect(tokens.count == 2 && tokens.allSatisfy { $0.count == 16 && $0.codebookHash == encoder.frozenCodebook.hash })
        #expect(tokens[0].positions[5] == GridPosition(row: 1, column: 1))
        let expected = try encoder.frozenCodebook.quantize(try reference.tensor("hidden_state_after_layer_1"))
        #expect(tokens.flatMap { $0.codes.scalars } == expected.codes.scalars)
        let features = try #require(tokens[1].features)
        expectClose(features, expected.quantized.sliced(along: 0, 1..<2).squeezed(0), relative: 1e-5, absolute: 1e-5, "features")
    }

    @Test func straightThroughGradientReachesTheTowerWeights() throws {
        let encoder = try encoder()
        let reference = try ModelFixtures.reference("siglip_head_prefixed")
        let pixels = try reference.tensor("pixel_values")
        let trainable = encoder.parameters.mapValues { $0.requiringGradient() }
        let encoding = try encoder.encodeDifferentiably(pixels, parameters: trainable)
        var generator = TensorCore.SplitMix64(seed: 5)
        let weight = Tensor(randomNormal: encoding.quantization.quantized.shape, generator: &generator)
        let name = "encoder.layers.0.mlp.fc1.weight"
        let target = try #require(trainable[name])
        let viaQuantized = (encoding.quantization.quantized * weight).sum().gradients(withRespectTo: [target])[0]
        // The straight-through estimator passes the gradient to the features unchanged.
        let tower = try SiglipVisionModel(configuration: encoder.tower.configuration, weights: trainable)
        let direct = (try encoder.features(pixels, tower: tower) * weight).sum().gradients(withRespectTo: [target])[0]
        expectClose(viaQuantized, direct, relative: 1e-5, absolute: 1e-6, "straight-through gradient")
        #expect(viaQuantized.scalars.contains { $0 != 0 })
        // Layers after the quantization point get nothing.
        let unused = try #require(trainable["encoder.layers.1.mlp.fc1.weight"])
        #expect((encoding.quantization.quantized * weight).sum().gradients(withRespectTo: [unused])[0].scalars.allSatisfy { $0 == 0 })
    }

    @Test func preprocessResizesToTheTowerSize() throws {
        let encoder = try encoder()
        let image = try RGBImage(width: 40, height: 30, pixels: (0..<(40 * 30 * 3)).map { UInt8($0 % 256) })
        let pixels = try encoder.preprocess(image)
        #expect(pixels.shape == [3, 32, 32])
        #expect(pixels.scalars.allSatisfy { $0 >= -1.0001 && $0 <= 1.0001 })
        #expect(try encoder.encode(pixels.unsqueezed(0)).count == 1)
    }

    @Test func setParametersChecksNamesAndApplies() throws {
        var encoder = try encoder(layer: nil)
        #expect(throws: ModelError.self) { try encoder.setParameters(["no.such.weight": Tensor.zeros([1])]) }
        #expect(throws: ModelError.self) { try encoder.setParameters(["post_layernorm.weight": Tensor.zeros([3])]) }
        let pixels = Tensor.ones([1, 3, 32, 32])
        try encoder.setParameters(["post_layernorm.weight": Tensor.zeros([32]), "post_layernorm.bias": Tensor.zeros([32])])
        let features = try #require(try encoder.encode(pixels)[0].features)
        // Every token is now the zero vector's nearest entry.
        let zeroCode = try encoder.frozenCodebook.quantize(Tensor.zeros([1, 32])).codes.scalars[0]
        #expect(try encoder.encode(pixels)[0].codes.scalars.allSatisfy { $0 == zeroCode })
        #expect(features.shape == [16, 32])
    }

    @Test func refusesAMismatchedCodebookOrLayer() throws {
        let tower = try SiglipVisionModel(directory: ModelFixtures.directory("siglip_no_head"))
        let narrow = try Codebook(values: [Float](repeating: 0.5, count: 8), entries: 2, dimension: 4, metric: .l2)
        #expect(throws: ModelError.self) { _ = try SiglipVQEncoder(tower: tower, codebook: narrow) }
        let wide = try Codebook(values: [Float](repeating: 0.5, count: 64), entries: 2, dimension: 32, metric: .l2)
        #expect(throws: ModelError.self) { _ = try SiglipVQEncoder(tower: tower, codebook: wide, quantizeAfterLayer: 3) }
    }
}
