// What `craft train` asks for and what it gives back.
import CraftBundles
import CraftCore
import CraftRegistry
import CraftRuntimes
import CraftTraining
import Foundation

/// How the encoder is adapted.
public enum AdaptationMethod: String, Sendable, Codable, CaseIterable {
    /// CRAFT: the encoder is trained through the straight-through estimator on the frozen codebook
    /// (`L_SAL + λ_commit·L_commit + λ_con·L_con`); the output encoder works with every backend that
    /// shares the codebook.
    case craft
    /// The continuous fine-tuning baseline: the quantizer is bypassed (the backend reads the
    /// continuous `z_e`), no commitment; the output manifest sets `config.bypass_quantizer: true`.
    case continuous
    /// The coupled projector fine-tuning baseline: the encoder stays frozen and only the surrogate's
    /// projector is trained; the output is a new backend bundle.
    case projector
}

/// Everything ``EncoderAdaptation/run(_:progress:)`` needs.
///
/// ```swift
/// var request = AdaptationRequest(
///     encoder: URL(fileURLWithPath: "base-vq-1.0.0.craft"), surrogate: URL(fileURLWithPath: "tiny-llm-1.0.0.craft"),
///     training: URL(fileURLWithPath: "shifted/train.jsonl"), outputDirectory: URL(fileURLWithPath: "out"))
/// request.configuration.epochs = 3
/// let result = try EncoderAdaptation.run(request)
/// print(result.packedBundle.path, result.validationAccuracyBefore, result.validationAccuracyAfter)
/// ```
public struct AdaptationRequest: Sendable {
    /// The encoder bundle to adapt (a `siglip-vq` encoder).
    public var encoder: BundleSource
    /// The frozen surrogate backend bundle; it must share the encoder's codebook.
    public var surrogate: BundleSource
    /// The training JSONL (`{"image", "prompt", "answer"[, "caption"][, "label"]}` per line).
    public var training: URL
    /// The validation JSONL; `nil` holds out ``validationFraction`` of the training file.
    public var validation: URL?
    /// The share of the training file held out for validation when no validation file is given.
    public var validationFraction = 0.1
    /// A general-domain JSONL scored before and after (retention); `nil` for none.
    public var generalValidation: URL?
    /// General-domain examples mixed into training (replay); `nil` for none.
    public var replay: URL?
    /// The weight of the replay examples' loss.
    public var replayWeight: Float = 1
    /// Replay examples added to each micro-batch; `nil` keeps the trainer's default (4).
    public var replayPerBatch: Int?
    /// How to adapt.
    public var method = AdaptationMethod.craft
    /// The task the objective's weights were chosen for (recorded in the provenance); `nil` when the
    /// weights were set by hand.
    public var task: TrainingTask?
    /// The trainer's options (objective, optimiser, schedule, epochs, batches, seed, checkpoints).
    public var configuration = TrainerConfiguration()
    /// Where the run's checkpoint (`.craft-train/`), log (`train-log.jsonl`), the new bundle
    /// directory and its packed `.craft` go.
    public var outputDirectory: URL
    /// The new version; `nil` bumps the base's minor version (`1.2.3` → `1.3.0`).
    public var version: SemanticVersion?
    /// The new name; `nil` keeps the base's.
    public var name: String?
    /// The new bundle's summary line; `nil` keeps the base's.
    public var summary: String?
    /// The new bundle's domain tags (for example the domain adapted to); `nil` keeps the base's.
    public var domains: [String]?
    /// The registry that resolves registry references and receives the bundle with ``publish``.
    public var registry: Registry?
    /// What the encoder and the surrogate must satisfy beyond verification (pre-releases, signatures).
    public var policy = OpeningPolicy()
    /// The runtimes that load the encoder and the surrogate (default: every runtime Craft ships).
    public var runtimes: RuntimeRegistry = .craftDefault
    /// Publish the packed bundle into ``registry``.
    public var publish = false
    /// The most tokens generated per validation answer.
    public var maximumAnswerTokens = 16
    /// Whether the surrogate computes logits only for the rows the alignment loss scores (the
    /// default; see ``TemplatedSurrogate/scoresAnswerRowsOnly``) or for the whole prompt.
    public var scoresAnswerRowsOnly = true
    /// Accept a result whose validation accuracy is below the base's: publish it anyway (without it,
    /// such a result is written for inspection, not published, and ``AdaptationResult/belowBase``
    /// tells the caller to fail).
    public var allowWorse = false
    /// Checked between training steps and between stages; once requested (SIGINT, SIGTERM) the run
    /// writes its checkpoint and throws ``AdaptationError`` `interrupted`. `nil` for none.
    public var interruption: TrainingInterruption?

    /// A request for bundles given as paths (a bundle directory or a `.craft` file).
    public init(encoder: URL, surrogate: URL, training: URL, outputDirectory: URL, configuration: TrainerConfiguration = TrainerConfiguration()) {
        self.init(encoder: BundleSource(path: encoder), surrogate: BundleSource(path: surrogate), training: training,
                  outputDirectory: outputDirectory, configuration: configuration)
    }

    /// A request for bundles given by location.
    public init(encoder: BundleSource, surrogate: BundleSource, training: URL, outputDirectory: URL, configuration: TrainerConfiguration = TrainerConfiguration()) {
        self.encoder = encoder
        self.surrogate = surrogate
        self.training = training
        self.outputDirectory = outputDirectory
        self.configuration = configuration
    }

    /// Checks the fields the trainer does not check.
    func validate() throws {
        if let name, !BundleReference.isValidName(name) {
            throw AdaptationError(.invalidRequest, "the name \"\(name)\" is not a bundle name; use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit")
        }
        guard replayWeight.isFinite, replayWeight >= 0 else {
            throw AdaptationError(.invalidRequest, "the replay weight is \(replayWeight); use a non-negative number such as 1")
        }
        if let replayPerBatch, replayPerBatch < 1 {
            throw AdaptationError(.invalidRequest, "replay examples per batch is \(replayPerBatch); use at least 1")
        }
        guard maximumAnswerTokens >= 1 else {
            throw AdaptationError(.invalidRequest, "the answer length limit is \(maximumAnswerTokens); use at least 1 token")
        }
        if publish, registry == nil {
            throw AdaptationError(.invalidRequest, "publishing needs a registry; pass --registry PATH")
        }
        try AdaptationError.converting { try configuration.validate() }
    }
}

/// What happened during a run, for progress displays.
public enum AdaptationEvent: Sendable {
    /// A stage begins (`checking compatibility`, `scoring the base encoder`, `writing the bundle`).
    case stage(String)
    /// Something the user should know (`L_con is off: …`, `resuming from step 12`).
    case notice(String)
    /// A training step or validation of the encoder (`craft`, `continuous`).
    case training(TrainingProgress)
    /// A training step of the projector baseline (`projector`).
    case projectorTraining(BackendTrainingProgress)
}

/// The outcome of ``EncoderAdaptation/run(_:progress:)``.
public struct AdaptationResult: Sendable {
    /// The new bundle, unpacked: `<output>/<name>-<version>`.
    public var bundleDirectory: URL
    /// The new bundle, packed: `<output>/<name>-<version>.craft`.
    public var packedBundle: URL
    /// The packed bundle's digest (`sha256:…`).
    public var packedDigest: String
    /// The new bundle's manifest.
    public var manifest: BundleManifest
    /// How the encoder was adapted.
    public var method: AdaptationMethod
    /// `NAME@VERSION` of the base bundle: the encoder adapted, or the surrogate whose projector was
    /// tuned (``AdaptationMethod/projector``).
    public var base: String
    /// `NAME@VERSION` of the encoder to pair the output with: the adapted encoder itself, or the frozen
    /// encoder of the projector baseline.
    public var encoder: String
    /// `NAME@VERSION` of the surrogate.
    public var surrogate: String
    /// Validation accuracy through the surrogate before training (normalised exact match).
    public var validationAccuracyBefore: Double
    /// Validation accuracy through the surrogate after training.
    public var validationAccuracyAfter: Double
    /// General-domain accuracy before training, when a general-domain set was given.
    public var generalAccuracyBefore: Double?
    /// General-domain accuracy after training.
    public var generalAccuracyAfter: Double?
    /// Optimiser steps in total (including those before a resume).
    public var steps: Int
    /// The step the run resumed from, when it resumed.
    public var resumedFromStep: Int?
    /// Whether early stopping ended training.
    public var stoppedEarly: Bool
    /// Examples trained on and validated on.
    public var trainingExamples: Int
    /// Validation examples.
    public var validationExamples: Int
    /// Whether the contrastive term was on (a text tower, pooled features, λ_con on).
    public var contrastive: Bool
    /// The codebook hash, recomputed from the new bundle's codebook tensor.
    public var codebookHash: String
    /// Whether it equals the base bundle's (always true for a successful run: a change is an error).
    public var codebookHashUnchanged: Bool
    /// Code frequencies of the adapted encoder over the training images.
    public var codeFrequencies: CodeFrequencies?
    /// The published record, with ``AdaptationRequest/publish``.
    public var published: PublishResult?
    /// Wall-clock seconds spent training (this run).
    public var trainingSeconds: Double
    /// The training log.
    public var logFile: URL
    /// Whether the run stopped at its step limit (``TrainerConfiguration/stopAfterSteps``) before its
    /// planned end: the bundle holds an unfinished encoder (`provenance.partial`).
    public var partial = false
    /// The steps the run was planned for (all epochs).
    public var plannedSteps: Int?
    /// The best validated epoch; the bundle holds its parameters when ``shippedBestEpoch``.
    public var best: BestEpoch?
    /// Whether the bundle holds the best validated epoch's parameters (else the last step's: no epoch
    /// was validated).
    public var shippedBestEpoch = false
    /// Whether ``validationAccuracyAfter`` is below ``validationAccuracyBefore`` (the base's, on the
    /// same validation set). The bundle is written either way; unless the request allowed it
    /// (``AdaptationRequest/allowWorse``) it was not published, and `craft train` exits 1.
    public var belowBase = false
}
