import CraftAdaptation
import CraftBundles
import CraftCore
import CraftRegistry
import CraftRuntimes
import CraftTraining
import Foundation
import RuntimeTestSupport
import SafeTensors
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Tiny encoder and surrogate bundles (the CraftModels fixture towers) and a tiny PNG dataset.
struct AdaptationFixture {
    let scratch: Scratch
    let encoder: URL
    let surrogate: URL
    let other: URL
    let training: URL
    let validation: URL

    init() throws {
        scratch = try Scratch()
        let values = TinyBundles.codebook()
        try TinyBundles.encoderDirectory(at: scratch.path("enc"), codebook: values)
        try TinyBundles.backendDirectory(at: scratch.path("llm"), codebookHash: try TinyBundles.hash(values))
        try TinyBundles.backendDirectory(at: scratch.path("other"), name: "other-llm", codebookHash: try TinyBundles.hash(TinyBundles.codebook(seed: 2)))
        encoder = try BundleArchive.pack(directory: scratch.path("enc"), to: scratch.path("tiny-vq-1.0.0.craft")).url
        surrogate = try BundleArchive.pack(directory: scratch.path("llm"), to: scratch.path("tiny-llm-1.0.0.craft")).url
        other = try BundleArchive.pack(directory: scratch.path("other"), to: scratch.path("other-llm-1.0.0.craft")).url
        training = try TinyBundles.writeDataset(in: scratch.path("data"), file: "train.jsonl", count: 4)
        validation = try TinyBundles.writeDataset(in: scratch.path("data"), file: "val.jsonl", count: 2, offset: 10)
    }

    /// A short seeded request: 4 examples, batches of 2, `epochs` epochs.
    func request(output: String, epochs: Int = 1) -> AdaptationRequest {
        var configuration = TrainerConfiguration()
        configuration.epochs = epochs
        configuration.batchSize = 2
        configuration.learningRate = 1e-2
        configuration.seed = 3
        configuration.tracksCodeDrift = false
        var request = AdaptationRequest(encoder: encoder, surrogate: surrogate, training: training,
                                        outputDirectory: scratch.path(output), configuration: configuration)
        request.validation = validation
        request.maximumAnswerTokens = 2
        return request
    }

    func remove() { scratch.remove() }
}

@Suite("EncoderAdaptation: bundle in, bundle out")
struct EncoderAdaptationTests {
    @Test("a seeded run writes a verified bundle: same codebook hash, bumped version, provenance, code frequencies, new weights, loadable by the pipeline")
    func adaptsAnEncoderBundle() throws {
        let fixture = try AdaptationFixture()
        defer { fixture.remove() }
        let result = try EncoderAdaptation.run(fixture.request(output: "out"))

        let base = try BundleArchive.verify(fixture.encoder).manifest
        let verified = try BundleArchive.verify(result.packedBundle)
        #expect(result.packedBundle.lastPathComponent == "tiny-vq-1.1.0.craft")
        #expect(verified.manifest.version.description == "1.1.0" && verified.manifest.name == "tiny-vq")
        #expect(verified.manifest.codebook == base.codebook)
        let recomputed = try CodebookVerification.recompute(verified.manifest, in: result.bundleDirectory)
        #expect(recomputed.hash == base.codebook.hash && result.codebookHash == base.codebook.hash && result.codebookHashUnchanged)
        // The directory is the packed bundle, unpacked and verifiable.
        _ = try BundleArchive.open(directory: result.bundleDirectory, verifyFiles: true)

        let provenance = try #require(verified.manifest.provenance)
        #expect(provenance["method"]?.stringValue == "craft")
        #expect(provenance["base"]?.stringValue == "tiny-vq@1.0.0")
        #expect(provenance["surrogate"]?.stringValue == "tiny-llm@1.0.0")
        #expect(provenance["dataset_digest"]?.stringValue?.count == 64)
        #expect(provenance["steps"]?.integerValue == 2 && result.steps == 2)
        #expect(provenance["seed"]?.integerValue == 3)
        #expect(provenance["validation_accuracy_before"]?.doubleValue == result.validationAccuracyBefore)
        #expect(provenance["validation_accuracy_after"]?.doubleValue == result.validationAccuracyAfter)
        #expect(provenance["hyperparameters"]?["batch_size"]?.integerValue == 2)
        #expect(provenance["created_by"]?.stringValue?.hasPrefix("craft train ") == true)
        // The best validated epoch is what ships (one epoch here: it is also the last), recorded with its accuracy.
        #expect(provenance["shipped"]?.stringValue == "best-validation" && provenance["shipped_step"]?.integerValue == 2)
        #expect(provenance["shipped_epoch"]?.integerValue == 0 && provenance["best_step"]?.integerValue == 2)
        #expect(provenance["best_validation_accuracy"]?.doubleValue == result.validationAccuracyAfter)
        #expect(provenance["partial"]?.boolValue == false && provenance["planned_steps"]?.integerValue == 2)
        #expect(provenance["below_base"]?.boolValue == (result.validationAccuracyAfter < result.validationAccuracyBefore))
        #expect(result.shippedBestEpoch && result.best?.step == 2 && !result.partial)

        // Code frequencies over the 4 training images of 16 tokens.
        let unpacked = try BundleArchive.unpack(result.packedBundle, into: fixture.scratch.path("check"))
        let frequencies = try #require(try Pipeline.loadCodeFrequencies(unpacked))
        #expect(frequencies.entries == TinyBundles.entries && frequencies.total == 4 * 16)
        #expect(result.codeFrequencies == frequencies)

        // Same files as the base except the retrained weights and the new frequencies.
        #expect(Set(verified.manifest.files.map(\.path)) == Set(base.files.map(\.path)).union(["code_frequencies.json"]))
        for entry in base.files where entry.path != "model.safetensors" {
            #expect(verified.manifest.file(at: entry.path)?.sha256 == entry.sha256, "\(entry.path) changed")
        }
        #expect(verified.manifest.file(at: "model.safetensors")?.sha256 != base.file(at: "model.safetensors")?.sha256)

        // The adapted encoder pairs with the surrogate and answers through the pipeline (as craft eval does).
        let backend = try BundleArchive.unpack(fixture.surrogate, into: fixture.scratch.path("check-backend"))
        let report = checkCompatibility(encoder: unpacked, backend: backend, runtimes: .craftDefault)
        let pipeline = try Pipeline(pair: try report.requirePairing(), encoder: unpacked, backend: backend)
        let image = try ImageInput.rgbImage(contentsOf: fixture.scratch.path("data/images/0.png"))
        _ = try pipeline.answer(image: image, prompt: "what is this ?", options: GenerationOptions(maximumNewTokens: 2))

        // The log has one record per step and one validation.
        let log = try String(contentsOf: result.logFile, encoding: .utf8).split(separator: "\n")
        #expect(log.filter { $0.contains("\"event\":\"step\"") }.count == 2)
        #expect(log.filter { $0.contains("\"event\":\"validation\"") }.count == 1)
    }

    @Test("a run interrupted after one step and run again resumes and ends with the same weights as an uninterrupted run")
    func resumesAfterInterruption() throws {
        let fixture = try AdaptationFixture()
        defer { fixture.remove() }
        let straight = try EncoderAdaptation.run(fixture.request(output: "straight", epochs: 2))
        #expect(straight.steps == 4 && straight.resumedFromStep == nil)

        var interrupted = fixture.request(output: "resumed", epochs: 2)
        interrupted.configuration.stopAfterSteps = 1
        let partial = try EncoderAdaptation.run(interrupted)
        #expect(partial.steps == 1 && partial.partial && partial.plannedSteps == 4 && !partial.shippedBestEpoch)
        // The step-limited bundle is marked partial, with the step reached and the steps planned.
        let marked = try #require(try BundleArchive.verify(partial.packedBundle).manifest.provenance)
        #expect(marked["partial"]?.boolValue == true && marked["steps"]?.integerValue == 1 && marked["planned_steps"]?.integerValue == 4)
        #expect(marked["shipped"]?.stringValue == "last-step" && marked["shipped_step"]?.integerValue == 1 && marked["shipped_epoch"] == nil)
        let resumed = try EncoderAdaptation.run(fixture.request(output: "resumed", epochs: 2))
        #expect(resumed.resumedFromStep == 1 && resumed.steps == 4 && !resumed.partial)
        #expect(resumed.manifest.provenance?["partial"]?.boolValue == false)
        let weights = { (result: AdaptationResult) in try Data(contentsOf: result.bundleDirectory.appendingPathComponent("model.safetensors")) }
        #expect(try weights(resumed) == weights(straight))
        #expect(try Data(contentsOf: resumed.packedBundle) == Data(contentsOf: straight.packedBundle), "packing is reproducible, so the bundles are identical")
        let steps = try String(contentsOf: resumed.logFile, encoding: .utf8).split(separator: "\n").filter { $0.contains("\"event\":\"step\"") }
        #expect(steps.count == 4)

        // An interruption (what SIGINT does in craft train) checkpoints the exact step and writes no
        // bundle; running again resumes from that step to the same bundle as the straight run.
        let interruption = TrainingInterruption()
        var signalled = fixture.request(output: "signalled", epochs: 2)
        signalled.interruption = interruption
        let error = try #require(throws: AdaptationError.self) {
            try EncoderAdaptation.run(signalled) { event in
                if case .training(let progress) = event, progress.record.event == "step", progress.record.step == 3 {
                    interruption.request(signal: SIGINT)
                }
            }
        }
        #expect(error.code == .interrupted && error.message.contains("SIGINT") && error.message.contains("after step 3"), "\(error.message)")
        let signalledDirectory = fixture.scratch.path("signalled")
        #expect(try FileManager.default.contentsOfDirectory(atPath: signalledDirectory.path).allSatisfy { !$0.hasSuffix(".craft") })
        let afterSignal = try EncoderAdaptation.run(fixture.request(output: "signalled", epochs: 2))
        #expect(afterSignal.resumedFromStep == 3 && afterSignal.steps == 4)
        #expect(try Data(contentsOf: afterSignal.packedBundle) == Data(contentsOf: straight.packedBundle))
        let signalledSteps = try String(contentsOf: afterSignal.logFile, encoding: .utf8).split(separator: "\n")
            .filter { $0.contains("\"event\":\"step\"") }
        #expect(signalledSteps.count == 4)
        // Interrupted before training: nothing trained, nothing written but the run record.
        let early = TrainingInterruption()
        early.request(signal: SIGTERM)
        var before = fixture.request(output: "early")
        before.interruption = early
        let beforeError = try #require(throws: AdaptationError.self) { try EncoderAdaptation.run(before) }
        #expect(beforeError.code == .interrupted && beforeError.message.contains("SIGTERM before training"), "\(beforeError.message)")

        // Resuming the run with other options is refused, not mixed.
        var changed = fixture.request(output: "resumed", epochs: 2)
        changed.configuration.learningRate = 5e-3
        #expect(throws: AdaptationError.self) { try EncoderAdaptation.run(changed) }
    }

    @Test("a surrogate with another codebook is refused with the checker's reason before any training (exit category incompatible)")
    func refusesMismatchedSurrogate() throws {
        let fixture = try AdaptationFixture()
        defer { fixture.remove() }
        var request = fixture.request(output: "out")
        request.surrogate = .file(fixture.other)
        let error = try #require(throws: AdaptationError.self) { try EncoderAdaptation.run(request) }
        #expect(error.code == .incompatible && error.category == .incompatible)
        #expect(error.message.contains("other-llm@1.0.0") && error.message.contains("codebook"), "\(error.message)")
        #expect(error.report?.isCompatible == false)
        #expect(!FileManager.default.fileExists(atPath: fixture.scratch.path("out").path), "nothing was trained or written")
    }

    @Test("a bad JSON line, a missing image and an empty split are refused naming the file and line (usage; a missing image is not found)")
    func refusesBadData() throws {
        let fixture = try AdaptationFixture()
        defer { fixture.remove() }
        let good = try String(contentsOf: fixture.training, encoding: .utf8).split(separator: "\n").map(String.init)

        let badLine = fixture.scratch.path("data/bad.jsonl")
        try Data((good[0] + "\n{\"image\": \"images/1.png\", \"prompt\": \n").utf8).write(to: badLine)
        var request = fixture.request(output: "out")
        request.training = badLine
        var error = try #require(throws: AdaptationError.self) { try EncoderAdaptation.run(request) }
        #expect(error.code == .invalidData && error.category == .usage)
        #expect(error.message.contains("bad.jsonl line 2"), "\(error.message)")

        let missing = fixture.scratch.path("data/missing.jsonl")
        try Data((good[0] + "\n" + good[1] + "\n" + good[2].replacingOccurrences(of: "2.png", with: "nope.png") + "\n").utf8).write(to: missing)
        request.training = missing
        error = try #require(throws: AdaptationError.self) { try EncoderAdaptation.run(request) }
        #expect(error.code == .notFound && error.category == .notFound && error.message.contains("missing.jsonl line 3") && error.message.contains("images/nope.png"), "\(error.message)")

        // One example cannot be split into a training and a validation set.
        let single = fixture.scratch.path("data/single.jsonl")
        try Data((good[0] + "\n").utf8).write(to: single)
        request.training = single
        request.validation = nil
        error = try #require(throws: AdaptationError.self) { try EncoderAdaptation.run(request) }
        #expect(error.code == .invalidData && error.message.contains("single.jsonl") && error.message.contains("empty"), "\(error.message)")
        #expect(!FileManager.default.fileExists(atPath: fixture.scratch.path("out").path))
    }
}

@Suite("CodeStatisticsJob: craft stats")
struct CodeStatisticsJobTests {
    @Test("code frequencies over a dataset go into a new patch version with the base's weights and codebook")
    func writesFrequencies() throws {
        let fixture = try AdaptationFixture()
        defer { fixture.remove() }
        let result = try CodeStatisticsJob.run(CodeStatisticsRequest(encoder: .file(fixture.encoder), data: fixture.training, outputDirectory: fixture.scratch.path("stats")))
        #expect(result.images == 4 && result.tokens == 64)
        #expect(result.frequencies.counts.reduce(0, +) == 64)
        #expect(result.codesUsed == result.frequencies.counts.filter { $0 > 0 }.count && result.codesUsed >= 1)
        #expect(result.perplexity >= 1 && result.perplexity <= Double(result.codesUsed) + 1e-9)
        let top = result.topCodes(3)
        #expect(top.first?.count == result.frequencies.counts.max())

        let base = try BundleArchive.verify(fixture.encoder).manifest
        let verified = try BundleArchive.verify(result.packedBundle)
        #expect(verified.manifest.version.description == "1.0.1" && result.packedBundle.lastPathComponent == "tiny-vq-1.0.1.craft")
        #expect(verified.manifest.codebook == base.codebook)
        #expect(verified.manifest.file(at: "model.safetensors")?.sha256 == base.file(at: "model.safetensors")?.sha256)
        #expect(verified.manifest.provenance?["method"]?.stringValue == "stats")
        let unpacked = try BundleArchive.unpack(result.packedBundle, into: fixture.scratch.path("check"))
        #expect(try Pipeline.loadCodeFrequencies(unpacked) == result.frequencies)

        // The counts equal the codes the runtime's encoder gives image by image.
        let encoder = try SiglipVQRuntime.load(unpacked)
        var counts = Array(repeating: 0, count: TinyBundles.entries)
        for index in 0..<4 {
            let pixels = try encoder.preprocess(try ImageInput.rgbImage(contentsOf: fixture.scratch.path("data/images/\(index).png")))
            for code in try encoder.encode(pixels.unsqueezed(0))[0].codes.scalars { counts[Int(code)] += 1 }
        }
        #expect(counts == result.frequencies.counts)

        // Several questions about one image count the image once.
        let lines = try String(contentsOf: fixture.training, encoding: .utf8).split(separator: "\n")
        let doubled = fixture.scratch.path("data/doubled.jsonl")
        try Data((lines.flatMap { [String($0), String($0).replacingOccurrences(of: "what is this ?", with: "which class ?")] }
            .joined(separator: "\n") + "\n").utf8).write(to: doubled)
        let again = try CodeStatisticsJob.run(CodeStatisticsRequest(encoder: .file(fixture.encoder), data: doubled, outputDirectory: fixture.scratch.path("stats2")))
        #expect(again.images == 4 && again.frequencies == result.frequencies)
    }
}

@Suite("EncoderAdaptation with a text tower")
struct ContrastiveAdaptationTests {
    @Test("an encoder bundle with text/ trains with L_con (logged), keeps its vision_model. tensor names and its text tower")
    func trainsWithContrastiveTerm() throws {
        let fixture = try AdaptationFixture()
        defer { fixture.remove() }
        try TinyBundles.encoderWithTextTowerDirectory(at: fixture.scratch.path("enc-text"))
        let packed = try BundleArchive.pack(directory: fixture.scratch.path("enc-text"), to: fixture.scratch.path("tiny-vq-text-1.0.0.craft"))
        var request = fixture.request(output: "out")
        request.encoder = .file(packed.url)
        let result = try EncoderAdaptation.run(request)
        #expect(result.contrastive)
        #expect(result.manifest.provenance?["hyperparameters"]?["contrastive"]?.boolValue == true)
        let steps = try String(contentsOf: result.logFile, encoding: .utf8).split(separator: "\n").filter { $0.contains("\"event\":\"step\"") }
        #expect(steps.count == 2 && steps.allSatisfy { $0.contains("\"contrastive\":") }, "\(steps)")
        let weights = try SafeTensorsFile(contentsOf: result.bundleDirectory.appendingPathComponent("model.safetensors"))
        #expect(!weights.names.isEmpty && weights.names.allSatisfy { $0.hasPrefix("vision_model.") })
        let base = packed.manifest
        #expect(result.manifest.file(at: "text/model.safetensors")?.sha256 == base.file(at: "text/model.safetensors")?.sha256)
        // The adapted bundle loads with the runtime (every tower tensor found under its name).
        _ = try SiglipVQRuntime.load(try BundleArchive.open(directory: result.bundleDirectory))
        #expect(result.codebookHash == base.codebook.hash)
    }
}

@Suite("EncoderAdaptation: baselines, replay and retention")
struct AdaptationOptionsTests {
    @Test("--method continuous writes config.bypass_quantizer true (the runtime then feeds z_e), no L_commit, same codebook")
    func continuousBaseline() throws {
        let fixture = try AdaptationFixture()
        defer { fixture.remove() }
        var request = fixture.request(output: "out")
        request.method = .continuous
        let result = try EncoderAdaptation.run(request)
        #expect(result.method == .continuous)
        #expect(result.manifest.config?["bypass_quantizer"]?.boolValue == true)
        let provenance = try #require(result.manifest.provenance)
        #expect(provenance["method"]?.stringValue == "continuous")
        #expect(provenance["hyperparameters"]?["mode"]?.stringValue == "continuous")
        #expect(provenance["hyperparameters"]?["commitment"]?.boolValue == false)
        let steps = try String(contentsOf: result.logFile, encoding: .utf8).split(separator: "\n").filter { $0.contains("\"event\":\"step\"") }
        #expect(steps.count == 2 && steps.allSatisfy { !$0.contains("\"commitment\":") }, "\(steps)")
        let encoder = try SiglipVQRuntime.load(try BundleArchive.open(directory: result.bundleDirectory))
        #expect(encoder.bypassesQuantizer)
        #expect(result.codebookHash == (try BundleArchive.verify(fixture.encoder)).manifest.codebook.hash)
    }

    @Test("--method projector keeps the encoder frozen and writes a new backend bundle: same decoder, new projector, same codebook, pairs with the base encoder")
    func projectorBaseline() throws {
        let fixture = try AdaptationFixture()
        defer { fixture.remove() }
        var request = fixture.request(output: "out")
        request.method = .projector
        request.summary = "tiny-llm with its projector tuned on the domain"
        request.domains = ["tiny", "domain"]
        let result = try EncoderAdaptation.run(request)
        let base = try BundleArchive.verify(fixture.surrogate).manifest
        let verified = try BundleArchive.verify(result.packedBundle)
        #expect(verified.manifest.summary == "tiny-llm with its projector tuned on the domain" && verified.manifest.domains == ["tiny", "domain"])
        #expect(result.method == .projector && result.packedBundle.lastPathComponent == "tiny-llm-1.1.0.craft")
        #expect(verified.manifest.kind == .backend && verified.manifest.codebook == base.codebook)
        #expect(verified.manifest.file(at: "model.safetensors")?.sha256 == base.file(at: "model.safetensors")?.sha256)
        #expect(verified.manifest.file(at: "projector.safetensors")?.sha256 != base.file(at: "projector.safetensors")?.sha256)
        let provenance = try #require(verified.manifest.provenance)
        #expect(provenance["method"]?.stringValue == "projector" && provenance["encoder"]?.stringValue == "tiny-vq@1.0.0")
        #expect(provenance["base"]?.stringValue == "tiny-llm@1.0.0" && provenance["steps"]?.integerValue == 2)
        let steps = try String(contentsOf: result.logFile, encoding: .utf8).split(separator: "\n").filter { $0.contains("\"event\":\"step\"") }
        #expect(steps.count == 2)

        // The base encoder and the tuned backend pair and answer (as craft eval runs them).
        let encoder = try BundleArchive.unpack(fixture.encoder, into: fixture.scratch.path("check-encoder"))
        let backend = try BundleArchive.unpack(result.packedBundle, into: fixture.scratch.path("check-backend"))
        let pipeline = try Pipeline(pair: try checkCompatibility(encoder: encoder, backend: backend, runtimes: .craftDefault).requirePairing(),
                                    encoder: encoder, backend: backend)
        _ = try pipeline.answer(image: try ImageInput.rgbImage(contentsOf: fixture.scratch.path("data/images/0.png")), prompt: "what is this ?",
                                options: GenerationOptions(maximumNewTokens: 2))
        var replay = fixture.request(output: "replay")
        replay.method = .projector
        replay.replay = fixture.validation
        #expect(throws: AdaptationError.self) { try EncoderAdaptation.run(replay) }
    }

    @Test("replay examples are mixed in (replay loss logged, provenance records them); a general-domain set is scored before and after")
    func replayAndRetention() throws {
        let fixture = try AdaptationFixture()
        defer { fixture.remove() }
        let general = try TinyBundles.writeDataset(in: fixture.scratch.path("data"), file: "general.jsonl", count: 2, offset: 20)
        let replay = try TinyBundles.writeDataset(in: fixture.scratch.path("data"), file: "replay.jsonl", count: 3, offset: 30)
        var request = fixture.request(output: "out")
        request.generalValidation = general
        request.replay = replay
        request.replayWeight = 0.5
        request.replayPerBatch = 1
        let result = try EncoderAdaptation.run(request)
        #expect(result.generalAccuracyBefore != nil && result.generalAccuracyAfter != nil)
        let provenance = try #require(result.manifest.provenance)
        #expect(provenance["general_accuracy_before"]?.doubleValue == result.generalAccuracyBefore)
        #expect(provenance["general_accuracy_after"]?.doubleValue == result.generalAccuracyAfter)
        #expect(provenance["replay"]?["examples"]?.integerValue == 3)
        #expect(provenance["replay"]?["weight"]?.doubleValue == 0.5 && provenance["replay"]?["per_batch"]?.integerValue == 1)
        #expect(provenance["replay"]?["dataset_digest"]?.stringValue?.count == 64)
        let steps = try String(contentsOf: result.logFile, encoding: .utf8).split(separator: "\n").filter { $0.contains("\"event\":\"step\"") }
        #expect(steps.count == 2 && steps.allSatisfy { $0.contains("\"replay_loss\":") }, "\(steps)")
    }
}

@Suite("EncoderAdaptation and CodeStatisticsJob with a registry")
struct AdaptationRegistryTests {
    @Test("bundles named by registry references are resolved and verified; publish puts the new versions into the registry")
    func resolvesAndPublishes() throws {
        let fixture = try AdaptationFixture()
        defer { fixture.remove() }
        let registry = Registry(root: fixture.scratch.path("registry"))
        try registry.publish(fixture.encoder)
        try registry.publish(fixture.surrogate)
        #expect(BundleSource(argument: "tiny-vq@^1.0") == .registry("tiny-vq@^1.0"))
        #expect(BundleSource(argument: fixture.encoder.path) == .file(fixture.encoder))

        var request = fixture.request(output: "out")
        request.encoder = .registry("tiny-vq")
        request.surrogate = .registry("tiny-llm@^1.0")
        request.registry = registry
        request.publish = true
        request.name = "tiny-vq-domain"
        request.summary = "tiny-vq adapted to the domain"
        request.domains = ["domain"]
        let result = try EncoderAdaptation.run(request)
        let baseManifest = try BundleArchive.verify(fixture.encoder).manifest
        #expect(result.manifest.summary == "tiny-vq adapted to the domain" && result.manifest.domains == ["domain"])
        #expect(baseManifest.summary != result.manifest.summary)
        #expect(result.published?.outcome == .published)
        let resolved = try registry.resolve(BundleReference(parsing: "tiny-vq-domain"))
        #expect(resolved.record.version == "1.1.0" && resolved.record.digest == result.packedDigest)
        #expect(result.manifest.provenance?["base_digest"]?.stringValue == (try BundleArchive.digest(of: fixture.encoder)))

        var stats = CodeStatisticsRequest(encoder: .registry("tiny-vq-domain@1.1.0"), data: fixture.validation, outputDirectory: fixture.scratch.path("stats"))
        stats.registry = registry
        stats.publish = true
        let counted = try CodeStatisticsJob.run(stats)
        #expect(counted.manifest.reference == "tiny-vq-domain@1.1.1" && counted.images == 2)
        #expect(counted.manifest.provenance?["previous"]?["method"]?.stringValue == "craft")
        #expect(try registry.resolve(BundleReference(parsing: "tiny-vq-domain")).record.version == "1.1.1")

        // A reference without a registry is a usage error, not a crash.
        var missing = fixture.request(output: "none")
        missing.encoder = .registry("tiny-vq")
        let error = try #require(throws: RegistryError.self) { try EncoderAdaptation.run(missing) }
        #expect(error.category == .usage && error.message.contains("--registry"), "\(error.message)")
    }
}
