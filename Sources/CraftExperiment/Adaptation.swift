// Adapting the base encoder to a shifted domain (docs/experiment.md, "Adaptation"): every variant
// runs through CraftAdaptation's EncoderAdaptation — the code behind `craft train` — with backend A
// as the frozen surrogate: CRAFT (L_SAL + λ_commit·L_commit + λ_con·L_con, straight-through
// estimator, codebook/projector/surrogate frozen), its ablations, and the two baselines (continuous
// fine-tuning; projector fine-tuning of one backend).
import CraftAdaptation
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
    /// Which backend is the frozen surrogate (the other one never sees the adapted encoder).
    public enum Surrogate: String, Sendable, Codable { case a = "A", b = "B" }

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
    /// `λ_commit`, the learning rate and the epochs when they differ from the settings' defaults.
    public var commitmentWeight: Float?, learningRate: Float?, epochs: Int?
    /// The surrogate backend (A by default; B for reverse transfer).
    public var surrogate = Surrogate.a
    /// Whether the continuous baseline penalises the features' drift from the base (LDIFS-style).
    public var drift = false
    /// The codebook set (``ExperimentSettings/CodebookSet``) whose encoder and backends the run uses;
    /// `nil` for the main codebook.
    public var codebookSet: String?

    /// Creates a variant.
    public init(id: String, method: Method = .craft, domain: Domain = .strong, seed: UInt64 = 0,
                commitment: Bool = true, alignment: Bool = true, contrastive: Bool = true, replay: Bool = false,
                commitmentWeight: Float? = nil, learningRate: Float? = nil, epochs: Int? = nil, surrogate: Surrogate = .a,
                drift: Bool = false, codebookSet: String? = nil) {
        self.id = id
        self.method = method
        self.domain = domain
        self.seed = seed
        self.commitment = commitment
        self.alignment = alignment
        self.contrastive = contrastive
        self.replay = replay
        self.commitmentWeight = commitmentWeight
        self.learningRate = learningRate
        self.epochs = epochs
        self.surrogate = surrogate
        self.drift = drift
        self.codebookSet = codebookSet
    }

    /// The command that reproduces this run alone.
    public var command: String { "craft-experiment adapt --variant \(id)" }

    /// Whether the variant reads continuous features (its backends are the continuous control's).
    public var isContinuous: Bool { method == .continuous }
}

/// Runs adaptation variants and writes their bundles.
public enum Adaptation {
    /// The directory of a variant's encoder bundle (or, for `projector`, its backend bundle).
    public static func directory(_ variant: AdaptationVariant, _ context: ExperimentContext) -> URL {
        context.bundleDirectory("variant-" + variant.id)
    }

    /// Test images per domain scored before and after each run (the provenance's validation accuracy).
    static let validationImages = 32

    /// The base bundle directories written by stage `base`.
    static func baseDirectory(_ name: String, _ context: ExperimentContext) throws -> URL {
        let directory = context.bundleDirectory(name + "-base")
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("craft.json").path) else {
            throw ExperimentError("\(directory.path) holds no base bundle; run `craft-experiment base` first")
        }
        return directory
    }

    /// Writes the lines of a domain's split about its first `limit` images (all of them when `nil`)
    /// into `<work>/data/<file>`, with copies of those images under `<work>/data/images/`, so the
    /// JSONL's relative image paths resolve inside the dataset's directory (datasets refuse images
    /// that a link or `..` leads outside it); returns the file.
    static func dataFile(_ domain: Domain, _ split: String, limit: Int?, file: String, _ context: ExperimentContext) throws -> URL {
        let data = try ExperimentData(directory: context.dataDirectory, settings: context.settings)
        let directory = context.workDirectory.appendingPathComponent("data")
        let output = directory.appendingPathComponent(file)
        try step("writing \(output.path)") {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let images = directory.appendingPathComponent("images")
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: images.path)) != nil {
                try FileManager.default.removeItem(at: images)  // a link left by an earlier version
            }
            let text = try String(contentsOf: data.url(domain, split), encoding: .utf8)
            var seen: [String] = []
            var kept: [Substring] = []
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let image = object["image"] as? String else {
                    throw ExperimentError("\(data.url(domain, split).path) has a line without an \"image\"; re-export the data with scripts/export_digits.py")
                }
                if !seen.contains(image) { seen.append(image) }
                if let limit, let index = seen.firstIndex(of: image), index >= limit { continue }
                kept.append(line)
                let copy = directory.appendingPathComponent(image)
                if !FileManager.default.fileExists(atPath: copy.path) {
                    try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try FileManager.default.copyItem(at: context.dataDirectory.appendingPathComponent(image), to: copy)
                }
            }
            try Data((kept.joined(separator: "\n") + "\n").utf8).write(to: output)
        }
        return output
    }

    /// Trains one variant with `EncoderAdaptation` and writes its bundle; returns the bundle directory,
    /// the packed bundle and a summary.
    @discardableResult
    public static func run(_ variant: AdaptationVariant, _ context: ExperimentContext) throws -> (directory: URL, packed: PackedBundle, summary: [String: Any]) {
        let settings = context.settings
        let encoderDirectory = try baseDirectory(MiniatureBundles.inSet(MiniatureBundles.encoder, variant.codebookSet), context)
        let surrogateName = MiniatureBundles.inSet(variant.surrogate == .a ? MiniatureBundles.llama : MiniatureBundles.gpt2, variant.codebookSet)
        let surrogateDirectory = try baseDirectory(
            variant.isContinuous && settings.continuousControl ? MiniatureBundles.continuous(surrogateName) : surrogateName, context)
        let domain = variant.domain.rawValue
        let training = try dataFile(variant.domain, "train", limit: settings.trainImages, file: "\(domain)-train.jsonl", context)
        let validation = try dataFile(variant.domain, "test", limit: min(settings.testImages ?? validationImages, validationImages),
                                      file: "\(domain)-validation.jsonl", context)

        var configuration = TrainerConfiguration()
        // Both questions name a class (the digit, its parity): the paper's classification weights.
        configuration.objective = TrainingTask.classification.objective
        configuration.objective.commitmentWeight = variant.commitmentWeight ?? configuration.objective.commitmentWeight
        configuration.objective.usesCommitment = variant.commitment && variant.method == .craft && configuration.objective.commitmentWeight > 0
        configuration.objective.usesAlignment = variant.alignment
        configuration.objective.usesContrastive = variant.contrastive
        if variant.drift { configuration.objective.driftWeight = settings.driftWeight }
        configuration.learningRate = variant.learningRate ?? settings.adaptationLearningRate
        configuration.epochs = variant.epochs ?? settings.adaptationEpochs
        configuration.batchSize = settings.adaptationBatch
        configuration.seed = variant.seed
        configuration.warmupSteps = 5
        configuration.tracksCodeDrift = false

        let runDirectory = context.workDirectory.appendingPathComponent("runs/\(variant.id)")
        try? FileManager.default.removeItem(at: runDirectory)
        var request = AdaptationRequest(encoder: .directory(encoderDirectory), surrogate: .directory(surrogateDirectory), training: training,
                                        outputDirectory: runDirectory, configuration: configuration)
        request.task = .classification
        request.validation = validation
        request.maximumAnswerTokens = 3
        // The committed bundles were made scoring every row of the prompt; doing the same keeps
        // `make reproduce` byte for byte (with a vocabulary of a few dozen tokens it costs nothing).
        request.scoresAnswerRowsOnly = false
        switch variant.method {
        case .craft: request.method = .craft
        case .continuous: request.method = .continuous
        case .projector: request.method = .projector
        }
        if variant.replay {
            // Replay: general-domain training examples mixed into each micro-batch.
            request.replay = try dataFile(.general, "train", limit: settings.trainImages, file: "general-train.jsonl", context)
            request.replayWeight = 1
            request.replayPerBatch = settings.replayPerBatch
        }
        let version: String
        request.domains = ["digits", domain]
        switch variant.method {
        case .projector:
            request.name = surrogateName
            request.summary = "backend \(variant.surrogate.rawValue) with its projector fine-tuned on the \(domain) shift (projector baseline)"
            version = "1.0.1-\(variant.id)"
        case .continuous:
            request.name = MiniatureBundles.encoder
            request.summary = variant.drift
                ? "digits encoder fine-tuned continuously on the \(domain) shift with its feature drift penalised (LDIFS-style baseline)"
                : "digits encoder fine-tuned continuously (quantizer bypassed) on the \(domain) shift (continuous baseline)"
            version = "1.1.0-\(variant.id)"
        case .craft:
            request.name = MiniatureBundles.inSet(MiniatureBundles.encoder, variant.codebookSet)
            request.summary = variant.domain == .strong
                ? "digits SigLIP-VQ encoder adapted with CRAFT to the strong shift (inverted, blurred, noisy scans); same codebook"
                : "digits SigLIP-VQ encoder adapted with CRAFT to the \(domain) shift; same codebook"
            version = variant.id == "craft-strong-s0" ? MiniatureBundles.adaptedVersion : "1.1.0-\(variant.id)"
        }
        request.version = try SemanticVersion(parsing: version)

        context.log("adapt \(variant.id): \(variant.method.rawValue) on \(domain) (\(training.lastPathComponent)), seed \(variant.seed)")
        let log = context.log
        let result = try EncoderAdaptation.run(request) { event in
            switch event {
            case .training(let progress) where progress.record.event == "step" && progress.record.step % 50 == 0:
                log("  step \(progress.record.step)/\(progress.totalSteps) loss \(progress.record.loss.map { String(format: "%.4f", $0) } ?? "-")")
            case .projectorTraining(let progress) where progress.step % 50 == 0:
                log("  step \(progress.step)/\(progress.totalSteps) loss \(String(format: "%.4f", progress.loss))")
            case .notice(let text):
                log("  \(text)")
            default:
                break
            }
        }
        // The bundle where the table expects it, and packed with the others.
        let output = directory(variant, context)
        let packed = try step("moving \(result.bundleDirectory.path) to \(output.path)") { () throws -> PackedBundle in
            try? FileManager.default.removeItem(at: output)
            try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: result.bundleDirectory, to: output)
            return try BundleWriting.pack(output, into: context.packedDirectory)
        }
        context.log(String(format: "adapt %@: %d steps in %.0f s; validation %.1f %% → %.1f %%", variant.id, result.steps,
                           result.trainingSeconds, 100 * result.validationAccuracyBefore, 100 * result.validationAccuracyAfter))
        return (output, packed, ["seconds": result.trainingSeconds, "steps": result.steps])
    }
}
