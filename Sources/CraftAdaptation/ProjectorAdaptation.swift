// The coupled projector fine-tuning baseline (`--method projector`): the encoder stays frozen and only
// the surrogate backend's projector is retrained on the domain, with CraftTraining's BackendTrainer
// (parts: .projector). The result is a new *backend* bundle: the same decoder and tokenizer, the new
// projector, a bumped version and provenance. It helps only the backend it was tuned for.
import CraftBundles
import CraftCore
import CraftModels
import CraftRegistry
import CraftRuntimes
import CraftTraining
import Foundation
import SafeTensors
import TensorCore

/// The projector baseline of ``EncoderAdaptation``.
enum ProjectorAdaptation {
    /// Trains the surrogate's projector on `training` with the base encoder's code vectors and writes
    /// the new backend bundle.
    static func run(
        _ request: AdaptationRequest, encoderBundle: OpenedBundle, surrogateBundle: OpenedBundle,
        training: TrainingDataset, validation: TrainingDataset, general: TrainingDataset?,
        progress: @escaping @Sendable (AdaptationEvent) -> Void
    ) throws -> AdaptationResult {
        guard request.replay == nil else {
            throw AdaptationError(.invalidRequest, "replay mixes general-domain examples into encoder training; --method projector does not train the encoder, so drop --replay")
        }
        let model = try EncoderBundleModel(encoderBundle)
        let surrogateManifest = surrogateBundle.manifest
        guard let backend = try request.runtimes.loadBackend(surrogateBundle.bundle) as? DecoderBackend else {
            throw AdaptationError(.unsupported, "\(surrogateManifest.reference) (runtime \(surrogateManifest.runtime.id)) is not a llama or gpt2 decoder backend; --method projector retrains those backends' projectors")
        }
        guard backend.mlpOutput == nil else {
            throw AdaptationError(.unsupported, "\(surrogateManifest.reference) has an mlp2x_gelu projector; --method projector retrains linear projectors only (CRAFT trains the encoder through either)")
        }
        guard let projector = surrogateManifest.backend?.projector else {
            throw AdaptationError(.unsupported, "\(surrogateManifest.reference) declares no backend.projector; there is no projector to retrain")
        }
        let template = try PromptTemplate(manifest: surrogateManifest)
        let parts = template.text.components(separatedBy: PromptTemplate.imagePlaceholder)
        guard parts[0].isEmpty else {
            throw AdaptationError(.unsupported, "the prompt template \"\(template.text)\" of \(surrogateManifest.reference) has text before <image>; --method projector trains backends whose template starts with <image>")
        }
        let configuration = request.configuration
        let continuous = model.runtime.bypassesQuantizer
        let inputs = model.inputs
        let batchSize = configuration.batchSize
        let maximumTokens = request.maximumAnswerTokens

        func accuracy(_ backend: DecoderBackend, on dataset: TrainingDataset) throws -> Double {
            let surrogate = TemplatedSurrogate(backend: backend, template: template, maximumAnswerTokens: maximumTokens)
            return try EncoderBundleModel.accuracy(
                of: model.trainable, on: dataset, surrogate: surrogate, continuous: continuous, batchSize: batchSize, inputs: inputs)
        }
        progress(.stage("scoring the base projector"))
        let validationBefore = try accuracy(backend, on: validation)
        let generalBefore = try general.map { try accuracy(backend, on: $0) }

        // The frozen encoder's vectors, placed as the template places them: visual first, then the
        // template's text after <image> with the prompt filled in.
        progress(.stage("encoding the training images with the frozen encoder"))
        var examples: [BackendTrainingExample] = []
        try EncoderBundleModel.forEachBatch(model.trainable, over: training, batchSize: batchSize, inputs: inputs) { batch, forward in
            let vectors = continuous ? forward.quantization.encoderOutput : forward.quantization.codeVectors
            for (index, example) in batch.enumerated() {
                let tail = parts.count > 1 ? parts[1] : ""
                let text = template.text.contains(PromptTemplate.promptPlaceholder)
                    ? tail.replacingOccurrences(of: PromptTemplate.promptPlaceholder, with: example.prompt) : tail + example.prompt
                examples.append(BackendTrainingExample(
                    visual: vectors.sliced(along: 0, index..<(index + 1)).squeezed(0).detached(), prompt: text, answer: example.answer))
            }
        }

        try EncoderAdaptation.checkInterruption(request.interruption, before: "training", checkpoint: nil)
        progress(.stage("training"))
        var backendConfiguration = BackendTrainerConfiguration(
            parts: .projector, learningRate: configuration.learningRate, epochs: configuration.epochs,
            batchSize: configuration.batchSize * configuration.gradientAccumulationSteps, seed: configuration.seed)
        backendConfiguration.warmupSteps = configuration.warmupSteps
        backendConfiguration.maximumGradientNorm = configuration.maximumGradientNorm
        backendConfiguration.optimizer = configuration.optimizer
        backendConfiguration.scoresAnswerRowsOnly = request.scoresAnswerRowsOnly
        try DerivedBundle.createOutputDirectory(request.outputDirectory)
        let logURL = request.outputDirectory.appendingPathComponent(EncoderAdaptation.logFileName)
        let log = ProjectorLog(url: logURL)
        try log.reset()
        let trainer = try BackendTrainer(backend: backend, configuration: backendConfiguration)
        let clock = ContinuousClock()
        let start = clock.now
        let result = try trainer.train(examples) { step in
            var record = TrainingLogRecord(event: "step", step: step.step, epoch: step.epoch)
            record.loss = step.loss
            record.gradientNorm = step.gradientNorm
            record.learningRate = step.learningRate
            log.append(record)
            progress(.projectorTraining(step))
        }
        try log.check()
        let elapsed = clock.now - start
        try EncoderAdaptation.checkInterruption(request.interruption, before: "scoring the tuned projector", checkpoint: nil)

        progress(.stage("scoring the tuned projector"))
        let validationAfter = try accuracy(result.backend, on: validation)
        let generalAfter = try general.map { try accuracy(result.backend, on: $0) }

        progress(.stage("writing the bundle"))
        let projectorData = try projectorFile(
            surrogateBundle.bundle, reference: projector, weight: result.projectorWeight, bias: result.projectorBias)
        let datasetDigest = try AdaptationError.converting { try training.digest() }
        let belowBase = validationAfter < validationBefore
        var provenance: [String: JSONValue] = [
            "method": .string(AdaptationMethod.projector.rawValue),
            "base": .string(surrogateManifest.reference),
            "encoder": .string(encoderBundle.manifest.reference),
            "dataset_digest": .string(datasetDigest),
            "hyperparameters": .object([
                "learning_rate": .number(Double(backendConfiguration.learningRate)),
                "warmup_steps": .integer(Int64(backendConfiguration.warmupSteps)),
                "epochs": .integer(Int64(backendConfiguration.epochs)),
                "batch_size": .integer(Int64(backendConfiguration.batchSize)),
                "weight_decay": .number(backendConfiguration.optimizer.weightDecay),
                "parts": .string(backendConfiguration.parts.rawValue),
            ]),
            "validation_accuracy_before": .number(validationBefore),
            "validation_accuracy_after": .number(validationAfter),
            "training_examples": .integer(Int64(training.count)),
            "validation_examples": .integer(Int64(validation.count)),
            "steps": .integer(Int64(result.losses.count)),
            "seed": .integer(Int64(bitPattern: configuration.seed)),
            "created_by": .string("craft train \(CraftVersion.current)"),
            "partial": .bool(false),
            "below_base": .bool(belowBase),
        ]
        if let digest = surrogateBundle.digest { provenance["base_digest"] = .string(digest) }
        if let digest = encoderBundle.digest { provenance["encoder_digest"] = .string(digest) }
        if let generalBefore, let generalAfter {
            provenance["general_accuracy_before"] = .number(generalBefore)
            provenance["general_accuracy_after"] = .number(generalAfter)
        }
        let derived = DerivedBundle(
            base: surrogateBundle.bundle, name: request.name ?? surrogateManifest.name,
            version: request.version ?? DerivedBundle.nextVersion(after: surrogateManifest.version, minor: true),
            files: [projector.file: { try projectorData.write(to: $0) }],
            provenance: .object(provenance), summary: request.summary, domains: request.domains)
        let output = try derived.write(into: request.outputDirectory)
        // The new backend still declares the codebook it reads, and pairs with the encoder.
        let check = checkCompatibility(encoder: encoderBundle.bundle, backend: try BundleArchive.open(directory: output.directory), runtimes: request.runtimes)
        guard check.isCompatible, output.manifest.codebook == surrogateManifest.codebook else {
            throw AdaptationError(.integrity, "the tuned backend \(output.file.path) no longer pairs with \(encoderBundle.manifest.reference); report this as a bug")
        }
        let published = try EncoderAdaptation.publishIfAccepted(output.file, request: request, belowBase: belowBase, progress: progress)
        var adaptation = AdaptationResult(
            bundleDirectory: output.directory, packedBundle: output.file, packedDigest: output.digest, manifest: output.manifest,
            method: .projector, base: surrogateManifest.reference, encoder: encoderBundle.manifest.reference, surrogate: surrogateManifest.reference,
            validationAccuracyBefore: validationBefore, validationAccuracyAfter: validationAfter,
            generalAccuracyBefore: generalBefore, generalAccuracyAfter: generalAfter, steps: result.losses.count,
            resumedFromStep: nil, stoppedEarly: false, trainingExamples: training.count, validationExamples: validation.count,
            contrastive: false, codebookHash: output.manifest.codebook.hash, codebookHashUnchanged: true, codeFrequencies: nil,
            published: published,
            trainingSeconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            logFile: logURL)
        adaptation.plannedSteps = result.losses.count
        adaptation.belowBase = belowBase
        return adaptation
    }

    /// The projector's safetensors file with the new weight (and bias) in place of the old ones and
    /// every other tensor of that file kept (as F32).
    static func projectorFile(_ bundle: UnpackedBundle, reference: TensorReference, weight: Tensor, bias: Tensor?) throws -> Data {
        let biasName = reference.name.hasSuffix("weight") ? String(reference.name.dropLast("weight".count)) + "bias" : nil
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        do {
            let source = try SafeTensorsFile(contentsOf: bundle.url(for: reference.file))
            for name in source.names where name != reference.name && name != biasName {
                try writer.add(name, floats: try source.floats(name), shape: try source.info(name).shape)
            }
            try writer.add(reference.name, floats: weight.scalars, shape: weight.shape)
            if let bias, let biasName { try writer.add(biasName, floats: bias.scalars, shape: bias.shape) }
            return try writer.serialized()
        } catch {
            throw AdaptationError(.unsupported, "cannot rewrite the projector file \(reference.file) of \(bundle.manifest.reference): \(describe(error))")
        }
    }
}

/// The step log of the projector baseline: `train-log.jsonl` with the trainer's record format.
final class ProjectorLog: @unchecked Sendable {
    private let url: URL
    private let lock = NSLock()
    private var failure: (any Error)?

    init(url: URL) { self.url = url }

    /// Starts an empty log (the baseline has no checkpoint: a rerun starts over).
    func reset() throws {
        do { try Data().write(to: url) } catch {
            throw AdaptationError(.io, "cannot write the training log \(url.path) (\(describe(error))); check the output directory is writable")
        }
    }

    func append(_ record: TrainingLogRecord) {
        lock.lock()
        defer { lock.unlock() }
        guard failure == nil else { return }
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let handle = try FileHandle(forWritingTo: url)
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: try encoder.encode(record) + Data("\n".utf8))
        } catch {
            failure = error
        }
    }

    /// Throws the first write failure, if any.
    func check() throws {
        if let failure {
            throw AdaptationError(.io, "cannot append to the training log \(url.path) (\(describe(failure))); check free space")
        }
    }
}
