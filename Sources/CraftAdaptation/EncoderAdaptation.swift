// `craft train`: adapt an encoder bundle against a frozen surrogate backend bundle with CRAFT
// (docs/training.md) and write the adapted encoder as a new bundle version (docs/adaptation.md).
import CraftBundles
import CraftCore
import CraftFiles
import CraftModels
import CraftRegistry
import CraftRuntimes
import CraftTraining
import Foundation
import TensorCore

/// Adapts an encoder bundle to a domain: bundle in, bundle out.
///
/// 1. Opens the encoder and the surrogate (directories, `.craft` files or registry references) and
///    runs the compatibility checker first: a pair that does not share a codebook is refused with the
///    checker's reason (``AdaptationError/Code/incompatible``) before anything else happens.
/// 2. Reads the datasets (every problem names the file and line) and scores the base encoder on the
///    validation set (and the general-domain set, when given) through the surrogate.
/// 3. Trains with CraftTraining's ``Trainer``; the checkpoint lives in `<output>/.craft-train/checkpoint`
///    and the log in `<output>/train-log.jsonl`, so running the same request again resumes.
/// 4. Scores the adapted encoder, counts its codes over the training images, and writes
///    `<output>/<name>-<version>/` and `<output>/<name>-<version>.craft`: the base bundle's files with
///    the retrained `model.safetensors`, `code_frequencies.json`, a bumped version and `provenance`;
///    the codebook tensor and its hash are unchanged (checked). With `publish`, publishes it.
public enum EncoderAdaptation {
    /// The run's private directory inside the output directory.
    public static let runDirectoryName = ".craft-train"
    /// The training log inside the output directory.
    public static let logFileName = "train-log.jsonl"
    /// The file of the code frequencies in the new bundle.
    public static let codeFrequenciesFile = Pipeline.codeFrequenciesFile

    /// Runs an adaptation.
    ///
    /// - Parameters:
    ///   - request: what to adapt, on which data, how, and where the outputs go.
    ///   - progress: called with each stage, notice, training step and validation.
    /// - Throws: ``AdaptationError`` (incompatible pair, bad data or options, missing inputs),
    ///   ``BundleError`` or ``RegistryError`` for damaged bundles and registries.
    public static func run(_ request: AdaptationRequest, progress: (@Sendable (AdaptationEvent) -> Void)? = nil) throws -> AdaptationResult {
        do {
            return try perform(request, progress: progress ?? { _ in })
        } catch {
            throw AdaptationError.wrapping(error)
        }
    }

    private static func perform(_ request: AdaptationRequest, progress: @escaping @Sendable (AdaptationEvent) -> Void) throws -> AdaptationResult {
        try request.validate()
        let continuous = request.method == .continuous
        let workspace = try BundleOpener(prefix: "craft-adapt")
        defer { workspace.remove() }

        // 1. The pair, checked before anything else.
        progress(.stage("checking the encoder and the surrogate"))
        let encoderBundle = try workspace.open(request.encoder, role: "encoder", registry: request.registry, policy: request.policy)
        let surrogateBundle = try workspace.open(request.surrogate, role: "surrogate", registry: request.registry, policy: request.policy)
        _ = try checkedPair(encoder: encoderBundle, surrogate: surrogateBundle, runtimes: request.runtimes)

        // 2. Data, models, the run directory.
        let (training, validation) = try AdaptationDatasets.trainingAndValidation(
            training: request.training, validation: request.validation, fraction: request.validationFraction)
        let general = try request.generalValidation.map { try AdaptationDatasets.load($0, role: "general-domain validation data") }
        let replay = try request.replay.map { try AdaptationDatasets.load($0, role: "replay data") }
        if request.method == .projector {
            return try ProjectorAdaptation.run(
                request, encoderBundle: encoderBundle, surrogateBundle: surrogateBundle, training: training, validation: validation,
                general: general, progress: progress)
        }
        let model = try EncoderBundleModel(encoderBundle)
        let backend = try request.runtimes.loadSurrogate(surrogateBundle.bundle)
        let template = try PromptTemplate(manifest: surrogateBundle.manifest)
        let surrogate = TemplatedSurrogate(backend: backend, template: template, maximumAnswerTokens: request.maximumAnswerTokens,
                                           scoresAnswerRowsOnly: request.scoresAnswerRowsOnly)

        var configuration = request.configuration
        configuration.validationFraction = nil
        configuration.mode = continuous ? .continuous : .craft
        configuration.replayWeight = request.replayWeight
        if let perBatch = request.replayPerBatch { configuration.replayPerBatch = perBatch }
        if let scale = encoderBundle.manifest.config?["logit_scale"]?.doubleValue { configuration.objective.logitScale = Float(scale) }
        if let bias = encoderBundle.manifest.config?["logit_bias"]?.doubleValue { configuration.objective.logitBias = Float(bias) }
        let (textEmbedder, contrastiveNotice) = try textTower(encoderBundle.bundle, model: model, objective: configuration.objective)
        if let contrastiveNotice { progress(.notice(contrastiveNotice)) }
        let contrastive = textEmbedder != nil && configuration.objective.usesContrastive && configuration.objective.contrastiveWeight > 0
        var trainable = model.trainable
        trainable.pooling = !contrastive ? .none : continuous ? .continuous : .quantized

        let datasetDigest = try AdaptationError.converting { try training.digest() }
        let replayDigest = try replay.map { replay in try AdaptationError.converting { try replay.digest() } }
        try DerivedBundle.createOutputDirectory(request.outputDirectory)
        let runDirectory = request.outputDirectory.appendingPathComponent(runDirectoryName)
        let checkpoint = runDirectory.appendingPathComponent("checkpoint")
        let logURL = request.outputDirectory.appendingPathComponent(logFileName)
        let record = RunRecord(
            base: encoderBundle.manifest.reference, baseCodebook: encoderBundle.manifest.codebook.hash,
            surrogate: surrogateBundle.manifest.reference, method: request.method, datasetDigest: datasetDigest,
            replayDigest: replayDigest, configuration: configuration)
        let resumedFrom = try record.claim(runDirectory)
        if let resumedFrom { progress(.notice("resuming the run in \(runDirectory.path) from step \(resumedFrom)")) }
        let interrupted = { (stage: String) throws in try checkInterruption(request.interruption, before: stage, checkpoint: checkpoint) }

        // 3. Before, train, after.
        let inputs = model.inputs
        let batchSize = configuration.batchSize
        progress(.stage("scoring the base encoder"))
        // The base is scored as its bundle runs: on z_e when it already bypasses its quantizer.
        let baseContinuous = model.runtime.bypassesQuantizer
        let validationBefore = try EncoderBundleModel.accuracy(
            of: model.trainable, on: validation, surrogate: surrogate, continuous: baseContinuous, batchSize: batchSize, inputs: inputs)
        let generalBefore = try general.map {
            try EncoderBundleModel.accuracy(of: model.trainable, on: $0, surrogate: surrogate, continuous: baseContinuous, batchSize: batchSize, inputs: inputs)
        }

        try interrupted("training")
        progress(.stage("training"))
        var trainer = try Trainer(encoder: trainable, surrogate: surrogate, textEmbedder: textEmbedder, inputs: inputs, configuration: configuration)
        let clock = ContinuousClock()
        let start = clock.now
        let summary = try trainer.train(
            training: training, validation: validation, replay: replay, checkpointDirectory: checkpoint, logURL: logURL,
            datasetDigest: datasetDigest, interruption: request.interruption, progress: { progress(.training($0)) })
        let elapsed = clock.now - start
        let adapted = trainer.encoder
        if summary.partial, let limit = configuration.stopAfterSteps {
            progress(.notice("stopped at step \(summary.steps) of \(summary.plannedSteps) (step limit \(limit)); the bundle is marked partial, run again without the limit to finish"))
        }
        if let best = summary.best, summary.restoredBest, best.step != summary.steps {
            progress(.notice(String(format: "the bundle holds epoch %d (step %d, validation accuracy %.1f%%), the best validated epoch, not the last step's weights",
                                    best.epoch + 1, best.step, best.validationAccuracy * 100)))
        }
        try interrupted("scoring the adapted encoder")

        progress(.stage("scoring the adapted encoder"))
        let validationAfter = try EncoderBundleModel.accuracy(
            of: adapted, on: validation, surrogate: surrogate, continuous: continuous, batchSize: batchSize, inputs: inputs)
        let generalAfter = try general.map {
            try EncoderBundleModel.accuracy(of: adapted, on: $0, surrogate: surrogate, continuous: continuous, batchSize: batchSize, inputs: inputs)
        }
        try interrupted("counting codes")
        progress(.stage("counting codes over the training images"))
        let frequencies = try EncoderBundleModel.codeFrequencies(
            of: adapted, depth: encoderBundle.manifest.codebook.depth, over: training, batchSize: batchSize, inputs: inputs)

        // 4. The new bundle.
        try interrupted("writing the bundle")
        progress(.stage("writing the bundle"))
        let base = encoderBundle.manifest
        let belowBase = validationAfter < validationBefore
        var provenance: [String: JSONValue] = [
            "method": .string(request.method.rawValue),
            "base": .string(base.reference),
            "surrogate": .string(surrogateBundle.manifest.reference),
            "dataset_digest": .string(datasetDigest),
            "hyperparameters": hyperparameters(configuration, contrastive: contrastive, task: request.task),
            "validation_accuracy_before": .number(validationBefore),
            "validation_accuracy_after": .number(validationAfter),
            "training_examples": .integer(Int64(training.count)),
            "validation_examples": .integer(Int64(validation.count)),
            "steps": .integer(Int64(summary.steps)),
            "stopped_early": .bool(summary.stoppedEarly),
            "seed": .integer(Int64(bitPattern: configuration.seed)),
            "created_by": .string("craft train \(CraftVersion.current)"),
            "partial": .bool(summary.partial),
            "planned_steps": .integer(Int64(summary.plannedSteps)),
            "shipped": .string(summary.restoredBest ? "best-validation" : "last-step"),
            "shipped_step": .integer(Int64(summary.restoredBest ? summary.best?.step ?? summary.steps : summary.steps)),
            "below_base": .bool(belowBase),
        ]
        if let best = summary.best {
            if summary.restoredBest { provenance["shipped_epoch"] = .integer(Int64(best.epoch)) }
            provenance["best_epoch"] = .integer(Int64(best.epoch))
            provenance["best_step"] = .integer(Int64(best.step))
            provenance["best_validation_accuracy"] = .number(best.validationAccuracy)
        }
        if let digest = encoderBundle.digest { provenance["base_digest"] = .string(digest) }
        if let digest = surrogateBundle.digest { provenance["surrogate_digest"] = .string(digest) }
        if let replay, let replayDigest {
            provenance["replay"] = .object([
                "dataset_digest": .string(replayDigest), "examples": .integer(Int64(replay.count)),
                "weight": .number(Double(configuration.replayWeight)), "per_batch": .integer(Int64(configuration.replayPerBatch)),
            ])
        }
        if let generalBefore, let generalAfter {
            provenance["general_accuracy_before"] = .number(generalBefore)
            provenance["general_accuracy_after"] = .number(generalAfter)
        }
        let frequencyData = try frequenciesJSON(frequencies)
        let parameters = adapted.parameters
        var config: [String: JSONValue] = [:]
        if continuous || baseContinuous { config["bypass_quantizer"] = .bool(continuous) }
        let derived = DerivedBundle(
            base: encoderBundle.bundle, name: request.name ?? base.name,
            version: request.version ?? DerivedBundle.nextVersion(after: base.version, minor: true),
            files: [
                EncoderBundleModel.weightsFile: { try model.writeWeights(parameters, to: $0) },
                codeFrequenciesFile: { try frequencyData.write(to: $0) },
            ],
            config: config, provenance: .object(provenance), summary: request.summary, domains: request.domains)
        let output = try derived.write(into: request.outputDirectory)
        let recomputed = try CodebookVerification.recompute(output.manifest, in: output.directory)
        guard recomputed.hash == base.codebook.hash else {
            throw AdaptationError(.integrity, "the adapted bundle \(output.file.path) has codebook hash \(recomputed.hash) but the base \(base.reference) has \(base.codebook.hash); the codebook must not change, report this as a bug")
        }
        let published = try publishIfAccepted(output.file, request: request, belowBase: belowBase, progress: progress)
        var result = AdaptationResult(
            bundleDirectory: output.directory, packedBundle: output.file, packedDigest: output.digest, manifest: output.manifest,
            method: request.method, base: base.reference, encoder: output.manifest.reference, surrogate: surrogateBundle.manifest.reference,
            validationAccuracyBefore: validationBefore, validationAccuracyAfter: validationAfter,
            generalAccuracyBefore: generalBefore, generalAccuracyAfter: generalAfter, steps: summary.steps,
            resumedFromStep: resumedFrom, stoppedEarly: summary.stoppedEarly, trainingExamples: training.count,
            validationExamples: validation.count, contrastive: contrastive, codebookHash: recomputed.hash,
            codebookHashUnchanged: true, codeFrequencies: frequencies, published: published,
            trainingSeconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            logFile: logURL)
        result.partial = summary.partial
        result.plannedSteps = summary.plannedSteps
        result.best = summary.best
        result.shippedBestEpoch = summary.restoredBest
        result.belowBase = belowBase
        return result
    }

    /// Throws ``AdaptationError`` `interrupted` when the run was asked to stop (between stages; the
    /// trainer checks between steps itself).
    static func checkInterruption(_ interruption: TrainingInterruption?, before stage: String, checkpoint: URL?) throws {
        guard let signal = interruption?.signal else { return }
        let resume = checkpoint.map { FileManager.default.fileExists(atPath: $0.path) ? "the checkpoint in \($0.path) is kept; run the same command again to resume" : "no checkpoint was written yet; run the same command again to start over" }
            ?? "run the same command again to start over"
        throw AdaptationError(.interrupted, "interrupted by \(TrainingInterruption.name(of: signal)) before \(stage); \(resume)")
    }

    /// Publishes `file` with ``AdaptationRequest/publish``, unless the result is below the base's
    /// accuracy and the request does not allow it (then says so and publishes nothing).
    static func publishIfAccepted(
        _ file: URL, request: AdaptationRequest, belowBase: Bool, progress: @Sendable (AdaptationEvent) -> Void
    ) throws -> PublishResult? {
        guard request.publish, let registry = request.registry else { return nil }
        if belowBase && !request.allowWorse {
            progress(.notice("not publishing \(file.lastPathComponent): its validation accuracy is below the base encoder's (pass --allow-worse to publish it anyway)"))
            return nil
        }
        progress(.stage("publishing"))
        return try registry.publish(file)
    }

    /// The compatibility checker's verdict on the pair; refuses a failing pair with its first reason.
    static func checkedPair(encoder: OpenedBundle, surrogate: OpenedBundle, runtimes: RuntimeRegistry) throws -> CheckedPair {
        let report = checkCompatibility(encoder: encoder.bundle, backend: surrogate.bundle, runtimes: runtimes)
        guard let pair = report.pairing else {
            let first = report.failures.first.map { " (\($0.code): \($0.reason))" } ?? ""
            throw AdaptationError(
                .incompatible,
                "\(encoder.manifest.reference) and the surrogate \(surrogate.manifest.reference) cannot be paired\(first); train against a backend that shares the encoder's codebook",
                report: report)
        }
        return pair
    }

    /// The frozen text tower for `L_con` from the bundle's `text/`, or why there is none.
    static func textTower(_ bundle: UnpackedBundle, model: EncoderBundleModel, objective: CraftObjective) throws -> (SiglipTextEmbedder?, String?) {
        let reference = bundle.manifest.reference
        guard objective.usesContrastive, objective.contrastiveWeight > 0 else { return (nil, nil) }
        guard bundle.manifest.file(at: "text/config.json") != nil else {
            return (nil, "L_con is off: \(reference) has no text tower (text/config.json, text/model.safetensors, text/tokenizer.json)")
        }
        guard model.trainable.configuration.useHead else {
            return (nil, "L_con is off: \(reference)'s vision tower has no attention-pooling head, so there are no pooled image features to compare with text")
        }
        let tower: SiglipTextModel
        let tokenizer: Tokenizer
        do {
            tower = try SiglipTextModel(directory: bundle.url(for: "text"))
            tokenizer = try Tokenizer(contentsOf: bundle.url(for: "text/tokenizer.json"))
        } catch {
            throw AdaptationError(.unsupported, "cannot load the text tower in text/ of \(reference): \(describe(error)); fix or remove text/ from the bundle")
        }
        let width = model.trainable.configuration.hiddenSize
        guard tower.configuration.projectionSize == width else {
            throw AdaptationError(.unsupported, "the text tower of \(reference) embeds into \(tower.configuration.projectionSize) dimensions but the image features have \(width); use a text tower with projection_size \(width)")
        }
        let embedder = SiglipTextEmbedder(tower: tower, padToken: tower.configuration.padTokenID ?? 1) { text in
            try tokenizer.encode(text)
        }
        return (embedder, nil)
    }

    /// The hyperparameters recorded in the provenance.
    static func hyperparameters(_ configuration: TrainerConfiguration, contrastive: Bool, task: TrainingTask? = nil) -> JSONValue {
        let objective = configuration.effectiveObjective
        var members: [String: JSONValue] = [
            "learning_rate": .number(Double(configuration.learningRate)),
            "schedule": .string(configuration.schedule.rawValue),
            "warmup_steps": .integer(Int64(configuration.warmupSteps)),
            "epochs": .integer(Int64(configuration.epochs)),
            "batch_size": .integer(Int64(configuration.batchSize)),
            "gradient_accumulation_steps": .integer(Int64(configuration.gradientAccumulationSteps)),
            "weight_decay": .number(configuration.optimizer.weightDecay),
            "beta1": .number(configuration.optimizer.beta1),
            "beta2": .number(configuration.optimizer.beta2),
            "lambda_con": .number(Double(objective.contrastiveWeight)),
            "lambda_commit": .number(Double(objective.commitmentWeight)),
            "alignment": .bool(objective.usesAlignment),
            "commitment": .bool(objective.usesCommitment),
            "contrastive": .bool(contrastive),
            "mode": .string(configuration.mode.rawValue),
        ]
        if let norm = configuration.maximumGradientNorm { members["max_grad_norm"] = .number(Double(norm)) }
        if let task { members["task"] = .string(task.rawValue) }
        if contrastive {
            members["logit_scale"] = .number(Double(objective.logitScale))
            members["logit_bias"] = .number(Double(objective.logitBias))
        }
        members["decays_vectors"] = .bool(configuration.optimizer.decaysVectors)
        if let patience = configuration.earlyStoppingPatience { members["patience"] = .integer(Int64(patience)) }
        return .object(members)
    }

    /// `{"counts": [...], "entries": K, "total": N}` with sorted keys.
    static func frequenciesJSON(_ frequencies: CodeFrequencies) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(frequencies) + Data("\n".utf8)
    }
}

/// What a run directory was started for, so a resume with other inputs or options is refused
/// instead of silently mixing two runs.
struct RunRecord: Codable, Equatable {
    var base: String
    var baseCodebook: String
    var surrogate: String
    var method: AdaptationMethod
    var datasetDigest: String
    var replayDigest: String?
    var configuration: TrainerConfiguration

    static let fileName = "run.json"

    /// The record with the options that may change between an interrupted run and its resume
    /// (step limit, checkpoint interval) cleared.
    var comparable: RunRecord {
        var copy = self
        copy.configuration.stopAfterSteps = nil
        copy.configuration.checkpointEvery = nil
        return copy
    }

    /// Writes the record into `directory`, or checks it against the one there.
    ///
    /// - Returns: the checkpoint's step when the directory holds a checkpoint of this run.
    /// - Throws: ``AdaptationError`` (`invalidRequest`) when the directory belongs to another run.
    func claim(_ directory: URL) throws -> Int? {
        let url = directory.appendingPathComponent(Self.fileName)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        if let data = try? BoundedFile.read(url, limit: BoundedFile.smallDocumentLimit) {
            guard let existing = try? decoder.decode(RunRecord.self, from: data), existing.comparable == comparable else {
                throw AdaptationError(.invalidRequest, "\(directory.deletingLastPathComponent().path) holds a training run with other bundles, data or options (\(url.path)); use another --output-directory, or delete \(directory.path) to start over")
            }
            let state = directory.appendingPathComponent("checkpoint/state.json")
            guard let stateData = try? BoundedFile.read(state, limit: BoundedFile.smallDocumentLimit),
                let object = (try? JSONSerialization.jsonObject(with: stateData)) as? [String: Any],
                let inner = object["state"] as? [String: Any], let step = inner["step"] as? Int
            else { return nil }
            return step
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try encoder.encode(self).write(to: url, options: .atomic)
        } catch {
            throw AdaptationError(.io, "cannot write \(url.path) (\(describe(error))); check the output directory is writable")
        }
        return nil
    }
}
