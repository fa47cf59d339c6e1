// `craft-bench plugin`: what a runtime plugin costs per call (docs/runtime-protocol.md). The
// miniature's SigLIP-VQ encoder (64 tokens per image) is run three ways in one process, alternating
// rounds, medians: Craft's built-in runtime; the numpy plugin (examples/runtime-plugin-python); and a
// null plugin that answers every `encode` at once with zero codes, whose time is the protocol's
// round-trip overhead (framing, pipes, Python's own reading and writing, Craft's checks).
// Results and the command: docs/benchmarks.md ("Runtime plugins").
//
//   craft-bench plugin [--rounds 5] [--calls 200]
import CraftBundles
import CraftCore
import CraftImaging
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
        var rounds = 5, calls = 200
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--rounds": rounds = Int(iterator.next() ?? "") ?? rounds
            case "--calls": calls = Int(iterator.next() ?? "") ?? calls
            default: throw BenchmarkError("unknown option \(argument); usage: craft-bench plugin [--rounds N] [--calls N]", usage: true)
            }
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("craft-bench-plugin-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let root = URL(fileURLWithPath: peerScript("x")).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let plugins = scratch.appendingPathComponent("plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: true)
        try nullPlugin.write(to: plugins.appendingPathComponent("null.py"), atomically: true, encoding: .utf8)
        let numpyScript = root.appendingPathComponent("examples/runtime-plugin-python/craft-runtime-numpy-siglip-vq").path
        for (id, command) in [("numpy-siglip-vq", numpyScript), ("null-encoder", plugins.appendingPathComponent("null.py").path)] {
            let executable = plugins.appendingPathComponent("craft-runtime-\(id)")
            try "#!/bin/sh\nexec \"\(peerPython)\" \"\(command)\" \"$@\"\n".write(to: executable, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: executable.path)
        }
        var registry = RuntimeRegistry.craftDefault
        registry.resolver = PluginRuntimes(searchPath: PluginSearchPath(environment: ["CRAFT_RUNTIME_PATH": plugins.path]))
        let packed = root.appendingPathComponent("registry/bundles/digits-siglip-vq/digits-siglip-vq-1.1.0.craft")
        func bundle(runtime: String?) throws -> UnpackedBundle {
            let unpacked = try BundleArchive.unpack(packed, into: scratch.appendingPathComponent("bundle-\(runtime ?? "built-in")"))
            guard let runtime else { return unpacked }
            let manifestURL = unpacked.directory.appendingPathComponent("craft.json")
            var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as! [String: Any]
            manifest["runtime"] = ["id": runtime, "version": "1.0.0"]
            try JSONSerialization.data(withJSONObject: manifest).write(to: manifestURL)
            return try BundleArchive.open(directory: unpacked.directory)
        }
        let encoders: [(String, any VisionEncoder)] = [
            ("built-in siglip-vq", try registry.loadEncoder(try bundle(runtime: nil))),
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
        print(String(format: "round trip of one 64-token image through the protocol: %.3f ms (target < 1 ms)", overhead))
    }
}
