// How far an encoder's tokens sit from the codebook and how many codes moved: the two numbers that
// say whether L_commit binds (docs/experiment.md, "Results").
import CraftBundles
import CraftCore
import CraftModels
import CraftRuntimes
import CraftTraining
import Foundation
import TensorCore

/// An encoder's quantization error and code changes against the base encoder on one split.
public struct CodeDrift: Sendable, Codable, Equatable {
    /// `Σ‖z_e − z_q‖² / Σ‖z_e‖²` over every token of the split: the share of the features' energy the
    /// quantizer throws away.
    public var relativeQuantizationError: Double
    /// The share of tokens whose code differs from the base encoder's code for the same patch.
    public var codeChangeRate: Double

    /// Loads the SigLIP-VQ encoder of a bundle directory.
    static func encoder(_ directory: URL) throws -> SiglipVQEncoder {
        let bundle = try step("opening \(directory.lastPathComponent)") { try BundleArchive.open(directory: directory) }
        guard let encoder = try RuntimeRegistry.craftDefault.loadEncoder(bundle) as? SiglipVQEncoder else {
            throw ExperimentError("\(bundle.manifest.reference) did not load as a SigLIP-VQ encoder")
        }
        return encoder
    }

    /// The codes `encoder` gives every token of `dataset`'s images, in image order (every level's
    /// when the codebook is deep).
    static func codes(_ encoder: SiglipVQEncoder, on dataset: TrainingDataset, pixels: PixelCache) throws -> [Int32] {
        var codes: [Int32] = []
        try forEachBatch(encoder, on: dataset, pixels: pixels) { _, batchCodes, _ in codes += batchCodes }
        return codes
    }

    /// Measures `encoder` on every image of `dataset` against the base encoder's codes for the same
    /// images (``codes(_:on:pixels:)``, computed once per split by the caller).
    static func measure(_ encoder: SiglipVQEncoder, baseCodes: [Int32], on dataset: TrainingDataset, pixels: PixelCache) throws -> CodeDrift {
        var error = 0.0, energy = 0.0, changed = 0, tokens = 0
        try forEachBatch(encoder, on: dataset, pixels: pixels) { values, codes, vectors in
            for index in values.indices {
                let difference = Double(values[index]) - Double(vectors[index])
                error += difference * difference
                energy += Double(values[index]) * Double(values[index])
            }
            changed += zip(codes, baseCodes[tokens...]).filter { $0 != $1 }.count
            tokens += codes.count
        }
        return CodeDrift(relativeQuantizationError: energy > 0 ? error / energy : 0,
                         codeChangeRate: tokens > 0 ? Double(changed) / Double(tokens) : 0)
    }

    /// Runs `encoder` over `dataset` in batches of 64 images: each batch's continuous tokens `z_e`
    /// (flat), their codes (`[tokens][depth]`, flat), and the code vectors `z_q` (flat).
    private static func forEachBatch(
        _ encoder: SiglipVQEncoder, on dataset: TrainingDataset, pixels: PixelCache,
        _ body: (_ features: [Float], _ codes: [Int32], _ vectors: [Float]) throws -> Void
    ) throws {
        let images = dataset.imagesInOrder
        let codebook = encoder.frozenCodebook
        try withoutGradients {
            for start in stride(from: 0, to: images.count, by: 64) {
                let group = Array(images[start..<min(start + 64, images.count)])
                let batch = Tensor.concatenated(try group.map { try pixels.pixels(for: $0.examples[0]).unsqueezed(0) }, along: 0)
                let features = try encoder.features(batch, tower: encoder.tower)
                let flat = features.reshaped([-1, features.shape[2]]).detached()
                let quantization = try codebook.quantize(flat.scalars, count: flat.shape[0])
                try body(flat.scalars, quantization.codes, quantization.quantized)
            }
        }
    }
}
