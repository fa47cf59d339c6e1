import ArgumentParser
import CraftAdaptation
import CraftBundles
import CraftCore
import CraftRegistry
import CraftTraining
import Foundation
import TensorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `craft train`: adapt an encoder bundle to a domain with CRAFT against a frozen surrogate backend
/// and write (and optionally publish) the adapted encoder as a new bundle version.
struct TrainCommand: EnvironmentCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune an encoder for a domain with CRAFT and write it as a new bundle version.",
        discussion: """
            Only the encoder is trained; the codebook, the surrogate's projector and language model stay \
            frozen, so the adapted encoder works with every backend that shares the codebook. The \
            compatibility checker runs first: an encoder and a surrogate that do not share a codebook \
            are refused (exit 3) before training. Each dataset line is {"image": PATH, "prompt": TEXT, \
            "answer": TEXT} with optional "caption" and "label" (the text of L_con; a label becomes \
            "a photo of a LABEL"); a bad line, a missing image or an empty split is exit 64.

            Outputs in --output-directory DIR (default craft-train): NAME-VERSION/ and NAME-VERSION.craft (the base bundle's files with \
            the retrained model.safetensors, code_frequencies.json, a bumped version and provenance; \
            the codebook and its hash unchanged), train-log.jsonl (one JSON object per step and \
            validation), training.svg (a picture of the log: the loss terms per step and the validation \
            accuracy per epoch, redrawn at every epoch's end, on interruption and at the end; open it in \
            a browser) and .craft-train/ (the checkpoint).

            The bundle holds the best validated epoch's weights, not the last step's (the provenance \
            records which epoch and step, and its accuracy); --patience stops early and keeps the best. \
            The base encoder is scored on the same validation data first: when the result is below it, \
            the bundle is still written for inspection but not published, a warning says so, and the \
            command exits 1 unless --allow-worse.

            Checkpoints are written every --checkpoint-every steps (50), at every epoch's end, at the \
            end, and when the trainer sees SIGINT or SIGTERM (at the step reached; the command then \
            exits 130 or 143). Running the same command again resumes from the checkpoint's step \
            (the log has each step once) and ends with the same weights as an uninterrupted run. A run \
            stopped by --stop-after-steps writes its bundle marked partial (provenance.partial).

            Exit status: 0 done; 1 the result is below the base's validation accuracy (without \
            --allow-worse) or another failure; 2 a missing dataset or bundle; 3 a surrogate with \
            another codebook; 4 a damaged bundle; 64 bad data or options; 130/143 stopped by \
            SIGINT/SIGTERM (checkpoint kept).

            --method continuous (quantizer bypassed) and --method projector (only the surrogate's \
            projector is tuned; the output is a new backend bundle) are the paper's baselines.

            Examples (from the repository root, on the embedded registry):
              craft train --encoder digits-siglip-vq@1.0.0 --surrogate digits-llama \\
                  --data examples/publish-an-encoder/data/train.jsonl \\
                  --validation examples/publish-an-encoder/data/val.jsonl \\
                  --learning-rate 3e-4 --output-directory out
              craft train --encoder digits-siglip-vq@1.0.0 --surrogate digits-gpt2 \\
                  --data examples/publish-an-encoder/data/train.jsonl \\
                  --validation-fraction 0.25 --epochs 1 --task vqa --allow-worse \\
                  --name digits-vqa-vq --version 0.1.0 --output-directory vqa --json
            """)

    @OptionGroup var options: RegistryOptions

    @OptionGroup var loading: LoadingOptions

    // MARK: Inputs

    @Option(help: ArgumentHelp("The encoder to adapt: a .craft file, a bundle directory or NAME[@VERSION|@RANGE]. Example: --encoder digits-siglip-vq@^1.0", valueName: "ref-or-file"))
    var encoder: String

    @Option(help: ArgumentHelp("The frozen surrogate backend (shares the encoder's codebook): a .craft file, a bundle directory or a REF. Example: --surrogate digits-llama", valueName: "ref-or-file"))
    var surrogate: String

    @Option(help: ArgumentHelp("The training JSONL. Example: --data derm/train.jsonl", valueName: "file"))
    var data: String

    @Option(help: ArgumentHelp("The validation JSONL; without it --validation-fraction of --data is held out. Example: --validation derm/val.jsonl", valueName: "file"))
    var validation: String?

    @Option(help: ArgumentHelp("The share of --data held out for validation when --validation is not given (deterministic, by content). Example: --validation-fraction 0.2", valueName: "fraction"))
    var validationFraction = 0.1

    @Option(help: ArgumentHelp("A general-domain JSONL scored before and after training, to measure forgetting. Example: --general-validation general/val.jsonl", valueName: "file"))
    var generalValidation: String?

    @Option(help: ArgumentHelp("General-domain examples mixed into training (replay). Example: --replay general/train.jsonl", valueName: "file"))
    var replay: String?

    @Option(help: ArgumentHelp("The weight of the replay examples' loss. Example: --replay-weight 0.5", valueName: "weight"))
    var replayWeight: Float = 1

    @Option(help: ArgumentHelp("Replay examples added to each batch (default 4). Example: --replay-per-batch 2", valueName: "n"))
    var replayPerBatch: Int?

    // MARK: Objective

    @Option(help: ArgumentHelp("craft (the method), continuous (quantizer bypassed, baseline) or projector (tune the surrogate's projector, baseline). Example: --method craft", valueName: "method"))
    var method: AdaptationMethod = .craft

    @Option(help: ArgumentHelp("classification (lambda_con 1.0) or vqa (lambda_con 0.1): the paper's defaults. Example: --task vqa", valueName: "task"))
    var task: TrainingTask = .classification

    @Option(help: ArgumentHelp("The weight of L_con, overriding --task. Example: --lambda-con 0.5", valueName: "weight"))
    var lambdaCon: Float?

    @Option(help: ArgumentHelp("The weight of L_commit. Example: --lambda-commit 0.25", valueName: "weight"))
    var lambdaCommit: Float = 0.1

    @Flag(help: "Turn L_SAL (the answer loss through the surrogate) off. Example: --no-alignment")
    var noAlignment = false

    @Flag(help: "Turn L_commit off (tokens may drift off the codebook). Example: --no-commitment")
    var noCommitment = false

    @Flag(help: "Turn L_con off. Example: --no-contrastive")
    var noContrastive = false

    // MARK: Optimisation

    @Option(help: ArgumentHelp("Passes over the training set. Example: --epochs 5", valueName: "n"))
    var epochs = 1

    @Option(help: ArgumentHelp("Examples per micro-batch. Example: --batch-size 16", valueName: "n"))
    var batchSize = 8

    @Option(help: ArgumentHelp("Micro-batches per optimiser step (gradient accumulation). Example: --accumulate 4", valueName: "n"))
    var accumulate = 1

    @Option(help: ArgumentHelp("The peak learning rate (AdamW). Example: --learning-rate 3e-4", valueName: "rate"))
    var learningRate: Float = 1e-4

    @Option(help: ArgumentHelp("Linear warmup steps before the cosine decay. Example: --warmup 10", valueName: "steps"))
    var warmup = 0

    @Option(help: ArgumentHelp("AdamW's decoupled weight decay. Example: --weight-decay 0.05", valueName: "decay"))
    var weightDecay = 0.01

    @Option(help: ArgumentHelp("Clip the global gradient norm to this; 0 turns clipping off. Example: --max-grad-norm 1.0", valueName: "norm"))
    var maxGradNorm: Float = 1.0

    @Option(help: ArgumentHelp("The seed of the data order (same seed and threads: same weights). Example: --seed 7", valueName: "seed"))
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Stop after this many epochs without a better validation accuracy; the best epoch's weights are kept. Example: --patience 2", valueName: "epochs"))
    var patience: Int?

    @Option(help: ArgumentHelp("Write a checkpoint every this many steps (default 50), besides every epoch's end, SIGINT/SIGTERM and the end. Example: --checkpoint-every 20", valueName: "steps"))
    var checkpointEvery = 50

    @Option(help: ArgumentHelp("Stop after this many steps in total and keep the checkpoint; the bundle is marked partial; run again without it to continue. Example: --stop-after-steps 100", valueName: "steps"))
    var stopAfterSteps: Int?

    @Flag(help: "Accept a result below the base encoder's validation accuracy: publish it and exit 0 (without it: written, not published, exit 1). Example: --allow-worse")
    var allowWorse = false

    @Flag(help: "Print no progress on stderr (notes and warnings still appear). Example: --quiet")
    var quiet = false

    // MARK: Output

    @Option(help: ArgumentHelp("Where the bundle, its .craft file, the log and the checkpoint go. Example: --output-directory out/derm", valueName: "dir"))
    var outputDirectory = "craft-train"

    @Option(help: ArgumentHelp("The new version (default: the base's minor version plus one). Example: --version 1.1.0", valueName: "semver"))
    var version: String?

    @Option(help: ArgumentHelp("The new bundle name (default: the base's). Example: --name derm-vq", valueName: "name"))
    var name: String?

    @Flag(help: "Publish the packed bundle into the registry (--registry, $CRAFT_REGISTRY, ./registry or ~/.craft/registry). Example: --publish --registry registry")
    var publish = false

    func validate() throws {
        guard validationFraction > 0, validationFraction < 1 else {
            throw ValidationError("--validation-fraction must be between 0 and 1 (exclusive), such as 0.1, not \(validationFraction).")
        }
        for (flag, value) in [("--epochs", epochs), ("--batch-size", batchSize), ("--accumulate", accumulate)] where value < 1 {
            throw ValidationError("\(flag) must be 1 or more, not \(value).")
        }
        guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more, not \(warmup).") }
        guard learningRate.isFinite, learningRate > 0 else { throw ValidationError("--learning-rate must be positive, such as 1e-4, not \(learningRate).") }
        guard weightDecay.isFinite, weightDecay >= 0 else { throw ValidationError("--weight-decay must be 0 or more, not \(weightDecay).") }
        guard maxGradNorm.isFinite, maxGradNorm >= 0 else { throw ValidationError("--max-grad-norm must be 0 (off) or positive, not \(maxGradNorm).") }
        guard lambdaCommit.isFinite, lambdaCommit >= 0 else { throw ValidationError("--lambda-commit must be 0 or more, not \(lambdaCommit).") }
        if let lambdaCon, !(lambdaCon.isFinite && lambdaCon >= 0) { throw ValidationError("--lambda-con must be 0 or more, not \(lambdaCon).") }
        guard replayWeight.isFinite, replayWeight >= 0 else { throw ValidationError("--replay-weight must be 0 or more, not \(replayWeight).") }
        for (flag, value) in [("--patience", patience), ("--checkpoint-every", Optional(checkpointEvery)), ("--stop-after-steps", stopAfterSteps),
                              ("--replay-per-batch", replayPerBatch)] {
            if let value, value < 1 { throw ValidationError("\(flag) must be 1 or more, not \(value).") }
        }
        if noAlignment, noCommitment, noContrastive {
            throw ValidationError("--no-alignment, --no-commitment and --no-contrastive together leave nothing to train; keep at least one term.")
        }
        if let version, SemanticVersion(version) == nil {
            throw ValidationError("--version must be a semantic version such as 1.1.0, not \(version).")
        }
        if let name, !BundleReference.isValidName(name) {
            throw ValidationError("--name must be a bundle name (lowercase letters, digits, '.', '_', '-', starting with a letter or digit), not \(name).")
        }
        for side in [encoder, surrogate] where !BundleSource.looksLikePath(side) {
            _ = try parseReference(side)
        }
    }

    /// The trainer's options from the flags.
    var trainerConfiguration: TrainerConfiguration {
        var configuration = TrainerConfiguration()
        var objective = task.objective
        if let lambdaCon { objective.contrastiveWeight = lambdaCon }
        objective.commitmentWeight = lambdaCommit
        objective.usesAlignment = !noAlignment
        objective.usesCommitment = !noCommitment
        objective.usesContrastive = !noContrastive
        configuration.objective = objective
        configuration.optimizer.weightDecay = weightDecay
        configuration.learningRate = learningRate
        configuration.warmupSteps = warmup
        configuration.epochs = epochs
        configuration.batchSize = batchSize
        configuration.gradientAccumulationSteps = accumulate
        configuration.maximumGradientNorm = maxGradNorm > 0 ? maxGradNorm : nil
        configuration.seed = seed
        configuration.earlyStoppingPatience = patience
        configuration.checkpointEvery = checkpointEvery
        configuration.stopAfterSteps = stopAfterSteps
        return configuration
    }

    /// The library request from the flags.
    var request: AdaptationRequest {
        get throws {
        var request = AdaptationRequest(
            encoder: BundleSource(argument: encoder), surrogate: BundleSource(argument: surrogate),
            training: URL(fileURLWithPath: data), outputDirectory: URL(fileURLWithPath: outputDirectory), configuration: trainerConfiguration)
        request.validation = validation.map { URL(fileURLWithPath: $0) }
        request.validationFraction = validationFraction
        request.generalValidation = generalValidation.map { URL(fileURLWithPath: $0) }
        request.replay = replay.map { URL(fileURLWithPath: $0) }
        request.replayWeight = replayWeight
        request.replayPerBatch = replayPerBatch
        request.method = method
        request.task = task
        request.version = version.flatMap { SemanticVersion($0) }
        request.name = name
        request.registry = try options.resolvedRegistry()
        request.policy = loading.policy
        request.publish = publish
        request.allowWorse = allowWorse
        return request
        }
    }

    func run(in environment: CraftEnvironment) throws {
        loading.applyThreads()
        let display = TrainingDisplay(quiet: options.json || quiet)
        // SIGINT/SIGTERM/SIGHUP set a flag the trainer checks between steps: it checkpoints, then we
        // exit 128 + signal. A second signal ends the process at once (ScratchFiles).
        let interruption = TrainingInterruption()
        ScratchFiles.setInterruptionHandler { interruption.request(signal: $0) }
        var request = try self.request
        request.runtimes = environment.runtimes
        request.interruption = interruption
        let projector = request.method == .projector
        let chart = TrainingChartWriter(
            logFile: request.outputDirectory.appendingPathComponent(EncoderAdaptation.logFileName), title: chartTitle)
        let result: AdaptationResult
        do {
            result = try EncoderAdaptation.run(request) { event in
                // The projector baseline has no checkpoint: stop at the next step.
                if projector, case .projectorTraining = event, let status = interruption.exitStatus {
                    display.finish()
                    chart.draw()
                    FileHandle.standardError.write(Data("error: interrupted by \(TrainingInterruption.name(of: status - 128)); the projector baseline keeps no checkpoint, so running the command again starts over\n".utf8))
                    Foundation.exit(status)
                }
                display.handle(event)
                // Each epoch's end: the picture shows the run so far.
                if case .training(let progress) = event, progress.record.event == "validation" { chart.draw() }
            }
        } catch let error as AdaptationError {
            display.finish()
            chart.draw()
            if error.code == .interrupted {
                FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
                throw ExitCode(interruption.exitStatus ?? ExitStatus.failure.rawValue)
            }
            if let report = error.report {
                Output.line((options.json ? try report.renderJSON() : report.renderText()).trimmingCharacters(in: .newlines))
            }
            throw error
        }
        display.finish()
        ScratchFiles.setInterruptionHandler(nil)  // training is over: signals end the process again
        let chartWritten = chart.draw()
        defer { warnIfBelowBase(result) }
        var report = TrainReport(result)
        report.chart = chartWritten ? chart.destination.path : nil
        if options.json {
            try Output.json(report)
            try failIfBelowBase(result)
            return
        }
        func percent(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }
        var rows: [[String]] = [
            [result.manifest.kind == .backend ? "backend" : "encoder", "\(result.base) -> \(result.manifest.reference)"],
        ]
        if result.manifest.kind == .backend { rows.append(["frozen encoder", result.encoder]) }
        rows += [
            ["surrogate", result.surrogate],
            ["method", result.method.rawValue],
            ["accuracy", "\(percent(result.validationAccuracyBefore)) -> \(percent(result.validationAccuracyAfter)) (validation, \(result.validationExamples) examples)"],
        ]
        if let before = result.generalAccuracyBefore, let after = result.generalAccuracyAfter {
            rows.append(["general accuracy", "\(percent(before)) -> \(percent(after)) (general domain)"])
        }
        rows.append(["steps", "\(result.steps)" + (result.resumedFromStep.map { " (resumed from step \($0))" } ?? "") + (result.stoppedEarly ? " (stopped early)" : "")])
        if result.partial {
            rows.append(["partial", "yes: step \(result.steps) of \(result.plannedSteps ?? result.steps) (--stop-after-steps); run again without it to finish"])
        }
        if let best = result.best, result.shippedBestEpoch {
            rows.append(["weights", "epoch \(best.epoch + 1), step \(best.step) (best validation accuracy \(percent(best.validationAccuracy)))"])
        } else if result.method != .projector {
            rows.append(["weights", "step \(result.steps) (no validated epoch)"])
        }
        rows.append(["training time", String(format: "%.1f s", result.trainingSeconds)])
        rows.append(["L_con", result.contrastive ? "on" : "off"])
        if let frequencies = result.codeFrequencies {
            rows.append(["codes used", "\(frequencies.counts.filter { $0 > 0 }.count) of \(frequencies.entries)"])
        }
        rows.append(["codebook", "\(result.codebookHash) (\(result.codebookHashUnchanged ? "unchanged" : "CHANGED"))"])
        rows.append(["bundle", result.packedBundle.path])
        rows.append(["directory", result.bundleDirectory.path])
        rows.append(["log", result.logFile.path])
        if chartWritten { rows.append(["chart", chart.destination.path]) }
        if let published = result.published { rows.append(["published", "\(published.name)@\(published.record.version) (\(published.outcome.rawValue))"]) }
        Output.line(Output.table(header: ["", ""], rows: rows).split(separator: "\n", omittingEmptySubsequences: false).dropFirst().joined(separator: "\n"))
        try failIfBelowBase(result)
    }

    /// The heading of `training.svg`: the encoder (or, for the projector baseline, the surrogate) and
    /// the method.
    var chartTitle: String {
        func shown(_ argument: String) -> String {
            BundleSource.looksLikePath(argument) ? URL(fileURLWithPath: argument).lastPathComponent : argument
        }
        return "craft train: \(shown(method == .projector ? surrogate : encoder)) (\(method.rawValue))"
    }

    /// On stderr, after the summary: a result below the base, written but (without --allow-worse) not
    /// published.
    func warnIfBelowBase(_ result: AdaptationResult) {
        guard result.belowBase else { return }
        let accuracies = String(format: "%.1f%% is below the base's %.1f%%", result.validationAccuracyAfter * 100, result.validationAccuracyBefore * 100)
        let text = allowWorse
            ? "warning: the validation accuracy of \(result.manifest.reference) \(accuracies) on the same data; accepted with --allow-worse\n"
            : "warning: the validation accuracy of \(result.manifest.reference) \(accuracies) on the same data; \(result.packedBundle.path) was written for inspection only\(publish ? " and not published" : ""); change the data or options, or pass --allow-worse to accept it (exit 1)\n"
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// Exit 1 (after the output) for a result below the base without --allow-worse.
    func failIfBelowBase(_ result: AdaptationResult) throws {
        if result.belowBase && !allowWorse { throw ExitCode(ExitStatus.failure.rawValue) }
    }

    /// `--json` output of `craft train` (snake_case keys, see docs/cli.md).
    struct TrainReport: Encodable {
        var base: String
        var output: String
        var kind: String
        var encoder: String
        var surrogate: String
        var method: String
        var validationAccuracyBefore: Double
        var validationAccuracyAfter: Double
        var generalAccuracyBefore: Double?
        var generalAccuracyAfter: Double?
        var trainingExamples: Int
        var validationExamples: Int
        var steps: Int
        var resumedFromStep: Int?
        var stoppedEarly: Bool
        var trainingSeconds: Double
        var contrastive: Bool
        var codesUsed: Int?
        var codebookHash: String
        var codebookHashUnchanged: Bool
        var bundle: String
        var bundleDirectory: String
        var bundleDigest: String
        var log: String
        /// `training.svg`, when it was written.
        var chart: String?
        var published: Bool
        var partial: Bool
        var plannedSteps: Int?
        var shipped: String
        var shippedEpoch: Int?
        var shippedStep: Int
        var bestValidationAccuracy: Double?
        var belowBase: Bool

        init(_ result: AdaptationResult) {
            base = result.base
            output = result.manifest.reference
            kind = result.manifest.kind.rawValue
            encoder = result.encoder
            surrogate = result.surrogate
            method = result.method.rawValue
            validationAccuracyBefore = result.validationAccuracyBefore
            validationAccuracyAfter = result.validationAccuracyAfter
            generalAccuracyBefore = result.generalAccuracyBefore
            generalAccuracyAfter = result.generalAccuracyAfter
            trainingExamples = result.trainingExamples
            validationExamples = result.validationExamples
            steps = result.steps
            resumedFromStep = result.resumedFromStep
            stoppedEarly = result.stoppedEarly
            trainingSeconds = result.trainingSeconds
            contrastive = result.contrastive
            codesUsed = result.codeFrequencies.map { $0.counts.filter { $0 > 0 }.count }
            codebookHash = result.codebookHash
            codebookHashUnchanged = result.codebookHashUnchanged
            bundle = result.packedBundle.path
            bundleDirectory = result.bundleDirectory.path
            bundleDigest = result.packedDigest
            log = result.logFile.path
            published = result.published != nil
            partial = result.partial
            plannedSteps = result.plannedSteps
            shipped = result.shippedBestEpoch ? "best-validation" : "last-step"
            shippedEpoch = result.shippedBestEpoch ? result.best?.epoch : nil
            shippedStep = result.shippedBestEpoch ? result.best?.step ?? result.steps : result.steps
            bestValidationAccuracy = result.best?.validationAccuracy
            belowBase = result.belowBase
        }
    }
}

/// How `craft train` shows a run on stderr: on a terminal a progress bar with the step, the loss and
/// an ETA; otherwise one line per stage and per epoch, and one at least every 30 s inside an epoch,
/// with steps/s and the time left (for logs and CI). Quiet with `--json` except for notices.
final class TrainingDisplay: @unchecked Sendable {
    private let lock = NSLock()
    private let terminal: Bool
    private let quiet: Bool
    private let clock = ContinuousClock()
    private var started: ContinuousClock.Instant?
    private var firstStep: Int?
    private var lastLoss: Float?
    private var barShown = false
    private var projectorEpoch: Int?
    /// When a log line was last written (off a terminal).
    private var lastLine: ContinuousClock.Instant?

    init(quiet: Bool) {
        self.quiet = quiet
        terminal = isatty(STDERR_FILENO) == 1
    }

    func handle(_ event: AdaptationEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case .notice(let text):
            clearBar()
            write("note: \(text)\n")
        case .stage(let text):
            guard !quiet else { return }
            clearBar()
            write("\(text)…\n")
        case .projectorTraining(let progress):
            guard !quiet else { return }
            // Off a terminal, one line per epoch: when the next epoch starts, and at the last step.
            if !terminal, let previous = projectorEpoch, progress.epoch > previous, let loss = lastLoss {
                write("epoch \(previous + 1)  step \(progress.step - 1)/\(progress.totalSteps)  loss \(String(format: "%.4f", loss))\n")
            }
            projectorEpoch = progress.epoch
            step(progress.step, total: progress.totalSteps, loss: progress.loss)
            if !terminal, progress.step == progress.totalSteps {
                write("epoch \(progress.epoch + 1)  step \(progress.step)/\(progress.totalSteps)  loss \(String(format: "%.4f", progress.loss))\n")
            }
        case .training(let progress):
            guard !quiet else { return }
            let record = progress.record
            if record.event == "step" {
                step(record.step, total: progress.totalSteps, loss: record.loss)
                // Off a terminal, a line at least every 30 s inside long epochs, so a log shows the run is alive.
                if !terminal, let lastLine, clock.now - lastLine >= .seconds(30), record.step < progress.totalSteps {
                    let loss = lastLoss.map { String(format: "%.4f", $0) } ?? "-"
                    write("epoch \(record.epoch + 1)  step \(record.step)/\(progress.totalSteps)  loss \(loss)\(paceText(step: record.step, total: progress.totalSteps))\n")
                    self.lastLine = clock.now
                }
            } else if record.event == "validation" {
                clearBar()
                let accuracy = record.validationAccuracy.map { String(format: "%.1f%%", $0 * 100) } ?? "-"
                let loss = lastLoss.map { String(format: "%.4f", $0) } ?? "-"
                write("epoch \(record.epoch + 1)  step \(record.step)/\(progress.totalSteps)  loss \(loss)  validation accuracy \(accuracy)"
                      + "\(paceText(step: record.step, total: progress.totalSteps))\n")
                lastLine = clock.now
            }
        }
    }

    /// A training step: the loss, the start of the ETA clock, the bar on a terminal.
    private func step(_ step: Int, total: Int, loss: Float?) {
        lastLoss = loss ?? lastLoss
        if started == nil {
            started = clock.now
            lastLine = clock.now
            firstStep = step - 1
        }
        if terminal { drawBar(step: step, total: total) }
    }

    /// Steps per second since the first step seen, and the seconds left at that pace.
    private func pace(step: Int, total: Int) -> (rate: Double, left: Double)? {
        guard let started, let firstStep, step > firstStep else { return nil }
        let rate = Double(step - firstStep) / max((clock.now - started).seconds, 1e-9)
        return (rate, Double(max(total - step, 0)) / rate)
    }

    /// `  2.50 steps/s  about 3m05s left` (nothing left at the end) for log lines.
    private func paceText(step: Int, total: Int) -> String {
        guard let pace = pace(step: step, total: total) else { return "" }
        return String(format: "  %.2f steps/s", pace.rate) + (step < total ? "  about \(Output.duration(pace.left)) left" : "")
    }

    /// Clears the progress bar.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        clearBar()
    }

    private func drawBar(step: Int, total: Int) {
        let width = 24
        let fraction = total > 0 ? min(1, Double(step) / Double(total)) : 0
        let filled = Int(fraction * Double(width))
        let eta = pace(step: step, total: total).map { "  ETA " + Output.duration($0.left) } ?? ""
        let loss = lastLoss.map { String(format: "  loss %.4f", $0) } ?? ""
        write("\r\u{1B}[K[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] step \(step)/\(total)\(loss)\(eta)")
        barShown = true
    }

    private func clearBar() {
        if barShown { write("\r\u{1B}[K") }
        barShown = false
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

}

extension AdaptationMethod: ExpressibleByArgument {}

/// `--task`: which of the paper's default weights of L_con to start from.
extension TrainingTask: ExpressibleByArgument {}
