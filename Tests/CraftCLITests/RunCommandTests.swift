import ArgumentParser
import CraftBundles
import CraftCore
import CraftRegistry
import CraftRuntimes
import Foundation
import RuntimeTestSupport
import Testing

@testable import CraftCLI

@Suite("craft run and craft tokens")
struct RunCommandTests {
    func makeInputs(_ scratch: Scratch) throws -> (encoder: String, backend: String, other: String, image: String) {
        try TinyBundles.packedPair(in: scratch, imagePath: "image.png")
    }

    @Test("craft run answers for a compatible pair (exit 0), text and JSON agree")
    func runCompatiblePair() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try makeInputs(scratch)
        let registry = ["--registry", scratch.path("no-registry").path]
        let base = ["run", "--encoder", inputs.encoder, "--backend", inputs.backend, "--image", inputs.image,
                    "--prompt", "what is this ?", "--max-tokens", "4"] + registry
        let json = try runCraft(base + ["--json"])
        #expect(json.status == 0, "\(json.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        #expect(object["encoder"] as? String == "tiny-vq@1.0.0")
        #expect(object["backend"] as? String == "tiny-llm@1.0.0")
        #expect(object["visual_tokens"] as? Int == 16)
        let tokens = try #require(object["tokens"] as? [Int])
        #expect(tokens.count <= 4)
        let text = try runCraft(base)
        #expect(text.status == 0, "\(text.standardError)")
        #expect(text.standardOutput == (object["answer"] as? String ?? "<none>") + "\n")
    }

    @Test("craft run resolves registry REFs (NAME and NAME@RANGE) and gives the same answer as the files")
    func runRegistryReferences() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try makeInputs(scratch)
        let registry = Registry(root: scratch.path("registry"))
        try registry.publish(URL(fileURLWithPath: inputs.encoder))
        try registry.publish(URL(fileURLWithPath: inputs.backend))
        let common = ["--image", inputs.image, "--prompt", "what is this ?", "--max-tokens", "5", "--json"]
        let byReference = try runCraft(["run", "--encoder", "tiny-vq", "--backend", "tiny-llm@^1.0",
                                        "--registry", registry.root.path] + common)
        #expect(byReference.status == 0, "\(byReference.standardError)")
        let byFile = try runCraft(["run", "--encoder", inputs.encoder, "--backend", inputs.backend,
                                   "--registry", scratch.path("no-registry").path] + common)
        #expect(byFile.status == 0, "\(byFile.standardError)")
        // The same report but for the measured latency.
        var object = try #require(try JSONSerialization.jsonObject(with: Data(byFile.standardOutput.utf8)) as? [String: Any])
        var other = try #require(try JSONSerialization.jsonObject(with: Data(byReference.standardOutput.utf8)) as? [String: Any])
        #expect(object.removeValue(forKey: "latency_ms") is Double && other.removeValue(forKey: "latency_ms") is Double)
        #expect(NSDictionary(dictionary: object).isEqual(to: other), "\(byReference.standardOutput) vs \(byFile.standardOutput)")
        #expect((object["tokens"] as? [Int])?.isEmpty == false, "\(byFile.standardOutput)")
        let unknown = try runCraft(["run", "--encoder", "no-such-encoder", "--backend", "tiny-llm",
                                    "--registry", registry.root.path] + common)
        #expect(unknown.status == 2, "\(unknown.standardError)")
    }

    @Test("craft run, craft tokens and craft-registry pair accept unpacked bundle directories like files")
    func bundleDirectoriesAreAcceptedEverywhere() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try makeInputs(scratch)
        let encoderDirectory = try BundleArchive.unpack(URL(fileURLWithPath: inputs.encoder), into: scratch.path("encoder-dir")).directory
        let backendDirectory = try BundleArchive.unpack(URL(fileURLWithPath: inputs.backend), into: scratch.path("backend-dir")).directory
        let registry = ["--registry", scratch.path("no-registry").path]
        let common = ["--image", inputs.image, "--prompt", "what is this ?", "--max-tokens", "5", "--json"] + registry
        let byDirectory = try runCraft(["run", "--encoder", encoderDirectory.path, "--backend", backendDirectory.path] + common)
        #expect(byDirectory.status == 0, "\(byDirectory.standardError)")
        let byFile = try runCraft(["run", "--encoder", inputs.encoder, "--backend", inputs.backend] + common)
        #expect(byFile.status == 0, "\(byFile.standardError)")
        var object = try #require(try JSONSerialization.jsonObject(with: Data(byFile.standardOutput.utf8)) as? [String: Any])
        var other = try #require(try JSONSerialization.jsonObject(with: Data(byDirectory.standardOutput.utf8)) as? [String: Any])
        #expect(object.removeValue(forKey: "latency_ms") is Double && other.removeValue(forKey: "latency_ms") is Double)
        #expect(NSDictionary(dictionary: object).isEqual(to: other), "\(byDirectory.standardOutput) vs \(byFile.standardOutput)")

        let tokens = try runCraft(["tokens", "--encoder", encoderDirectory.path, "--image", inputs.image, "--json"] + registry)
        #expect(tokens.status == 0, "\(tokens.standardError)")
        let pair = try RegistryTool.run(["pair", encoderDirectory.path, backendDirectory.path] + registry, in: scratch.url)
        #expect(pair.status == 0, "\(pair.stderr)")

        // A directory is verified as a file is: a changed weight file is an integrity failure (exit 4),
        // never run; a directory without craft.json is not found (exit 2).
        let weights = try #require(try FileManager.default.contentsOfDirectory(atPath: encoderDirectory.path).first { $0.hasSuffix(".safetensors") })
        let handle = try FileHandle(forWritingTo: encoderDirectory.appendingPathComponent(weights))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0]))
        try handle.close()
        let tampered = try runCraft(["run", "--encoder", encoderDirectory.path, "--backend", backendDirectory.path] + common)
        #expect(tampered.status == 4, "\(tampered.standardError)")
        #expect(tampered.standardOutput.isEmpty)
        try FileManager.default.createDirectory(at: scratch.path("empty-dir"), withIntermediateDirectories: true)
        let empty = try runCraft(["run", "--encoder", scratch.path("empty-dir").path, "--backend", backendDirectory.path] + common)
        #expect(empty.status == 2, "\(empty.standardError)")
        #expect(empty.standardError.contains("holds no craft.json"), "\(empty.standardError)")
    }

    /// examples/bundles' digits-vq table-encoder and digits-answers table-backend, packed into `scratch`.
    static func packedTableBundles(_ scratch: Scratch) throws -> (encoder: PackedBundle, backend: PackedBundle) {
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/bundles")
        return (try BundleArchive.pack(directory: examples.appendingPathComponent("digits-vq"), to: scratch.path("digits-vq.craft")),
                try BundleArchive.pack(directory: examples.appendingPathComponent("digits-answers"), to: scratch.path("digits-answers.craft")))
    }

    @Test("craft run --keep-position-ids: the llama runtime keeps the pruned tokens' ids (same FLOPs); a table-backend refuses it (exit 64)")
    func runKeepingPositionIDs() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try makeInputs(scratch)
        let registry = ["--registry", scratch.path("no-registry").path]
        let base = ["run", "--encoder", inputs.encoder, "--backend", inputs.backend, "--image", inputs.image,
                    "--prompt", "what is this ?", "--max-tokens", "4", "--keep-ratio", "0.5", "--json"] + registry
        var objects: [[String: Any]] = []
        for flags in [[], ["--keep-position-ids"]] {
            let result = try runCraft(base + flags)
            #expect(result.status == 0, "\(result.standardError)")
            objects.append(try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]))
        }
        #expect(objects.allSatisfy { $0["visual_tokens"] as? Int == 8 && $0["visual_tokens_before"] as? Int == 16 })
        #expect(objects[0]["prefill_flops_pruned"] as? Double == objects[1]["prefill_flops_pruned"] as? Double)

        let (encoder, backend) = try Self.packedTableBundles(scratch)
        let refused = try runCraft(["run", "--encoder", encoder.url.path, "--backend", backend.url.path, "--image", "0",
                                    "--prompt", "which digit?", "--keep-ratio", "0.5", "--keep-position-ids"] + registry)
        #expect(refused.status == 64, "\(refused.standardError)")
        #expect(refused.standardError.contains("cannot keep the original position ids"), "\(refused.standardError)")
    }

    @Test("craft run answers from the table runtimes with an image index (examples/bundles digits)")
    func runTableBundles() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (encoder, backend) = try Self.packedTableBundles(scratch)
        let tableEncoder = try TableEncoder(bundle: try BundleArchive.unpack(encoder.url, into: scratch.path("enc")))
        let tableBackend = try TableBackend(bundle: try BundleArchive.unpack(backend.url, into: scratch.path("llm")))
        let registry = ["--registry", scratch.path("no-registry").path]
        for index in [0, 1] {
            let expected = tableBackend.answer(try tableEncoder.tokens(forImage: index))
            let result = try runCraft(["run", "--encoder", encoder.url.path, "--backend", backend.url.path,
                                       "--image", String(index), "--prompt", "which digit?"] + registry)
            #expect(result.status == 0, "\(result.standardError)")
            #expect(result.standardOutput == expected + "\n")
        }
        let notIndex = try runCraft(["run", "--encoder", encoder.url.path, "--backend", backend.url.path,
                                     "--image", "x.png", "--prompt", "which digit?"] + registry)
        #expect(notIndex.status == 64, "\(notIndex.standardError)")
        #expect(notIndex.standardError.contains("--image must be an image index 0..<"), "\(notIndex.standardError)")
        // The table runtimes run through the pipeline: pruned like any tokens, the same report keys.
        let pruned = try runCraft(["run", "--encoder", encoder.url.path, "--backend", backend.url.path, "--image", "0",
                                   "--prompt", "which digit?", "--keep-ratio", "0.5", "--json"] + registry)
        #expect(pruned.status == 0, "\(pruned.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(pruned.standardOutput.utf8)) as? [String: Any])
        #expect(object["visual_tokens_before"] as? Int == 4 && object["visual_tokens"] as? Int == 2, "\(pruned.standardOutput)")
        #expect(object["finish_reason"] as? String == "eos" && object["text_tokens"] as? Int == 0)
        #expect(object["prefill_flops_full"] is NSNull && object["latency_ms"] is Double)
        // craft tokens reads the same image index.
        let tokens = try runCraft(["tokens", "--encoder", encoder.url.path, "--image", "1", "--json"] + registry)
        #expect(tokens.status == 0, "\(tokens.standardError)")
        let grid = try #require(try JSONSerialization.jsonObject(with: Data(tokens.standardOutput.utf8)) as? [String: Any])
        #expect(grid["rows"] as? Int == 2 && grid["columns"] as? Int == 2, "\(tokens.standardOutput)")
        #expect((grid["codes"] as? [[[Int]]])?.flatMap { $0 }.flatMap { $0 } == (try tableEncoder.tokens(forImage: 1)).codes.scalars.map { Int($0) })
    }

    @Test("craft run on a pair with different codebooks prints the report and exits 3")
    func runIncompatiblePair() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try makeInputs(scratch)
        let result = try runCraft(["run", "--encoder", inputs.encoder, "--backend", inputs.other, "--image", inputs.image,
                                   "--prompt", "what", "--registry", scratch.path("no-registry").path])
        #expect(result.status == 3, "\(result.standardError)")
        #expect(result.standardOutput.contains("FAIL"))
        #expect(result.standardError.contains("tiny-vq@1.0.0 and other-llm@1.0.0 cannot be paired"))
    }

    @Test("craft run and craft eval open, check and load a pair with one codebook hash")
    func pipelineOptionsHashOnce() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try makeInputs(scratch)
        let workspace = try RuntimeWorkspace()
        defer { workspace.remove() }
        // The step both commands run (PipelineOptions.pipeline), with their parsed options.
        let command = try EvalCommand.parse(["--encoder", inputs.encoder, "--backend", inputs.backend, "--data", "d.jsonl",
                                             "--registry", scratch.path("no-registry").path])
        let count = CodebookHash.Count()
        let pipeline = try CodebookHash.$computations.withValue(count) {
            try command.pipelineOptions.pipeline(in: workspace, registry: command.options, environment: .standard)
        }
        #expect(count.value == 1)
        #expect(pipeline.encoder.codebook.hash == pipeline.pair.codebook.hash)
    }

    @Test("craft run and craft eval share the pipeline options and their checks (exit 64)")
    func sharedPipelineOptions() throws {
        let bundles = ["--encoder", "e.craft", "--backend", "digits-answers@^1.0"]
        let commands: [(any ParsableCommand.Type, [String])] = [
            (RunCommand.self, ["--image", "x.png", "--prompt", "p"]), (EvalCommand.self, ["--data", "d.jsonl"]),
        ]
        let run = try RunCommand.parse(bundles + commands[0].1 + ["--max-tokens", "5", "--keep-ratio", "0.5"])
        let eval = try EvalCommand.parse(bundles + commands[1].1 + ["--max-tokens", "5", "--keep-ratio", "0.5"])
        for options in [run.pipelineOptions, eval.pipelineOptions] {
            #expect(options.encoder == "e.craft" && options.backend == "digits-answers@^1.0")
            #expect(options.generation == GenerationOptions(maximumNewTokens: 5) && options.keepRatio == 0.5)
        }
        for bad in [["--keep-ratio", "0"], ["--keep-ratio", "1.5"], ["--max-tokens", "-1"], ["--backend", "Not A Name"]] {
            for (command, rest) in commands {
                do {
                    _ = try command.parse(bundles + rest + bad)
                    Issue.record("\(command) accepted \(bad)")
                } catch {
                    #expect(command.exitCode(for: error) == .validationFailure, "\(command) \(bad): \(command.message(for: error))")
                }
            }
        }
    }

    @Test("craft run with a missing bundle or image exits 2")
    func runMissingInputs() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try makeInputs(scratch)
        let registry = ["--registry", scratch.path("no-registry").path]
        let noBundle = try runCraft(["run", "--encoder", scratch.path("nope-1.0.0.craft").path, "--backend", inputs.backend,
                                     "--image", inputs.image, "--prompt", "what"] + registry)
        #expect(noBundle.status == 2, "\(noBundle.standardError)")
        let noImage = try runCraft(["run", "--encoder", inputs.encoder, "--backend", inputs.backend,
                                    "--image", scratch.path("missing.png").path, "--prompt", "what"] + registry)
        #expect(noImage.status == 2, "\(noImage.standardError)")
        #expect(noImage.standardError.contains("missing.png"))
    }

    @Test("craft tokens prints the 4x4 code grid of an image (exit 0), text and JSON agree")
    func tokensGrid() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try makeInputs(scratch)
        let registry = ["--registry", scratch.path("no-registry").path]
        let json = try runCraft(["tokens", "--encoder", inputs.encoder, "--image", inputs.image, "--json"] + registry)
        #expect(json.status == 0, "\(json.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        #expect(object["rows"] as? Int == 4 && object["columns"] as? Int == 4 && object["depth"] as? Int == 1)
        #expect(object["codebook_hash"] as? String == (try TinyBundles.hash(TinyBundles.codebook())))
        let codes = try #require(object["codes"] as? [[[Int]]])
        #expect(codes.count == 4 && codes.allSatisfy { $0.count == 4 })
        #expect(codes.flatMap { $0 }.allSatisfy { $0.count == 1 && (0..<TinyBundles.entries).contains($0[0]) })
        let text = try runCraft(["tokens", "--encoder", inputs.encoder, "--image", inputs.image] + registry)
        #expect(text.status == 0, "\(text.standardError)")
        let rows = text.standardOutput.split(separator: "\n").map { $0.split(separator: " ").compactMap { Int($0) } }
        #expect(rows == codes.map { $0.map { $0[0] } })
    }

    @Test("craft tokens with a missing encoder exits 2")
    func tokensMissingEncoder() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let result = try runCraft(["tokens", "--encoder", scratch.path("gone-1.0.0.craft").path, "--image", scratch.path("x.png").path,
                                   "--registry", scratch.path("no-registry").path])
        #expect(result.status == 2, "\(result.standardError)")
    }
}
