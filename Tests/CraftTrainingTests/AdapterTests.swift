import CraftCore
import Foundation
import TensorCore
import Testing
@testable import CraftTraining

/// A minimal CraftCore trainable encoder: a linear map of `[tokens, inputDimension]` "pixels".
struct LinearVisionEncoder: TrainableVisionEncoder {
    let table: Codebook
    var weight: Tensor
    var codebook: any CodebookSpace { table }
    var imageSize: (height: Int, width: Int) { (1, 2) }
    var grid: (rows: Int, columns: Int) { (1, 2) }
    var parameters: [String: Tensor] { ["weight": weight] }

    func preprocess(_ image: RGBImage) throws -> Tensor {
        Tensor(image.pixels.prefix(6).map { Float($0) / 255 }, shape: [2, 3])
    }

    func encode(_ pixels: Tensor) throws -> [VisualTokens] {
        try encodeDifferentiably(pixels, parameters: parameters).tokens
    }

    mutating func setParameters(_ updates: [String: Tensor]) throws {
        guard let new = updates["weight"], new.shape == weight.shape, updates.count == 1 else {
            throw TrainingError(.parameterMismatch, "LinearVisionEncoder takes one [D, 3] weight")
        }
        weight = new
    }

    func encodeDifferentiably(_ pixels: Tensor, parameters: [String: Tensor]) throws -> DifferentiableEncoding {
        let features = pixels.linear(weight: parameters["weight"] ?? weight)
        let quantization = try table.straightThrough(features)
        let batch = pixels.shape[0]
        let tokens = try (0..<batch).map { index in
            try VisualTokens(
                codebookHash: table.hash, grid: grid,
                codes: IndexTensor(Array(quantization.codes.scalars[(index * 2)..<((index + 1) * 2)]), shape: [2, 1]),
                positions: [GridPosition(row: 0, column: 0), GridPosition(row: 0, column: 1)],
                residualNorms: [0, 0], features: quantization.quantized.sliced(along: 0, index..<(index + 1)).squeezed(0))
        }
        return DifferentiableEncoding(tokens: tokens, quantization: quantization)
    }
}

@Suite("CraftCore TrainableVisionEncoder through the training adapter")
struct AdapterTests {
    @Test("the adapter trains a CraftCore encoder and pools z_e for the contrastive term")
    func adapterTrainsCoreEncoder() throws {
        var generator = SplitMix64(seed: 4)
        let codebook = try Codebook(values: Tensor(randomNormal: [8, 4], generator: &generator).scalars, entries: 8, dimension: 4, metric: .l2)
        let core = LinearVisionEncoder(table: codebook, weight: Tensor(randomNormal: [4, 3], generator: &generator))
        let adapter = VisionEncoderTrainingAdapter(core, poolsEncoderOutput: true)
        #expect(adapter.codebookEntries == 8 && adapter.parameters.names == ["weight"])
        let pixels = Tensor(randomNormal: [2, 2, 3], generator: &generator)
        let forward = try adapter.forward(pixels, parameters: adapter.parameters)
        #expect(forward.pooledFeatures?.shape == [2, 4])

        var configuration = TrainerConfiguration()
        configuration.learningRate = 0.05
        configuration.batchSize = 2
        let surrogate = TinySurrogate(vocabulary: ["red", "green", "blue"], codebookDimension: 4, hidden: 8, seed: 9)
        let embedder = TinyTextEmbedder(table: ["a photo of a red": [1, 0, 0, 0], "a photo of a green": [0, 1, 0, 0], "a photo of a blue": [0, 0, 1, 0]])
        let inputs: @Sendable (TrainingExample) throws -> Tensor = { example in
            var generator = SplitMix64(seed: UInt64(example.line))
            return Tensor(randomNormal: [2, 3], generator: &generator)
        }
        let examples = try TinyTask().examples(0..<4)
        var trainer = try Trainer(encoder: adapter, surrogate: surrogate, textEmbedder: embedder, inputs: inputs, configuration: configuration)
        var records: [TrainingLogRecord] = []
        let summary = try trainer.train(training: TrainingDataset(examples: examples), validation: nil) { records.append($0.record) }
        #expect(summary.steps == 2)
        #expect(records.allSatisfy { $0.contrastive != nil && $0.alignment != nil && $0.commitment != nil })
        #expect(trainer.encoder.encoder.weight.scalars == summary.parameters["weight"]!.scalars)
        #expect(trainer.encoder.encoder.weight.scalars != core.weight.scalars)
    }
}
