// `craft-bench plugin`: what a runtime plugin costs per call (docs/runtime-protocol.md). The
// miniature's SigLIP-VQ encoder (64 tokens per image) is run three ways in one process, alternating
// rounds, medians: Craft's built-in runtime; the numpy plugin (examples/runtime-plugin-python); and a
// null plugin that answers every `encode` at once with zero codes, whose time is the protocol's
// round-trip overhead (framing, pipes, Python's own reading and writing, Craft's checks).
// Then the eval comparison: the digits eval loop (`craft eval`'s, in-process) with the numpy GPT-2
// backend plugin, against the same numpy model generating the same prompts on its own in Python.
// Results and the command: docs/benchmarks.md ("Runtime plugins").
//
//   craft-bench plugin [--rounds 5] [--calls 200] [--eval 48]
import CraftBundles
import CraftCore
import CraftImaging
import CraftPipeline
import CraftPlugins
import CraftRuntimes
import Foundation
import TensorCore

enum PluginBenchmark {
    static let nullPlugin = """
        import json, struct, sys
        out, stdin = sys.stdout.buffer, sys.stdin.buffer
        grid = None
        for line in stdin:
            message = json.loads(line)
            kind = message["type"]
            if kind == "hello":
                out.write(json.dumps({"type": "hello", "protocol": "craft.runtime/v1", "runtimes": [{"id": "null-encoder", "kind": "encoder", "version": "1.0.0"}]}).encode() + b"\\n")
            elif kind == "load":
                out.write(b'{"type": "loaded", "grid": [8, 8]}\\n')
            elif kind == "encode":
                for descriptor in message["tensors"]:
                    (length,) = struct.unpack("<Q", stdin.read(8)); stdin.read(length)
                batch = message["tensors"][0]["shape"][0]
                codes, norms = bytes(4 * batch * 64), bytes(4 * batch * 64)
                header = {"type": "encoded", "tensors": [{"name": "codes", "dtype": "int32", "shape": [batch, 64, 1]},
                                                         {"name": "residual_norms", "dtype": "float32", "shape": [batch, 64]}]}
                out.write(json.dumps(header).encode() + b"\\n" + struct.pack("<Q", len(codes)) + codes + struct.pack("<Q", len(norms)) + norms)
            elif kind == "shutdown":
                break
            out.flush()
        """

    static func run(arguments: [String]) throws {
        var rounds = 5, calls = 200, evalItems = 48
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--rounds": rounds = Int(iterator.next() ?? "") ?? rounds
            case "--calls": calls = Int(iterator.next() ?? "") ?? calls
            case "--eval": evalItems = Int(iterator.next() ?? "") ?? evalItems
            default: throw BenchmarkError("unknown option \(argument); usage: craft-bench plugin [--rounds N] [--calls N] [--eval N]", usage: true)
            }
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("craft-bench-plugin-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let root = URL(fileURLWithPath: peerScript("x")).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let plugins = scratch.appendingPathComponent("plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: true)
        try nullPlugin.write(to: plugins.appendingPathComponent("null.py"), atomically: true, encoding: .utf8)
        let numpyScript = root.appendingPathComponent("examples/runtime-plugin-python/craft-runtime-numpy-siglip-vq").path
        let numpyGPT2 = root.appendingPathComponent("examples/runtime-plugin-python/craft-runtime-numpy-gpt2").path
        for (id, command) in [("numpy-siglip-vq", numpyScript), ("numpy-gpt2", numpyGPT2), ("null-encoder", plugins.appendingPathComponent("null.py").path)] {
            let executable = plugins.appendingPathComponent("craft-runtime-\(id)")
            try "#!/bin/sh\nexec \"\(peerPython)\" \"\(command)\" \"$@\"\n".write(to: executable, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: executable.path)
        }
        var registry = RuntimeRegistry.craftDefault
        registry.resolver = PluginRuntimes(searchPath: PluginSearchPath(environment: ["CRAFT_RUNTIME_PATH": plugins.path]))
        let packed = root.appendingPathComponent("registry/bundles/digits-siglip-vq/digits-siglip-vq-1.1.0.craft")
        func bundle(runtime: String?, from packed: URL = packed) throws -> UnpackedBundle {
            let unpacked = try BundleArchive.unpack(packed, into: scratch.appendingPathComponent("bundle-\(runtime ?? "built-in")-\(packed.lastPathComponent)"))
            guard let runtime else { return unpacked }
            let manifestURL = unpacked.directory.appendingPathComponent("craft.json")
            var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as! [String: Any]
            manifest["runtime"] = ["id": runtime, "version": "1.0.0"]
            try JSONSerialization.data(withJSONObject: manifest).write(to: manifestURL)
            return try BundleArchive.open(directory: unpacked.directory)
        }
        let builtInBundle = try bundle(runtime: nil)
        let encoders: [(String, any VisionEncoder)] = [
            ("built-in siglip-vq", try registry.loadEncoder(builtInBundle)),
            ("numpy plugin", try registry.loadEncoder(try bundle(runtime: "numpy-siglip-vq"))),
            ("null plugin (protocol only)", try registry.loadEncoder(try bundle(runtime: "null-encoder"))),
        ]
        let image = try ImageInput.rgbImage(contentsOf: root.appendingPathComponent("examples/data/digits/images/strong/0000.png"))
        let one = try encoders[0].1.preprocess(image).unsqueezed(0)
        let batch = Tensor.concatenated(Array(repeating: one, count: 32), along: 0)
        print("craft-bench plugin: \(rounds) alternating rounds of \(calls) calls, medians of per-round means; CPU: \(HalfPrecisionBenchmark.cpuModel()); "
            + "peer python: \(peerPython); load average \(ModelBenchmark.loadAverage())")
        var times: [String: [Double]] = [:]
        for round in 0..<rounds {
            print("  round \(round + 1)/\(rounds) ...")
            for (name, encoder) in encoders {
                for (label, pixels, count) in [("1 image", one, calls), ("32 images", batch, max(calls / 20, 5))] {
                    let start = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<count { _ = try encoder.encode(pixels) }
                    times["\(name)|\(label)", default: []].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(count))
                }
            }
        }
        var rows = [["encoder", "1 image (64 tokens) ms/call", "32 images ms/call", "32 images vs built-in"]]
        let base = QuantizeBenchmark.median(times["built-in siglip-vq|32 images"] ?? [])
        for (name, _) in encoders {
            let single = QuantizeBenchmark.median(times["\(name)|1 image"] ?? []), many = QuantizeBenchmark.median(times["\(name)|32 images"] ?? [])
            rows.append([name, String(format: "%.3f", single), String(format: "%.2f", many), String(format: "%.2fx", many / base)])
        }
        QuantizeBenchmark.printTable(rows)
        let overhead = QuantizeBenchmark.median(times["null plugin (protocol only)|1 image"] ?? [])
        Summary.line("plugin", String(format: "round trip of one 64-token image through the protocol: %.3f ms (target < 1 ms)", overhead))
        if evalItems > 0 {
            try evaluate(items: evalItems, rounds: rounds, registry: registry, encoder: builtInBundle,
                         backend: try bundle(runtime: "numpy-gpt2", from: root.appendingPathComponent("registry/bundles/digits-gpt2/digits-gpt2-1.0.0.craft")),
                         plugin: numpyGPT2, root: root, scratch: scratch)
        }
    }

    /// The digits eval loop with the numpy GPT-2 backend plugin (in-process, as `craft eval` runs it:
    /// decode, preprocess, encode, generate), against the numpy model generating the same prompts on
    /// its own (Benchmarks/peers/numpy_gpt2_generate.py), alternating rounds.
    static func evaluate(items count: Int, rounds: Int, registry: RuntimeRegistry, encoder: UnpackedBundle, backend: UnpackedBundle,
                         plugin: String, root: URL, scratch: URL) throws {
        let pipeline = try Pipeline(pair: try checkCompatibility(encoder: encoder, backend: backend, runtimes: registry).requirePairing(),
                                    encoder: encoder, backend: backend, runtimes: registry)
        let data = root.appendingPathComponent("examples/data/digits")
        let lines = try String(contentsOf: data.appendingPathComponent("strong-test.jsonl"), encoding: .utf8).split(separator: "\n").prefix(count)
        let items = try lines.map { line -> (image: URL, prompt: String) in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return (data.appendingPathComponent(object["image"] as! String), object["prompt"] as! String)
        }
        let options = GenerationOptions(maximumNewTokens: 32)  // craft eval's default --max-tokens

        // The peer's requests: each prompt's segments as the plugin receives them, vectors in a file.
        var requests: [[String: Any]] = [], vectors: [Float] = []
        for item in items {
            var segments: [[String: Any]] = [], shape: [Int] = []
            for segment in try pipeline.segments(image: try ImageInput.rgbImage(contentsOf: item.image), prompt: item.prompt) {
                switch segment {
                case .text(let text): segments.append(["text": text])
                case .tokens(let ids): segments.append(["tokens": ids.map(Int.init)])
                case .visual(let tokens):
                    guard let features = tokens.features else { throw BenchmarkError("the encoder gave no vectors") }
                    segments.append(["visual": 0])
                    shape = features.shape
                    vectors += features.scalars
                case .vectors(let features):
                    segments.append(["visual": 0])
                    shape = features.shape
                    vectors += features.scalars
                }
            }
            requests.append(["segments": segments, "offset": vectors.count - shape.reduce(1, *), "shape": shape])
        }
        let requestsURL = scratch.appendingPathComponent("requests.json"), vectorsURL = scratch.appendingPathComponent("vectors.f32")
        try JSONSerialization.data(withJSONObject: requests).write(to: requestsURL)
        try vectors.withUnsafeBytes { Data($0) }.write(to: vectorsURL)

        print("eval: \(count) digits examples, greedy, at most 32 new tokens; \(rounds) alternating rounds")
        var craft: [Double] = [], alone: [Double] = []
        var answers: [String] = []
        for round in 0..<rounds {
            let start = DispatchTime.now().uptimeNanoseconds
            answers = try items.map { try pipeline.answer(image: try ImageInput.rgbImage(contentsOf: $0.image), prompt: $0.prompt, options: options).text }
            craft.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(count))
            let line = try runChild(URL(fileURLWithPath: peerPython), [
                peerScript("numpy_gpt2_generate.py"), "--plugin", plugin, "--bundle", backend.directory.path,
                "--requests", requestsURL.path, "--vectors", vectorsURL.path, "--max-tokens", "32",
            ])
            let peer = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            guard let seconds = peer?["seconds_per_request"] as? Double, let theirs = peer?["answers"] as? [String] else {
                throw BenchmarkError("numpy_gpt2_generate.py printed \(line)")
            }
            guard theirs == answers else { throw BenchmarkError("the numpy model alone answers differently from the plugin through Craft") }
            alone.append(seconds * 1000)
            print(String(format: "  round %d/%d: through craft %.2f ms per example, numpy alone %.2f ms", round + 1, rounds, craft.last!, alone.last!))
        }
        let (ours, theirs) = (QuantizeBenchmark.median(craft), QuantizeBenchmark.median(alone))
        QuantizeBenchmark.printTable([
            ["eval loop", "ms per example", "vs numpy alone"],
            ["numpy GPT-2 on its own (Python)", String(format: "%.2f", theirs), "1.00x"],
            ["craft eval loop, numpy plugin backend", String(format: "%.2f", ours), String(format: "%.2fx", ours / theirs)],
        ])
        Summary.line("plugin eval", String(format: "%.2fx the numpy model's own time (target <= 1.3x); answers identical", ours / theirs))
    }
}
