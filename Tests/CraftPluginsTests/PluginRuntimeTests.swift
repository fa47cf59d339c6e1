// Runtime plugins over craft.runtime/v1 (docs/runtime-protocol.md): the Python example plugin
// against the built-in runtime, and plugins made to misbehave, each a clear error within its time
// limit with no process left behind.
import CraftBundles
import CraftCore
import CraftImaging
import Crypto
import Foundation
import RuntimeTestSupport
import TensorCore
import Testing

@testable import CraftPlugins
@testable import CraftRuntimes

/// The repository root, the Python of the peers' environment (numpy), and plugin scaffolding.
enum PluginFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let numpyPlugin = root.appendingPathComponent("examples/runtime-plugin-python/craft-runtime-numpy-siglip-vq")
    static let digitsEncoder = root.appendingPathComponent("registry/bundles/digits-siglip-vq/digits-siglip-vq-1.1.0.craft")

    /// `.build/peers-venv`'s python, with numpy (scripts/ensure-python-peers.sh installs it once).
    static let python: String = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [root.appendingPathComponent("scripts/ensure-python-peers.sh").path]
        let output = Pipe()
        process.standardOutput = output
        try? process.run()
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    /// Writes `craft-runtime-ID` into `directory`: a shell script, or Python run by the peers' python.
    static func install(_ id: String, in directory: URL, shell: String? = nil, python source: String? = nil) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let executable = directory.appendingPathComponent(PluginSearchPath.executableName(for: id))
        if let shell {
            try "#!/bin/sh\n\(shell)\n".write(to: executable, atomically: true, encoding: .utf8)
        } else if let source {
            let script = directory.appendingPathComponent("\(id).py")
            try source.write(to: script, atomically: true, encoding: .utf8)
            try "#!/bin/sh\nexec \"\(python)\" \"\(script.path)\" \"$@\"\n".write(to: executable, atomically: true, encoding: .utf8)
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: executable.path)
    }

    /// The digits SigLIP-VQ encoder unpacked with its runtime id changed to `runtime`, carrying
    /// `preprocessorConfig` as its `preprocessor_config.json` when given.
    static func encoder(runtime: String, in scratch: Scratch, preprocessorConfig: String? = nil) throws -> UnpackedBundle {
        let original = try BundleArchive.unpack(digitsEncoder, into: scratch.path("original-\(runtime)"))
        let directory = scratch.path("plugin-bundle-\(runtime)")
        try FileManager.default.copyItem(at: original.directory, to: directory)
        let manifestURL = directory.appendingPathComponent("craft.json")
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as! [String: Any]
        manifest["runtime"] = ["id": runtime, "version": "1.0.0"]
        if let preprocessorConfig {
            let bytes = Data(preprocessorConfig.utf8)
            try bytes.write(to: directory.appendingPathComponent("preprocessor_config.json"))
            let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            manifest["files"] = (manifest["files"] as! [[String: Any]]) + [["path": "preprocessor_config.json", "sha256": digest, "size": bytes.count]]
        }
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]).write(to: manifestURL)
        return try BundleArchive.open(directory: directory)
    }

    /// An executable of this package built next to the tests (debug or release).
    static func builtExecutable(named name: String) -> URL? {
        var candidates = [Bundle.main.bundleURL.appendingPathComponent(name), Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name)]
        for configuration in ["debug", "release"] { candidates.append(root.appendingPathComponent(".build/\(configuration)/\(name)")) }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    static func registry(path: URL, timeouts: PluginTimeouts = PluginTimeouts()) -> RuntimeRegistry {
        var registry = RuntimeRegistry.craftDefault
        registry.resolver = PluginRuntimes(searchPath: PluginSearchPath(environment: ["CRAFT_RUNTIME_PATH": path.path]), timeouts: timeouts)
        return registry
    }

    /// Plugin processes that are children of this process, running or zombies, whose command line
    /// names one of `scratches` (the directories their tests installed them in).
    static func leftoverPlugins(from scratches: [String]) -> [String] {
        let me = getpid()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard Int32(entry) != nil, let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8) else { return nil }
            // pid (comm) state ppid ...
            guard let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return nil }
            let command = String(stat[stat.index(after: open)..<close])
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            // A plugin runs as its script or as the interpreter its script execs: either way its
            // command line names the directory it was installed in. (A zombie's is empty, so a
            // zombie is matched by its name.)
            let commandLine = (try? String(contentsOfFile: "/proc/\(entry)/cmdline", encoding: .utf8)) ?? ""
            guard fields.count > 1, Int32(fields[1]) == me,
                  scratches.contains(where: { commandLine.contains($0) }) || (fields[0] == "Z" && command.hasPrefix("craft-runtime")) else { return nil }
            return "\(entry) \(command) \(fields[0])"
        }
    }
}

@Suite("Runtime plugins: the Python example plugin against the built-in runtime")
struct PluginRuntimeTests {
    /// The numpy plugin, found on CRAFT_RUNTIME_PATH, encodes the digits images to the codes Craft's
    /// own siglip-vq runtime gives the same bundle, through the same pipeline types.
    @Test("the numpy SigLIP-VQ plugin gives the built-in runtime's codes")
    func numpyPluginEqualsBuiltIn() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try PluginFixtures.install("numpy-siglip-vq", in: scratch.path("plugins"),
                                   shell: "exec \"\(PluginFixtures.python)\" \"\(PluginFixtures.numpyPlugin.path)\" \"$@\"")
        let registry = PluginFixtures.registry(path: scratch.path("plugins"))
        let pluginBundle = try PluginFixtures.encoder(runtime: "numpy-siglip-vq", in: scratch)
        let builtInBundle = try BundleArchive.unpack(PluginFixtures.digitsEncoder, into: scratch.path("built-in"))
        #expect(registry.isRegistered(runtime: "numpy-siglip-vq", version: "1.0.0", role: .encoder))

        let plugin = try registry.loadEncoder(pluginBundle)
        let builtIn = try registry.loadEncoder(builtInBundle)
        #expect(plugin is PluginEncoder)
        #expect(plugin.codebook.hash == builtIn.codebook.hash && plugin.grid == builtIn.grid)
        let images = try (0..<6).map { index in
            try ImageInput.rgbImage(contentsOf: PluginFixtures.root.appendingPathComponent(String(format: "examples/data/digits/images/strong/%04d.png", index)))
        }
        let pixels = Tensor.concatenated(try images.map { try builtIn.preprocess($0).unsqueezed(0) }, along: 0)
        #expect(try plugin.preprocess(images[0]).scalars == builtIn.preprocess(images[0]).scalars)
        let ours = try plugin.encode(pixels), theirs = try builtIn.encode(pixels)
        #expect(ours.count == 6)
        for (a, b) in zip(ours, theirs) {
            #expect(a.codes.scalars == b.codes.scalars)
            #expect(a.codebookHash == b.codebookHash && a.positions == b.positions)
            let norms = zip(a.residualNorms, b.residualNorms).map { abs($0 - $1) }.max() ?? 1
            #expect(norms < 1e-3, "residual norms differ by \(norms)")
            // The plugin's vectors are Craft's codebook rows; the built-in runtime's are the
            // straight-through z_e + (z_q − z_e), the same rows up to float rounding.
            let vectors = zip(a.features?.scalars ?? [], b.features?.scalars ?? []).map { abs($0 - $1) }.max() ?? 1
            #expect(vectors < 1e-5 && a.features?.shape == b.features?.shape, "vectors differ by \(vectors)")
        }
        // A second call reuses the same process.
        #expect(try plugin.encode(pixels).map(\.codes.scalars) == theirs.map(\.codes.scalars))
    }

    /// A bundle's `preprocessor_config.json` prepares the pixels a plugin encoder gets exactly as it
    /// prepares the built-in runtime's.
    @Test("a plugin encoder prepares images by the bundle's preprocessor_config.json")
    func pluginReadsPreprocessorConfig() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try PluginFixtures.install("numpy-siglip-vq", in: scratch.path("plugins"),
                                   shell: "exec \"\(PluginFixtures.python)\" \"\(PluginFixtures.numpyPlugin.path)\" \"$@\"")
        let registry = PluginFixtures.registry(path: scratch.path("plugins"))
        let config = #"{"image_mean": [0.25, 0.5, 0.75], "image_std": [0.2, 0.3, 0.4], "resample": 2, "size": {"height": 16, "width": 16}}"#
        let pluginBundle = try PluginFixtures.encoder(runtime: "numpy-siglip-vq", in: scratch, preprocessorConfig: config)
        let builtInBundle = try PluginFixtures.encoder(runtime: "siglip-vq", in: scratch, preprocessorConfig: config)
        let plugin = try registry.loadEncoder(pluginBundle), builtIn = try registry.loadEncoder(builtInBundle)
        let image = try ImageInput.rgbImage(contentsOf: PluginFixtures.root.appendingPathComponent("examples/data/digits/images/strong/0003.png"))
        let ours = try plugin.preprocess(image), theirs = try builtIn.preprocess(image)
        #expect(ours.shape == theirs.shape && ours.scalars == theirs.scalars)
        // Not the manifest's mean and std (0.5): the config's.
        let plain = try registry.loadEncoder(try BundleArchive.unpack(PluginFixtures.digitsEncoder, into: scratch.path("plain")))
        #expect(try plain.preprocess(image).scalars != ours.scalars)
    }
}

/// Plugins made to misbehave: each a clear error within its time limit, the plugin stopped and
/// reaped (docs/runtime-protocol.md, "Trust boundaries").
@Suite("Runtime plugins that misbehave are stopped with a clear error")
struct MisbehavingPluginTests {
    /// A Python plugin that shakes hands properly and answers `load` and `encode` with `answer`,
    /// Python code that writes to `out` (the binary stdout) given the request `message`.
    static func plugin(hello: String = #"{"type": "hello", "protocol": "craft.runtime/v1", "runtimes": [{"id": "bad", "kind": "encoder", "version": "1.0.0"}]}"#,
                       loaded: String = #"{"type": "loaded", "grid": [8, 8]}"#, encode: String) -> String {
        """
        import json, struct, sys
        out = sys.stdout.buffer
        def frame(name, dtype, shape, values):
            fmt = "<%d%s" % (len(values), "f" if dtype == "float32" else "i")
            return {"name": name, "dtype": dtype, "shape": shape}, struct.pack("<Q", struct.calcsize(fmt)) + struct.pack(fmt, *values)
        def send(message, frames=()):
            if frames:
                message["tensors"] = [d for d, _ in frames]
            out.write(json.dumps(message).encode() + b"\\n")
            for _, data in frames:
                out.write(data)
            out.flush()
        for line in sys.stdin.buffer:
            message = json.loads(line)
            if message["type"] == "hello":
                out.write(b'\(hello)' + b"\\n"); out.flush()
            elif message["type"] == "load":
                out.write(b'\(loaded)' + b"\\n"); out.flush()
            elif message["type"] == "encode":
                for descriptor in message.get("tensors", []):
                    (length,) = struct.unpack("<Q", sys.stdin.buffer.read(8)); sys.stdin.buffer.read(length)
                batch = message["tensors"][0]["shape"][0]
        \(encode.split(separator: "\n").map { "        " + $0 }.joined(separator: "\n"))
            elif message["type"] == "shutdown":
                break
        """
    }

    /// Loads the digits encoder through plugin `bad` installed from `shell` or `python`, encodes one
    /// image, and returns the error (nil when everything worked) and the seconds it took.
    static func failure(shell: String? = nil, python: String? = nil, timeouts: PluginTimeouts = PluginTimeouts(handshake: 2, load: 3, call: 3),
                        scratch given: Scratch? = nil) throws -> (error: PluginError?, seconds: Double) {
        let scratch = try given ?? Scratch()
        defer { scratch.remove() }
        try PluginFixtures.install("bad", in: scratch.path("plugins"), shell: shell, python: python)
        let registry = PluginFixtures.registry(path: scratch.path("plugins"), timeouts: timeouts)
        let bundle = try PluginFixtures.encoder(runtime: "bad", in: scratch)
        let start = Date()
        do {
            let encoder = try registry.loadEncoder(bundle)
            let image = try ImageInput.rgbImage(contentsOf: PluginFixtures.root.appendingPathComponent("examples/data/digits/images/strong/0000.png"))
            _ = try encoder.encode(try encoder.preprocess(image).unsqueezed(0))
            return (nil, Date().timeIntervalSince(start))
        } catch let error as PluginError {
            return (error, Date().timeIntervalSince(start))
        } catch let error as BundleError {
            // Loading wraps the plugin's error in the registry's "could not load" sentence.
            let cause = try #require(error.cause as? PluginError, "\(error)")
            #expect(error.message.hasSuffix(cause.message))
            return (cause, Date().timeIntervalSince(start))
        }
    }

    static func expectFailure(_ result: (error: PluginError?, seconds: Double), _ code: PluginError.Code, saying phrases: [String],
                              within seconds: Double = 10, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let error = result.error else {
            Issue.record("the plugin was accepted", sourceLocation: sourceLocation)
            return
        }
        #expect(error.code == code, "\(error.code): \(error.message)", sourceLocation: sourceLocation)
        for phrase in phrases {
            #expect(error.message.contains(phrase), "\"\(phrase)\" not in: \(error.message)", sourceLocation: sourceLocation)
        }
        #expect(result.seconds < seconds, "took \(result.seconds) s", sourceLocation: sourceLocation)
        #expect(error.category == .other)
    }

    @Test("a plugin that exits at once is reported with its exit status and the tail of its stderr")
    func exitsAtOnce() throws {
        Self.expectFailure(try Self.failure(shell: "echo 'cannot find my GPU' >&2\nexit 3"), .crashed,
                           saying: ["exited while shaking hands", "exit status 3", "cannot find my GPU"])
    }

    @Test("a plugin that hangs is stopped at its time limit")
    func hangs() throws {
        Self.expectFailure(try Self.failure(shell: "sleep 1000"), .timedOut, saying: ["did not answer within its time limit while shaking hands"], within: 6)
        // One that answers the handshake and then hangs on a call: the call's limit.
        Self.expectFailure(try Self.failure(python: Self.plugin(encode: "import time; time.sleep(1000)")), .timedOut,
                           saying: ["while encoding 1 image"], within: 8)
    }

    @Test("a plugin that prints text that is not the protocol is refused")
    func printsText() throws {
        Self.expectFailure(try Self.failure(shell: "echo 'Hello! I am a plugin.'\nsleep 1000"), .protocolViolation,
                           saying: ["wrote \"Hello! I am a plugin.\"", "not a craft.runtime/v1 message"])
    }

    @Test("a plugin that speaks another protocol version is refused")
    func otherVersion() throws {
        let hello = #"{"type": "hello", "protocol": "craft.runtime/v2", "runtimes": [{"id": "bad", "kind": "encoder", "version": "1.0.0"}]}"#
        Self.expectFailure(try Self.failure(python: Self.plugin(hello: hello, encode: "pass")), .protocolViolation,
                           saying: ["speaks protocol \"craft.runtime/v2\"", "Craft speaks craft.runtime/v1"])
    }

    @Test("a plugin that offers another runtime, or exits mid-answer, is refused")
    func wrongOfferAndMidAnswer() throws {
        let hello = #"{"type": "hello", "protocol": "craft.runtime/v1", "runtimes": [{"id": "other", "kind": "backend", "version": "1.0.0"}]}"#
        Self.expectFailure(try Self.failure(python: Self.plugin(hello: hello, encode: "pass")), .invalidAnswer,
                           saying: ["offers other@1.0.0 (backend), not the encoder runtime bad"])
        Self.expectFailure(try Self.failure(python: Self.plugin(encode: "out.write(b'{\"type\": \"enc'); out.flush(); sys.exit(0)")), .crashed,
                           saying: ["exited while encoding 1 image"])
    }

    @Test("codes outside the codebook and wrong shapes are refused")
    func invalidAnswers() throws {
        let outside = """
        send({"type": "encoded"}, [frame("codes", "int32", [batch, 64, 1], [5] * 63 + [128]), frame("residual_norms", "float32", [batch, 64], [0.5] * 64)])
        """
        Self.expectFailure(try Self.failure(python: Self.plugin(encode: outside)), .invalidAnswer,
                           saying: ["the code 128 at image 0, token 63, outside the codebook's 128 entries", "it was stopped"])
        let shape = """
        send({"type": "encoded"}, [frame("codes", "int32", [batch, 3, 1], [1, 2, 3]), frame("residual_norms", "float32", [batch, 3], [0.5] * 3)])
        """
        Self.expectFailure(try Self.failure(python: Self.plugin(encode: shape)), .invalidAnswer,
                           saying: ["codes shaped [1, 3, 1]", "must be int32 [1, 64, 1]"])
        let frame = """
        out.write(b'{"type": "encoded", "tensors": [{"name": "codes", "dtype": "int32", "shape": [1, 64, 1]}]}\\n' + struct.pack("<Q", 12) + b"x" * 12); out.flush()
        """
        Self.expectFailure(try Self.failure(python: Self.plugin(encode: frame)), .protocolViolation,
                           saying: ["a frame of 12 bytes for the tensor \"codes\" of shape [1, 64, 1], which needs 256"])
        let grid = Self.plugin(loaded: #"{"type": "loaded", "grid": [4, 4]}"#, encode: "pass")
        Self.expectFailure(try Self.failure(python: grid), .invalidAnswer, saying: ["a grid of [4, 4]", "declares 64 tokens per image"])
    }

    @Test("a plugin's own error is reported, and it keeps serving")
    func ownError() throws {
        let answer = """
        send({"type": "error", "message": "CUDA out of memory"})
        """
        Self.expectFailure(try Self.failure(python: Self.plugin(encode: answer)), .pluginFailed,
                           saying: ["failed while encoding 1 image", "CUDA out of memory"])
    }

    @Test("no plugin process is left behind, running or zombie, nor a process it started")
    func nothingLeftBehind() throws {
        let scratches = try (0..<3).map { _ in try Scratch() }
        // A shell plugin whose own child (sleep) would outlive it: its process group is stopped.
        _ = try Self.failure(shell: "sleep 1007", scratch: scratches[0])
        _ = try Self.failure(shell: "exit 1", scratch: scratches[1])
        _ = try Self.failure(python: Self.plugin(encode: "import time; time.sleep(1000)"), scratch: scratches[2])
        let left = PluginFixtures.leftoverPlugins(from: scratches.map(\.url.path))
        #expect(left.isEmpty, "\(left)")
        let orphans = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { entry in
            (try? String(contentsOfFile: "/proc/\(entry)/cmdline", encoding: .utf8)) == "sleep\u{0}1007\u{0}"
        }
        #expect(orphans.isEmpty, "the plugin's child survived it: \(orphans)")
    }
}

@Suite("Runtime plugins: the Swift example plugin (CraftPluginKit)")
struct SwiftPluginTests {
    /// examples/runtime-plugin-swift, built as `craft-runtime-swift-siglip-vq` next to the test
    /// bundle, found on CRAFT_RUNTIME_PATH, gives the built-in runtime's codes.
    @Test("the Swift plugin gives the built-in runtime's codes")
    func swiftPluginEqualsBuiltIn() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let executable = try #require(PluginFixtures.builtExecutable(named: "craft-runtime-swift-siglip-vq"),
                                      "the example plugin is not built; run `swift build --build-tests` first")
        let registry = PluginFixtures.registry(path: executable.deletingLastPathComponent())
        let pluginBundle = try PluginFixtures.encoder(runtime: "swift-siglip-vq", in: scratch)
        let builtIn = try registry.loadEncoder(try BundleArchive.unpack(PluginFixtures.digitsEncoder, into: scratch.path("built-in")))
        let plugin = try registry.loadEncoder(pluginBundle)
        #expect(plugin is PluginEncoder)
        let images = try (0..<4).map { index in
            try ImageInput.rgbImage(contentsOf: PluginFixtures.root.appendingPathComponent(String(format: "examples/data/digits/images/mild/%04d.png", index)))
        }
        let pixels = Tensor.concatenated(try images.map { try builtIn.preprocess($0).unsqueezed(0) }, along: 0)
        let ours = try plugin.encode(pixels), theirs = try builtIn.encode(pixels)
        #expect(ours.map(\.codes.scalars) == theirs.map(\.codes.scalars))
        // The codes are the contract. The residual norms agree to float rounding: under a loaded full
        // test run they once differed in the last bit or two between the two processes.
        for (mine, reference) in zip(ours.map(\.residualNorms), theirs.map(\.residualNorms)) {
            #expect(mine.count == reference.count && zip(mine, reference).allSatisfy { abs($0 - $1) <= 1e-5 * Swift.max(1, abs($1)) },
                    "\(mine) against \(reference)")
        }
    }

    /// The same executable serves `swift-gpt2` (PluginBackendModel): linked under that id, it answers
    /// through the pipeline exactly as the built-in gpt2 runtime, greedy and sampled, stop sequences included.
    @Test("the Swift plugin's GPT-2 backend answers as the built-in gpt2 runtime")
    func swiftBackendEqualsBuiltIn() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let executable = try #require(PluginFixtures.builtExecutable(named: "craft-runtime-swift-siglip-vq"),
                                      "the example plugin is not built; run `swift build --build-tests` first")
        let plugins = scratch.path("plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: plugins.appendingPathComponent("craft-runtime-swift-gpt2"), withDestinationURL: executable)
        let registry = PluginFixtures.registry(path: plugins)
        let encoder = try BundleArchive.unpack(PluginFixtures.digitsEncoder, into: scratch.path("encoder"))
        let original = try BundleArchive.unpack(PluginFixtures.root.appendingPathComponent("registry/bundles/digits-gpt2/digits-gpt2-1.0.0.craft"),
                                                into: scratch.path("gpt2"))
        let directory = scratch.path("swift-gpt2")
        try FileManager.default.copyItem(at: original.directory, to: directory)
        let manifestURL = directory.appendingPathComponent("craft.json")
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as! [String: Any]
        manifest["runtime"] = ["id": "swift-gpt2", "version": "1.0.0"]
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]).write(to: manifestURL)
        let backend = try BundleArchive.open(directory: directory)

        let plugin = try Pipeline(pair: try checkCompatibility(encoder: encoder, backend: backend, runtimes: registry).requirePairing(),
                                  encoder: encoder, backend: backend, runtimes: registry)
        let builtIn = try Pipeline(pair: try checkCompatibility(encoder: encoder, backend: original, runtimes: registry).requirePairing(),
                                   encoder: encoder, backend: original, runtimes: registry)
        #expect(plugin.backend is PluginBackend)
        #expect(try plugin.backend.tokenize("what digit is this ?") == builtIn.backend.tokenize("what digit is this ?"))
        #expect(try plugin.backend.detokenize([3, 4, 5]) == builtIn.backend.detokenize([3, 4, 5]))
        let options = [GenerationOptions(maximumNewTokens: 4), GenerationOptions(maximumNewTokens: 6, temperature: 0.9, topK: 5, seed: 11),
                       GenerationOptions(maximumNewTokens: 2), GenerationOptions(maximumNewTokens: 8, stopSequences: ["digit"])]
        for (index, option) in options.enumerated() {
            let image = try ImageInput.rgbImage(contentsOf: PluginFixtures.root.appendingPathComponent(String(format: "examples/data/digits/images/strong/%04d.png", index)))
            let ours = try plugin.answer(image: image, prompt: "what digit is this ?", options: option)
            let theirs = try builtIn.answer(image: image, prompt: "what digit is this ?", options: option)
            #expect(ours.text == theirs.text && ours.tokens == theirs.tokens && ours.finishReason == theirs.finishReason,
                    "\(option): \(ours.text) against \(theirs.text)")
        }
    }
}

/// A backend served by a plugin: the checker passes it on the declared hash, the pipeline sends the
/// prompt's segments (text, and each visual segment's codes and vectors), and what comes back is checked.
@Suite("Runtime plugins: backends")
struct BackendPluginTests {
    /// Answers "digit N", N the most frequent code of the visual segment (lowest on ties) mod 10;
    /// tokenizes words by a small vocabulary (`answer` replaces the generate reply when given).
    static func vote(answer: String? = nil) -> String {
        """
        import json, struct, sys
        out, stdin = sys.stdout.buffer, sys.stdin.buffer
        words = ["<eos>", "digit"] + [str(d) for d in range(10)] + ["what", "is", "this", "?"]
        def send(message):
            out.write(json.dumps(message).encode() + b"\\n"); out.flush()
        for line in stdin:
            message = json.loads(line)
            kind = message["type"]
            tensors = {}
            for descriptor in message.get("tensors", []):
                (length,) = struct.unpack("<Q", stdin.read(8))
                data = stdin.read(length)
                tensors[descriptor["name"]] = list(struct.unpack("<%d%s" % (length // 4, "i" if descriptor["dtype"] == "int32" else "f"), data))
            if kind == "hello":
                send({"type": "hello", "protocol": "craft.runtime/v1", "runtimes": [{"id": "python-vote", "kind": "backend", "version": "1.0.0"}]})
            elif kind == "load":
                send({"type": "loaded"})
            elif kind == "tokenize":
                send({"type": "tokenized", "tokens": [words.index(w) if w in words else 99 for w in message["text"].split()]})
            elif kind == "detokenize":
                send({"type": "detokenized", "text": " ".join(words[t] if t < len(words) else "?" for t in message["tokens"])})
            elif kind == "generate":
                visual = [s["visual"] for s in message["segments"] if "visual" in s]
                codes = tensors["codes.%d" % visual[0]]
                vote = max(set(codes), key=lambda c: (codes.count(c), -c)) % 10
                reply = {"type": "generated", "text": "digit %d" % vote, "tokens": [1, 2 + vote], "finish_reason": "eos"}
                \(answer.map { "reply = \($0)" } ?? "")
                send(reply)
            elif kind == "shutdown":
                break
        """
    }

    /// A backend bundle of the digits encoder's codebook naming runtime `python-vote`.
    static func backendBundle(in scratch: Scratch, encoder: UnpackedBundle) throws -> UnpackedBundle {
        let directory = scratch.path("vote-backend")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data("{\"words\": 16}".utf8).write(to: directory.appendingPathComponent("vocab.json"))
        let codebook = encoder.manifest.codebook
        let manifest: [String: Any] = [
            "schema": "craft.bundle/v1", "kind": "backend", "name": "digits-vote", "version": "1.0.0", "license": "MIT",
            "summary": "answers by the most frequent code, from a Python plugin", "domains": ["digits"],
            "runtime": ["id": "python-vote", "version": "1.0.0"],
            "codebook": ["hash": codebook.hash, "entries": codebook.entries, "dim": codebook.dimension, "depth": codebook.depth, "metric": codebook.metric.rawValue],
            "backend": ["context_length": 128, "prompt_template": "<image> {prompt}"],
            "files": [["path": "vocab.json"]],
        ]
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]).write(to: directory.appendingPathComponent("craft.json"))
        let packed = try BundleArchive.pack(directory: directory, to: scratch.path("digits-vote-1.0.0.craft"))
        return try BundleArchive.unpack(packed.url, into: scratch.path("vote-unpacked"))
    }

    @Test("a plugin backend pairs with the built-in encoder and answers through the pipeline")
    func pairsAndAnswers() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try PluginFixtures.install("python-vote", in: scratch.path("plugins"), python: Self.vote())
        let registry = PluginFixtures.registry(path: scratch.path("plugins"))
        let encoder = try BundleArchive.unpack(PluginFixtures.digitsEncoder, into: scratch.path("encoder"))
        let backend = try Self.backendBundle(in: scratch, encoder: encoder)
        let report = checkCompatibility(encoder: encoder, backend: backend, runtimes: registry)
        let pipeline = try Pipeline(pair: try report.requirePairing(), encoder: encoder, backend: backend, runtimes: registry)
        #expect(pipeline.backend is PluginBackend)
        #expect(try pipeline.backend.tokenize("what is this ?") == [12, 13, 14, 15])
        #expect(try pipeline.backend.detokenize([1, 9]) == "digit 7")
        for index in 0..<3 {
            let image = try ImageInput.rgbImage(contentsOf: PluginFixtures.root.appendingPathComponent(String(format: "examples/data/digits/images/strong/%04d.png", index)))
            let codes = try pipeline.encoder.encode(try pipeline.encoder.preprocess(image).unsqueezed(0))[0].codes.scalars
            let counts = Dictionary(codes.map { ($0, 1) }, uniquingKeysWith: +)
            let vote = counts.max { ($0.value, -$0.key) < ($1.value, -$1.key) }!.key % 10
            let answer = try pipeline.answer(image: image, prompt: "what is this ?")
            #expect(answer.text == "digit \(vote)" && answer.tokens == [1, 2 + vote] && answer.finishReason == .endOfSequence)
        }
    }

    @Test("a plugin backend's invalid answers are refused")
    func invalidAnswers() throws {
        for (reply, phrase) in [
            (#"{"type": "generated", "text": "x", "tokens": [-3], "finish_reason": "eos"}"#, "-3 among the tokens of \"generated\", not a token id"),
            (#"{"type": "generated", "text": "x", "tokens": [1], "finish_reason": "bored"}"#, "the finish reason \"bored\""),
            (#"{"type": "generated", "text": "x", "tokens": list(range(40)), "finish_reason": "length"}"#, "40 tokens where at most 32 were asked for"),
        ] {
            let scratch = try Scratch()
            defer { scratch.remove() }
            try PluginFixtures.install("python-vote", in: scratch.path("plugins"), python: Self.vote(answer: reply))
            let registry = PluginFixtures.registry(path: scratch.path("plugins"))
            let encoder = try BundleArchive.unpack(PluginFixtures.digitsEncoder, into: scratch.path("encoder"))
            let backend = try Self.backendBundle(in: scratch, encoder: encoder)
            let pipeline = try Pipeline(pair: try checkCompatibility(encoder: encoder, backend: backend, runtimes: registry).requirePairing(),
                                        encoder: encoder, backend: backend, runtimes: registry)
            let image = try ImageInput.rgbImage(contentsOf: PluginFixtures.root.appendingPathComponent("examples/data/digits/images/strong/0000.png"))
            #expect { _ = try pipeline.answer(image: image, prompt: "what is this ?") } throws: { error in
                (error as? PluginError)?.code == .invalidAnswer && (error as? PluginError)?.message.contains(phrase) == true
            }
        }
    }
}
