// An encoder bundle opened for training or statistics: the siglip-vq runtime's encoder (so the
// quantization layer, codebook and preprocessing are read exactly as `craft run` reads them), its
// trainable form, the image loader, and the passes over a dataset (accuracy, code frequencies).
import CraftBundles
import CraftCore
import CraftImaging
import CraftModels
import CraftRegistry
import CraftRuntimes
import CraftTraining
import Foundation
import SafeTensors
import TensorCore

/// A `siglip-vq` encoder bundle loaded for adaptation.
struct EncoderBundleModel: Sendable {
    /// The bundle.
    let opened: OpenedBundle
    /// The live encoder as the runtime builds it (codebook verified against the declared hash).
    let runtime: SiglipVQEncoder
    /// The tower as a CRAFT-trainable encoder on the same codebook and quantization layer.
    let trainable: SiglipTrainableEncoder
    /// The prefix of the tensor names in the bundle's `model.safetensors` (`vision_model.` or empty),
    /// kept when the retrained weights are written.
    let weightPrefix: String

    /// The weights file of a siglip-vq bundle.
    static let weightsFile = "model.safetensors"

    /// Loads the bundle with the siglip-vq runtime.
    ///
    /// - Throws: ``AdaptationError`` (`unsupported`) for another runtime or a backend bundle; the
    ///   runtime's ``BundleError`` when a file is missing or the codebook does not hash as declared.
    init(_ opened: OpenedBundle) throws {
        let manifest = opened.manifest
        guard manifest.kind == .encoder else {
            throw AdaptationError(.unsupported, "\(manifest.reference) is a backend bundle; pass an encoder bundle (runtime \(ModelRuntimes.siglipVQ)) as the encoder")
        }
        guard manifest.runtime.id == ModelRuntimes.siglipVQ else {
            throw AdaptationError(.unsupported, "\(manifest.reference) uses runtime \(manifest.runtime.id); craft train and craft stats work on \(ModelRuntimes.siglipVQ) encoders")
        }
        self.opened = opened
        runtime = try SiglipVQRuntime.load(opened.bundle)
        do {
            trainable = try SiglipTrainableEncoder(tower: runtime.tower, codebook: runtime.frozenCodebook, quantizeAfterLayer: runtime.quantizeAfterLayer)
        } catch {
            throw AdaptationError(.unsupported, "\(manifest.reference) cannot be trained: \(describe(error))")
        }
        let names = (try? SafeTensorsFile(contentsOf: opened.bundle.url(for: Self.weightsFile)).names) ?? []
        weightPrefix = names.contains { $0.hasPrefix("vision_model.") } ? "vision_model." : ""
    }

    /// The encoder's input for one example: the image decoded as RGB (as Pillow's `convert("RGB")`)
    /// and preprocessed as the bundle says, exactly as ``Pipeline`` does, `[3, H, W]`.
    var inputs: @Sendable (TrainingExample) throws -> Tensor {
        let encoder = runtime
        return { example in
            do {
                return try encoder.preprocess(try ImageInput.rgbImage(contentsOf: example.imageURL))
            } catch {
                throw AdaptationError(.invalidData, "line \(example.line): cannot read the image \(example.imageURL.path) (\(describe(error))); fix or remove that line")
            }
        }
    }

    /// Runs `encoder` (no gradients) over `dataset` in batches of `batchSize`, calling `body` with
    /// each batch's examples and forward result.
    static func forEachBatch<Encoder: TrainableEncoder>(
        _ encoder: Encoder, over dataset: TrainingDataset, batchSize: Int,
        inputs: @Sendable (TrainingExample) throws -> Tensor,
        _ body: ([TrainingExample], EncoderForward) throws -> Void
    ) throws {
        try withoutGradients {
            for start in stride(from: 0, to: dataset.count, by: max(batchSize, 1)) {
                let batch = Array(dataset.examples[start..<min(start + max(batchSize, 1), dataset.count)])
                let tensors = try batch.map { try inputs($0).unsqueezed(0) }
                let pixels = tensors.count == 1 ? tensors[0] : Tensor.concatenated(tensors, along: 0)
                try body(batch, try encoder.forward(pixels, parameters: encoder.parameters))
            }
        }
    }

    /// The share of `dataset` whose surrogate answer, fed the encoder's code vectors (or its continuous
    /// output `z_e` when `continuous`, as a bundle with `config.bypass_quantizer` runs) through the
    /// backend's template, matches the expected answer as `craft eval` scores it (``AnswerScoring``).
    static func accuracy<Encoder: TrainableEncoder>(
        of encoder: Encoder, on dataset: TrainingDataset, surrogate: TemplatedSurrogate, continuous: Bool, batchSize: Int,
        inputs: @Sendable (TrainingExample) throws -> Tensor
    ) throws -> Double {
        guard dataset.count > 0 else { return 0 }
        var correct = 0
        try forEachBatch(encoder, over: dataset, batchSize: batchSize, inputs: inputs) { batch, forward in
            let vectors = continuous ? forward.quantization.encoderOutput : forward.quantization.codeVectors
            for (index, example) in batch.enumerated() {
                let visual = vectors.sliced(along: 0, index..<(index + 1)).squeezed(0)
                let answer = try surrogate.answer(visual: visual, prompt: example.prompt)
                if AnswerScoring.matches(answer, expected: example.answer) { correct += 1 }
            }
        }
        return Double(correct) / Double(dataset.count)
    }

    /// The dataset with one example per distinct image file (the first), for per-image statistics:
    /// a dataset asking several questions about an image counts the image once.
    static func distinctImages(_ dataset: TrainingDataset) -> TrainingDataset {
        var seen = Set<String>()
        let examples = dataset.examples.filter { seen.insert($0.imageURL.standardizedFileURL.path).inserted }
        return TrainingDataset(examples: examples, sourceURL: dataset.sourceURL)
    }

    /// How often each first-level code occurs when `encoder` encodes the distinct images of `dataset`.
    static func codeFrequencies<Encoder: TrainableEncoder>(
        of encoder: Encoder, depth: Int, over dataset: TrainingDataset, batchSize: Int,
        inputs: @Sendable (TrainingExample) throws -> Tensor
    ) throws -> CodeFrequencies {
        var frequencies = CodeFrequencies(entries: max(encoder.codebookEntries, 1))
        try forEachBatch(encoder, over: distinctImages(dataset), batchSize: batchSize, inputs: inputs) { _, forward in
            let codes = forward.quantization.codes.scalars
            let firstLevel = stride(from: 0, to: codes.count, by: max(depth, 1)).map { Int(codes[$0]) }
            try frequencies.add(codes: firstLevel)
        }
        return frequencies
    }

    /// Writes `parameters` as F32 safetensors under the bundle's naming (with ``weightPrefix``), names sorted.
    func writeWeights(_ parameters: ParameterSet, to url: URL) throws {
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        for name in parameters.names {
            guard let tensor = parameters[name] else { continue }
            try writer.add(weightPrefix + name, floats: tensor.scalars, shape: tensor.shape)
        }
        do {
            try writer.write(to: url)
        } catch {
            throw AdaptationError(.io, "cannot write the adapted weights to \(url.path) (\(describe(error))); check free space and permissions")
        }
    }
}

/// Usage and perplexity of a code histogram.
extension CodeFrequencies {
    /// Codes seen at least once.
    var codesUsed: Int { counts.filter { $0 > 0 }.count }

    /// `exp(entropy)` of the empirical distribution (1 when one code is all there is, K when uniform).
    var perplexity: Double {
        guard total > 0 else { return 0 }
        let entropy = counts.reduce(0.0) { sum, count in
            guard count > 0 else { return sum }
            let p = Double(count) / Double(total)
            return sum - p * Foundation.log(p)
        }
        return Foundation.exp(entropy)
    }

    /// The `count` most frequent codes with their counts (ties: lower code first).
    func top(_ count: Int) -> [(code: Int, count: Int)] {
        counts.enumerated().filter { $0.element > 0 }.sorted { $0.element != $1.element ? $0.element > $1.element : $0.offset < $1.offset }
            .prefix(count).map { (code: $0.offset, count: $0.element) }
    }
}
