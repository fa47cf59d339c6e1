// Adapting the base encoder to a shifted domain (docs/experiment.md, "Adaptation"): CRAFT with
// backend A as the frozen surrogate (CraftTraining's Trainer: L_SAL + λ_commit·L_commit +
// λ_con·L_con, straight-through estimator, codebook/projector/surrogate frozen), its ablations, and
// the two baselines (continuous fine-tuning; projector fine-tuning of one backend).
import CraftBundles
import CraftCore
import CraftModels
import CraftRuntimes
import CraftTraining
import Foundation
import TensorCore

/// One adaptation run of the table.
public struct AdaptationVariant: Sendable, Codable, Equatable, Hashable {
    /// How the encoder (or projector) is trained.
    public enum Method: String, Sendable, Codable { case craft, continuous, projector }

    /// A short id, also the bundle directory's name.
    public var id: String
    /// The method.
    public var method: Method
    /// The shifted domain trained on.
    public var domain: Domain
    /// The seed.
    public var seed: UInt64
    /// Whether `L_commit`, `L_SAL` and `L_con` are on.
    public var commitment = true, alignment = true, contrastive = true
    /// Whether general-domain training examples are replayed with the shifted ones.
    public var replay = false

    /// Creates a variant.
    public init(id: String, method: Method = .craft, domain: Domain = .strong, seed: UInt64 = 0,
                commitment: Bool = true, alignment: Bool = true, contrastive: Bool = true, replay: Bool = false) {
        self.id = id
        self.method = method
        self.domain = domain
        self.seed = seed
        self.commitment = commitment
        self.alignment = alignment
        self.contrastive = contrastive
        self.replay = replay
    }

    /// The command that reproduces this run alone.
    public var command: String { "craft-experiment adapt --variant \(id)" }
}

/// Runs adaptation variants and writes their bundles.
public enum Adaptation {
    /// The directory of a variant's encoder bundle (or, for `projector`, its backend bundle).
    public static func directory(_ variant: AdaptationVariant, _ context: ExperimentContext) -> URL {
        context.bundleDirectory("variant-" + variant.id)
    }

    /// The base bundle directories written by stage `base`.
    static func baseDirectory(_ name: String, _ context: ExperimentContext) throws -> URL {
        let directory = context.bundleDirectory(name + "-base")
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("craft.json").path) else {
            throw ExperimentError("\(directory.path) holds no base bundle; run `craft-experiment base` first")
        }
        return directory
    }

    /// Trains one variant and writes its bundle; returns the bundle directory and a summary.
    @discardableResult
    public static func run(_ variant: AdaptationVariant, _ context: ExperimentContext) throws -> (directory: URL, packed: PackedBundle, summary: [String: Any]) {
        let settings = context.settings
        let data = try ExperimentData(directory: context.dataDirectory, settings: settings)
        let vocabulary = try BaseModels.Vocabulary(data.tokenizerURL)
        let training = try data.dataset(variant.domain, "train")
        // Replay: general-domain training examples mixed into each micro-batch (the Trainer's
        // replayPerBatch and replayWeight).
        let replay = variant.replay ? try data.dataset(.general, "train") : nil
        let pixels = try PixelCache(datasets: [training] + (replay.map { [$0] } ?? []), preprocessing: data.preprocessing)
        let encoderDirectory = try baseDirectory(MiniatureBundles.encoder, context)
        let llamaDirectory = try baseDirectory(MiniatureBundles.llama, context)
        let encoderBundle = try BundleArchive.open(directory: encoderDirectory)
        let base = try step("loading \(encoderDirectory.path)") { try SiglipVQRuntime.load(encoderBundle) }
        let surrogateBundle = try BundleArchive.open(directory: llamaDirectory)
        let surrogate = try step("loading \(llamaDirectory.path)") { try DecoderRuntime.load(surrogateBundle, architecture: .llama) }
        let output = directory(variant, context)
        let began = Date()

        if variant.method == .projector {
            // The coupled baseline: tune backend A's projector on the shifted domain with the base
            // encoder; backend B cannot use it.
            let examples = try BaseModels.backendExamples(encoder: base, dataset: training, pixels: pixels, vocabulary: vocabulary)
            guard let llama = surrogate.model as? LlamaModel else { throw ExperimentError("backend A is not a Llama model") }
            let tuned = try BackendFit.train(
                build: { try LlamaModel(configuration: llama.configuration, weights: $0) }, weights: llama.parameters,
                projectorWeight: surrogate.projectorWeight, projectorBias: surrogate.projectorBias ?? Tensor.zeros([llama.configuration.hiddenSize]),
                prefix: surrogate.prefixTokens, examples: examples, parts: .projector, epochs: settings.adaptationEpochs,
                batchSize: settings.adaptationBatch, learningRate: settings.adaptationLearningRate, seed: variant.seed, log: context.log)
            let packed = try BundleWriting.writeBackend(
                BackendArtifacts(model: llama, projectorWeight: tuned.projectorWeight, projectorBias: tuned.projectorBias),
                to: output, name: MiniatureBundles.llama, version: "1.0.1-projector.\(variant.domain.rawValue)",
                summary: "backend A with its projector fine-tuned on the \(variant.domain.rawValue) shift (projector baseline)",
                domains: ["digits", variant.domain.rawValue], codebook: base.frozenCodebook, tokenizer: data.tokenizerURL,
                contextLength: settings.contextLength, packedInto: context.packedDirectory,
                provenance: ["method": "projector", "seed": variant.seed, "created_by": "craft-experiment adapt --variant \(variant.id)"])
            return (output, packed, ["seconds": Date().timeIntervalSince(began)])
        }

        var configuration = TrainerConfiguration()
        configuration.objective = .visualQuestionAnswering
        configuration.objective.usesCommitment = variant.commitment && variant.method == .craft
        configuration.objective.usesAlignment = variant.alignment
        configuration.objective.usesContrastive = variant.contrastive
        configuration.learningRate = settings.adaptationLearningRate
        configuration.epochs = settings.adaptationEpochs
        configuration.batchSize = settings.adaptationBatch
        configuration.seed = variant.seed
        configuration.warmupSteps = 5
        configuration.tracksCodeDrift = false
        if variant.method == .continuous { configuration.mode = .continuous }
        configuration.replayPerBatch = settings.replayPerBatch
        configuration.replayWeight = 1

        let textDirectory = encoderDirectory.appendingPathComponent("text")
        let textTower = try step("loading the text tower \(textDirectory.path)") { try SiglipTextModel(directory: textDirectory) }
        let tokenizer = vocabulary.tokenizer
        let embedder = SiglipTextEmbedder(tower: textTower, padToken: vocabulary.pad) { try tokenizer.encode($0, addSpecialTokens: false) }
        let encoder = try SiglipTrainableEncoder(tower: base.tower, codebook: base.frozenCodebook)
        var trainer = try Trainer(
            encoder: encoder, surrogate: LanguageBackendSurrogate(backend: surrogate, maximumAnswerTokens: 3),
            textEmbedder: variant.contrastive ? embedder : nil, inputs: pixels.inputs, configuration: configuration)
        let runDirectory = context.workDirectory.appendingPathComponent("runs/\(variant.id)")
        try? FileManager.default.removeItem(at: runDirectory)
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        context.log("adapt \(variant.id): \(variant.method.rawValue) on \(training.count) \(variant.domain.rawValue) examples, seed \(variant.seed)")
        let summary = try trainer.train(training: training, validation: nil, replay: replay, logURL: runDirectory.appendingPathComponent("log.jsonl")) { progress in
            if progress.record.step % 50 == 0, progress.record.event == "step" {
                context.log("  step \(progress.record.step)/\(progress.totalSteps) loss \(progress.record.loss.map { String(format: "%.4f", $0) } ?? "-")")
            }
        }
        let tower = try SiglipVisionModel(configuration: base.tower.configuration, weights: summary.parameters.tensors.mapValues { $0.detached() })
        // Code frequencies of the adapted encoder over its domain's training images, for pruning.
        let adapted = try SiglipVQEncoder(tower: tower, codebook: base.frozenCodebook, preprocessing: base.preprocessing)
        var frequencies = CodeFrequencies(entries: base.frozenCodebook.entries)
        let images = training.imagesInOrder
        for start in stride(from: 0, to: images.count, by: 64) {
            let group = images[start..<min(start + 64, images.count)]
            let batch = Tensor.concatenated(try group.map { try pixels.pixels(for: $0.examples[0]).unsqueezed(0) }, along: 0)
            for tokens in try adapted.encode(batch) { try frequencies.add(codes: tokens.codes.scalars.map { Int($0) }) }
        }
        let textModel = try SiglipTextModel(directory: textDirectory)
        let version = variant.id == "craft-strong-s0" ? MiniatureBundles.adaptedVersion : "1.1.0-\(variant.id)"
        let seconds = Date().timeIntervalSince(began)
        let packed = try BundleWriting.writeEncoder(
            EncoderArtifacts(tower: tower, codebook: base.frozenCodebook, textTower: textModel, frequencies: frequencies),
            to: output, name: MiniatureBundles.encoder, version: version,
            summary: variant.method == .continuous
                ? "digits encoder fine-tuned continuously (quantizer bypassed) on the \(variant.domain.rawValue) shift: the baseline that breaks the backends"
                : "digits SigLIP-VQ encoder adapted with CRAFT to the \(variant.domain.rawValue) shift (inverted, blurred, noisy scans); same codebook",
            domains: ["digits", variant.domain.rawValue], tokenizer: data.tokenizerURL, packedInto: context.packedDirectory,
            config: variant.method == .continuous ? ["bypass_quantizer": true] : [:],
            provenance: [
                "method": variant.method.rawValue, "base": "\(MiniatureBundles.encoder)@\(MiniatureBundles.baseVersion)",
                "surrogate": "\(MiniatureBundles.llama)@\(MiniatureBundles.baseVersion)",
                "dataset_digest": try training.digest(), "steps": summary.steps, "seed": variant.seed,
                "hyperparameters": [
                    "learning_rate": Double(configuration.learningRate), "epochs": configuration.epochs, "batch_size": configuration.batchSize,
                    "lambda_commit": configuration.objective.usesCommitment ? Double(configuration.objective.commitmentWeight) : 0,
                    "lambda_con": configuration.objective.usesContrastive ? Double(configuration.objective.contrastiveWeight) : 0,
                    "l_sal": configuration.objective.usesAlignment,
                    "replay": variant.replay ? ["per_batch": configuration.replayPerBatch, "weight": Double(configuration.replayWeight)] as [String: Any] : false,
                ],
                "created_by": "craft-experiment adapt --variant \(variant.id)",
            ])
        context.log("adapt \(variant.id): \(summary.steps) steps in \(Int(seconds)) s")
        return (output, packed, ["seconds": seconds, "steps": summary.steps])
    }
}
