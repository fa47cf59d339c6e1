import CraftBundles
import Foundation
import RuntimeTestSupport
import Testing

@testable import CraftCLI

/// Packed tiny bundles and a tiny PNG dataset for the `craft train` and `craft stats` executables.
struct TrainCLIFixture {
    let scratch: Scratch
    let encoder: String
    let surrogate: String
    let other: String
    let training: URL
    let validation: URL
    let registry: [String]

    init() throws {
        scratch = try Scratch()
        let pair = try TinyBundles.packedPair(in: scratch)
        encoder = pair.encoder
        surrogate = pair.backend
        other = pair.other
        training = try TinyBundles.writeDataset(in: scratch.path("data"), file: "train.jsonl", count: 4)
        validation = try TinyBundles.writeDataset(in: scratch.path("data"), file: "val.jsonl", count: 2, offset: 10)
        registry = ["--registry", scratch.path("registry").path]
    }

    /// `craft train` on the tiny pair with short seeded options.
    func trainArguments(output: String, extra: [String] = []) -> [String] {
        ["train", "--encoder", encoder, "--surrogate", surrogate, "--data", training.path, "--validation", validation.path,
         "--batch-size", "2", "--learning-rate", "1e-2", "--seed", "3", "--output-directory", scratch.path(output).path] + registry + extra
    }

    func json(_ result: ExecutionResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any], "\(result.standardOutput)")
    }
}

@Suite("craft train")
struct TrainCommandTests {
    @Test("--method and --task are closed choices: a wrong value is exit 64 listing the valid ones")
    func methodAndTaskAreChoices() throws {
        let base = ["train", "--encoder", "a.craft", "--surrogate", "b.craft", "--data", "d.jsonl", "--output-directory", "out"]
        let method = try runCraft(base + ["--method", "bogus"])
        #expect(method.status == 64 && method.standardError.contains("'craft', 'continuous' or 'projector'"), "\(method.standardError)")
        let task = try runCraft(base + ["--task", "captioning"])
        #expect(task.status == 64 && task.standardError.contains("'classification' and 'vqa'"), "\(task.standardError)")
    }

    @Test("craft train --json writes a bundle that craft eval scores with the surrogate; stable keys")
    func trainsAndEvaluates() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        let result = try runCraft(fixture.trainArguments(output: "out", extra: ["--json"]))
        #expect(result.status == 0, "\(result.standardError)")
        let object = try fixture.json(result)
        for key in ["base", "output", "kind", "encoder", "surrogate", "method", "validation_accuracy_before", "validation_accuracy_after", "steps",
                    "training_seconds", "codebook_hash", "codebook_hash_unchanged", "bundle", "bundle_directory", "bundle_digest", "log",
                    "training_examples", "validation_examples", "contrastive", "published", "stopped_early",
                    "partial", "planned_steps", "shipped", "shipped_epoch", "shipped_step", "best_validation_accuracy", "below_base"] {
            #expect(object[key] != nil, "missing \(key) in \(result.standardOutput)")
        }
        #expect(object["encoder"] as? String == "tiny-vq@1.1.0" && object["output"] as? String == "tiny-vq@1.1.0" && object["base"] as? String == "tiny-vq@1.0.0")
        #expect(object["codebook_hash_unchanged"] as? Bool == true && object["steps"] as? Int == 2)
        #expect(result.standardError.contains("L_con is off"), "the encoder has no text tower: \(result.standardError)")
        let bundle = try #require(object["bundle"] as? String)
        #expect(bundle.hasSuffix("tiny-vq-1.1.0.craft"))

        let evaluation = try runCraft(["eval", "--encoder", bundle, "--backend", fixture.surrogate, "--data", fixture.validation.path,
                                       "--max-tokens", "2", "--json"] + fixture.registry)
        #expect(evaluation.status == 0, "\(evaluation.standardError)")
        #expect(try fixture.json(evaluation)["total"] as? Int == 2)

        // One answer rule: the accuracy training reports on its validation set (and chose the shipped
        // epoch by) is what craft eval gives the shipped bundle on the same data, same answer length.
        let sameLength = try runCraft(["eval", "--encoder", bundle, "--backend", fixture.surrogate, "--data", fixture.validation.path,
                                       "--max-tokens", "16", "--json"] + fixture.registry)
        #expect(sameLength.status == 0, "\(sameLength.standardError)")
        let evalAccuracy = try #require(try fixture.json(sameLength)["accuracy"] as? Double)
        #expect(object["validation_accuracy_after"] as? Double == evalAccuracy, "\(result.standardOutput) vs \(sameLength.standardOutput)")
        #expect(object["best_validation_accuracy"] as? Double == evalAccuracy, "\(result.standardOutput)")
    }

    @Test("--method continuous with --replay and --general-validation: the flags reach the run and craft eval scores the bundle")
    func continuousWithReplay() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        let general = try TinyBundles.writeDataset(in: fixture.scratch.path("data"), file: "general.jsonl", count: 2, offset: 20)
        let result = try runCraft(fixture.trainArguments(output: "out", extra: [
            "--method", "continuous", "--replay", general.path, "--replay-weight", "0.5", "--replay-per-batch", "1",
            "--general-validation", general.path, "--version", "2.0.0", "--name", "tiny-vq-cont", "--json"]))
        #expect(result.status == 0, "\(result.standardError)")
        let object = try fixture.json(result)
        #expect(object["method"] as? String == "continuous" && object["encoder"] as? String == "tiny-vq-cont@2.0.0")
        #expect(object["general_accuracy_before"] is Double && object["general_accuracy_after"] is Double)
        let bundle = try #require(object["bundle"] as? String)
        let manifest = try BundleArchive.verify(URL(fileURLWithPath: bundle)).manifest
        #expect(manifest.config?["bypass_quantizer"]?.boolValue == true)
        #expect(manifest.provenance?["replay"]?["per_batch"]?.integerValue == 1)
        let evaluation = try runCraft(["eval", "--encoder", bundle, "--backend", fixture.surrogate, "--data", fixture.validation.path,
                                       "--max-tokens", "2", "--json"] + fixture.registry)
        #expect(evaluation.status == 0, "\(evaluation.standardError)")
    }

    @Test("--method projector writes a backend bundle that craft eval scores with the base encoder")
    func projectorBaseline() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        let result = try runCraft(fixture.trainArguments(output: "out", extra: ["--method", "projector", "--json"]))
        #expect(result.status == 0, "\(result.standardError)")
        let object = try fixture.json(result)
        #expect(object["method"] as? String == "projector" && object["output"] as? String == "tiny-llm@1.1.0")
        #expect(object["kind"] as? String == "backend" && object["encoder"] as? String == "tiny-vq@1.0.0")
        let bundle = try #require(object["bundle"] as? String)
        let evaluation = try runCraft(["eval", "--encoder", fixture.encoder, "--backend", bundle, "--data", fixture.validation.path,
                                       "--max-tokens", "2", "--json"] + fixture.registry)
        #expect(evaluation.status == 0, "\(evaluation.standardError)")
    }

    @Test("an interrupted craft train (--stop-after-steps) resumes when run again; the text summary is aligned")
    func resumes() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        let first = try runCraft(fixture.trainArguments(output: "out", extra: ["--epochs", "2", "--stop-after-steps", "1", "--json"]))
        #expect(first.status == 0, "\(first.standardError)")
        let partial = try fixture.json(first)
        #expect(partial["steps"] as? Int == 1 && partial["partial"] as? Bool == true && partial["planned_steps"] as? Int == 4)
        #expect(partial["shipped"] as? String == "last-step")
        let bundle = try #require(partial["bundle"] as? String)
        #expect(try BundleArchive.verify(URL(fileURLWithPath: bundle)).manifest.provenance?["partial"]?.boolValue == true)
        // craft-registry publish refuses a partial bundle (exit 64) unless --force.
        let registry = fixture.scratch.path("partial-registry").path
        let refused = try RegistryTool.run(["--registry", registry, "publish", bundle], in: fixture.scratch.url)
        #expect(refused.status == 64 && refused.stderr.contains("partial training run") && refused.stderr.contains("--force"), "\(refused.stderr)")
        let forced = try RegistryTool.run(["--registry", registry, "publish", bundle, "--force"], in: fixture.scratch.url)
        #expect(forced.status == 0, "\(forced.stderr)")
        let second = try runCraft(fixture.trainArguments(output: "out", extra: ["--epochs", "2"]))
        #expect(second.status == 0, "\(second.standardError)")
        #expect(second.standardOutput.contains("4 (resumed from step 1)"), "\(second.standardOutput)")
        #expect(second.standardOutput.contains("tiny-vq@1.0.0 -> tiny-vq@1.1.0"))
        #expect(second.standardOutput.contains("(unchanged)"))
        #expect(second.standardError.contains("epoch 2"), "one line per epoch off a terminal: \(second.standardError)")
        let epochLines = second.standardError.split(separator: "\n").filter { $0.hasPrefix("epoch ") && $0.contains("validation accuracy") }
        #expect(!epochLines.isEmpty && epochLines.allSatisfy { $0.contains(" steps/s") }, "the pace in each epoch line: \(second.standardError)")
        #expect(epochLines.first?.contains(" left") == true && epochLines.last?.contains(" left") == false, "\(second.standardError)")
        // --quiet: no progress lines (the run has nothing left to train, so it only reports).
        let quiet = try runCraft(fixture.trainArguments(output: "out", extra: ["--epochs", "2", "--quiet"]))
        #expect(quiet.status == 0, "\(quiet.standardError)")
        let progressLines = quiet.standardError.split(separator: "\n").filter { $0.hasPrefix("epoch ") || $0.hasSuffix("…") }
        #expect(progressLines.isEmpty && quiet.standardError.contains("note: "), "notes stay, progress goes: \(quiet.standardError)")
        #expect(!second.standardOutput.contains("partial"), "\(second.standardOutput)")
        #expect(second.standardOutput.contains("(best validation accuracy"), "\(second.standardOutput)")
        #expect(try BundleArchive.verify(URL(fileURLWithPath: bundle)).manifest.provenance?["partial"]?.boolValue == false)
    }

    @Test("SIGINT during craft train checkpoints the step reached and exits 130; running it again resumes from there")
    func interruptedTrainingCheckpointsAndResumes() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        let output = fixture.scratch.path("out")
        let log = output.appendingPathComponent("train-log.jsonl")
        let executable = try #require(RegistryTool.builtExecutable(named: "craft", override: "CRAFT_EXECUTABLE"))
        let process = Process()
        process.executableURL = executable
        process.arguments = fixture.trainArguments(output: "out", extra: ["--epochs", "5000", "--checkpoint-every", "100000"])
        process.currentDirectoryURL = RegistryTool.packageRoot
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        // Interrupt once a few steps are logged, mid-run (5000 epochs of 2 steps): the trainer takes
        // the signal between steps, checkpoints and exits 128 + SIGINT instead of dying of it.
        let deadline = Date().addingTimeInterval(180)
        var logged = 0
        while logged < 3, process.isRunning, Date() < deadline {
            logged = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").count
            if logged < 3 { usleep(20_000) }
        }
        #expect(process.isRunning, "craft train ended before it was interrupted")
        process.interrupt()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 130, "\(process.terminationReason) \(process.terminationStatus): \(stderr)")
        #expect(stderr.contains("SIGINT"), "\(stderr)")
        #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent(".craft-train/checkpoint").path))
        // The interrupted run has its picture: every step the log holds.
        let steps = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").filter { $0.contains("\"event\":\"step\"") }.count
        let picture = try ParsedSVG(Data(contentsOf: output.appendingPathComponent("training.svg")))
        #expect(picture.series["total loss"] == steps, "\(picture.series) vs \(steps) steps logged")
        let resumed = try runCraft(fixture.trainArguments(output: "out", extra: ["--epochs", "5000", "--stop-after-steps", "1"]))
        #expect(resumed.status == 0, "\(resumed.standardError)")
        #expect(resumed.standardOutput.contains("(resumed from step"), "\(resumed.standardOutput)")
    }

    @Test("a result below the base's validation accuracy is written but not published, warns and exits 1; --allow-worse publishes it and exits 0")
    func belowBaseExits1() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        // Validation answers are the base's own answers on the training images (base accuracy 100%);
        // a large learning rate without clipping changes them.
        let evaluation = try runCraft(["eval", "--encoder", fixture.encoder, "--backend", fixture.surrogate, "--data", fixture.training.path,
                                       "--max-tokens", "16", "--json"] + fixture.registry)
        #expect(evaluation.status == 0, "\(evaluation.standardError)")
        let items = try #require(try fixture.json(evaluation)["items"] as? [[String: Any]])
        let lines = try items.map { item -> String in
            let line: [String: Any] = ["image": try #require(item["image"] as? String), "prompt": try #require(item["prompt"] as? String),
                                       "answer": try #require(item["answer"] as? String)]
            return String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self)
        }
        let own = fixture.scratch.path("data/own.jsonl")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: own)
        func arguments(_ output: String, _ extra: [String]) -> [String] {
            var arguments = fixture.trainArguments(output: output, extra: ["--learning-rate", "1", "--max-grad-norm", "0", "--epochs", "2",
                                                                           "--publish", "--json"] + extra)
            arguments[arguments.firstIndex(of: fixture.validation.path)!] = own.path
            return arguments
        }
        let refused = try runCraft(arguments("worse", []))
        #expect(refused.status == 1, "\(refused.standardError)")
        let object = try fixture.json(refused)
        #expect(object["validation_accuracy_before"] as? Double == 1.0, "\(refused.standardOutput)")
        #expect(object["below_base"] as? Bool == true && object["published"] as? Bool == false)
        #expect(refused.standardError.contains("warning:") && refused.standardError.contains("for inspection only and not published")
                && refused.standardError.contains("--allow-worse"), "\(refused.standardError)")
        let bundle = try #require(object["bundle"] as? String)
        #expect(try BundleArchive.verify(URL(fileURLWithPath: bundle)).manifest.provenance?["below_base"]?.boolValue == true, "written for inspection")

        let accepted = try runCraft(arguments("accepted", ["--allow-worse"]))
        #expect(accepted.status == 0, "\(accepted.standardError)")
        let acceptedObject = try fixture.json(accepted)
        #expect(acceptedObject["below_base"] as? Bool == true && acceptedObject["published"] as? Bool == true)
        #expect(accepted.standardError.contains("accepted with --allow-worse"), "\(accepted.standardError)")
    }

    @Test("a surrogate with another codebook exits 3 with the checker's report before training")
    func mismatchedSurrogateExits3() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        var arguments = fixture.trainArguments(output: "out")
        arguments[arguments.firstIndex(of: fixture.surrogate)!] = fixture.other
        let result = try runCraft(arguments)
        #expect(result.status == 3, "\(result.standardError)")
        #expect(result.standardError.contains("cannot be paired"), "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: fixture.scratch.path("out").path))
    }

    @Test("a bad dataset line exits 64 naming the file and line; a bad option exits 64; a missing dataset exits 2")
    func badInputExits64() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        let bad = fixture.scratch.path("data/bad.jsonl")
        try Data("{\"image\": \"images/0.png\", \"prompt\": \"what is this ?\", \"answer\": \"w20\"}\nnot json\n".utf8).write(to: bad)
        var arguments = fixture.trainArguments(output: "out")
        arguments[arguments.firstIndex(of: fixture.training.path)!] = bad.path
        let result = try runCraft(arguments)
        #expect(result.status == 64, "\(result.standardError)")
        #expect(result.standardError.contains("bad.jsonl line 2"), "\(result.standardError)")

        let option = try runCraft(fixture.trainArguments(output: "out", extra: ["--epochs", "0"]))
        #expect(option.status == 64 && option.standardError.contains("--epochs"), "\(option.standardError)")
        let method = try runCraft(fixture.trainArguments(output: "out", extra: ["--method", "magic"]))
        #expect(method.status == 64, "\(method.standardError)")

        arguments[arguments.firstIndex(of: bad.path)!] = fixture.scratch.path("data/none.jsonl").path
        let missing = try runCraft(arguments)
        #expect(missing.status == 2, "\(missing.standardError)")
    }

    @Test("craft train --help explains every option with an example")
    func helpListsEveryOption() throws {
        let result = try runCraft(["train", "--help"])
        #expect(result.status == 0)
        for option in ["--encoder", "--surrogate", "--data", "--validation", "--validation-fraction", "--general-validation", "--replay",
                       "--replay-weight", "--replay-per-batch", "--method", "--task", "--lambda-con", "--lambda-commit", "--no-alignment",
                       "--no-commitment", "--no-contrastive", "--epochs", "--batch-size", "--accumulate", "--learning-rate", "--warmup",
                       "--weight-decay", "--max-grad-norm", "--seed", "--patience", "--checkpoint-every", "--output-directory", "--version", "--name",
                       "--publish", "--registry", "--json", "--threads", "--allow-worse", "--stop-after-steps", "--require-signature", "--include-prerelease"] {
            #expect(result.standardOutput.contains(option), "--help lacks \(option)")
        }
        #expect(result.standardOutput.components(separatedBy: "Example:").count > 30)
        #expect(result.standardOutput.contains("Exit status") && result.standardOutput.contains("1 the result is below the base"), "\(result.standardOutput)")
    }
}

@Suite("craft stats")
struct StatsCommandTests {
    @Test("craft stats writes a new bundle version with code frequencies; --json keys; text summary")
    func writesStatistics() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        let output = fixture.scratch.path("stats").path
        let result = try runCraft(["stats", "--encoder", fixture.encoder, "--data", fixture.training.path, "--output-directory", output, "--json"] + fixture.registry)
        #expect(result.status == 0, "\(result.standardError)")
        let object = try fixture.json(result)
        #expect(object["images"] as? Int == 4 && object["tokens"] as? Int == 64 && object["entries"] as? Int == 16)
        #expect(object["encoder"] as? String == "tiny-vq@1.0.1")
        #expect((object["top_codes"] as? [[String: Any]])?.isEmpty == false)
        for key in ["codes_used", "perplexity", "bundle", "bundle_directory", "bundle_digest", "base"] { #expect(object[key] != nil, "missing \(key)") }
        let bundle = try #require(object["bundle"] as? String)
        #expect(try BundleArchive.verify(URL(fileURLWithPath: bundle)).manifest.file(at: "code_frequencies.json") != nil)

        let text = try runCraft(["stats", "--encoder", fixture.encoder, "--data", fixture.training.path, "--output-directory", output, "--version", "1.0.7"] + fixture.registry)
        #expect(text.status == 0, "\(text.standardError)")
        #expect(text.standardOutput.contains("perplexity") && text.standardOutput.contains("tiny-vq@1.0.7"), "\(text.standardOutput)")

        let bad = fixture.scratch.path("data/bad.jsonl")
        try Data("{\"image\": \"images/9.png\", \"prompt\": \"p\", \"answer\": \"a\"}\n".utf8).write(to: bad)
        let missingImage = try runCraft(["stats", "--encoder", fixture.encoder, "--data", bad.path, "--output-directory", output] + fixture.registry)
        // A missing file is exit 2 in every command (docs/cli.md, exit codes), an image a dataset names too.
        #expect(missingImage.status == 2 && missingImage.standardError.contains("bad.jsonl line 1"), "\(missingImage.standardError)")
    }
}
