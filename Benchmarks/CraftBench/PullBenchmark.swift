// `craft-bench pull`: downloading a bundle from a remote registry, verification included (its size
// and sha256 checked as it streams), against curl downloading the same file from the same server in
// the same run. The server is scripts/static_registry_server.py (Python's http.server with ranges and
// ETags) on 127.0.0.1, serving a registry that holds one bundle of incompressible bytes.
// Results and the command: docs/benchmarks.md ("Remote registries").
//
//   craft-bench pull [--megabytes 200] [--rounds 5]
import CraftBundles
import CraftRegistry
import Foundation

enum PullBenchmark {
    static func run(arguments: [String]) throws {
        var megabytes = 200, rounds = 5
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--megabytes": megabytes = Int(iterator.next() ?? "") ?? megabytes
            case "--rounds": rounds = Int(iterator.next() ?? "") ?? rounds
            default: throw BenchmarkError("unknown option \(argument); usage: craft-bench pull [--megabytes N] [--rounds N]", usage: true)
            }
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("craft-bench-pull-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let root = URL(fileURLWithPath: peerScript("x")).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

        // A registry with one bundle of incompressible bytes.
        print("craft-bench pull: making a \(megabytes) MB bundle ...")
        let source = scratch.appendingPathComponent("bundle")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        var generator = SystemRandomNumberGenerator()
        let payload = source.appendingPathComponent("weights.bin")
        FileManager.default.createFile(atPath: payload.path, contents: nil)
        let handle = try FileHandle(forWritingTo: payload)
        for _ in 0..<megabytes {
            var block = [UInt64](repeating: 0, count: 1 << 17)
            for index in block.indices { block[index] = generator.next() }
            try handle.write(contentsOf: block.withUnsafeBytes { Data($0) })
        }
        try handle.close()
        let manifest: [String: Any] = [
            "schema": "craft.bundle/v1", "kind": "backend", "name": "big-backend", "version": "1.0.0", "license": "MIT",
            "summary": "incompressible bytes for the pull benchmark", "domains": ["bench"],
            "runtime": ["id": "bench", "version": "1.0.0"],
            "codebook": ["hash": "sha256:" + String(repeating: "0", count: 64), "entries": 4, "dim": 4, "depth": 1, "metric": "l2"],
            "backend": ["context_length": 16],
            "files": [["path": "weights.bin"]],
        ]
        try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]).write(to: source.appendingPathComponent("craft.json"))
        let packed = try BundleArchive.pack(directory: source, to: scratch.appendingPathComponent("big-backend-1.0.0.craft"))
        let registry = Registry(root: scratch.appendingPathComponent("registry"))
        try FileManager.default.createDirectory(at: registry.root, withIntermediateDirectories: true)
        let published = try registry.publish(packed.url)
        let size = published.record.size

        let server = try StaticRegistryServer(root: root, directory: registry.root)
        defer { server.stop() }
        let base = server.url
        let fileURL = "\(base)/\(published.record.path)"

        print("craft-bench pull: \(String(format: "%.0f MB", Double(size) / 1e6)) bundle, \(rounds) alternating rounds; CPU: \(HalfPrecisionBenchmark.cpuModel()); load average \(ModelBenchmark.loadAverage())")
        var craft: [Double] = [], curl: [Double] = []
        for round in 0..<rounds {
            // curl to a file.
            let target = scratch.appendingPathComponent("curl.craft")
            try? FileManager.default.removeItem(at: target)
            var start = DispatchTime.now().uptimeNanoseconds
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["curl", "-s", "-o", target.path, fileURL]
            try process.run()
            process.waitUntilExit()
            curl.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)

            // Craft: a fresh cache, the download checked against the index's size and digest.
            let cache = BundleCache(root: scratch.appendingPathComponent("cache-\(round)"))
            let remote = Registry(remote: URL(string: base)!, cache: cache)
            let resolved = try remote.resolve(BundleReference(parsing: "big-backend@1.0.0"))
            start = DispatchTime.now().uptimeNanoseconds
            try remote.localFile(of: resolved)
            craft.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            try? FileManager.default.removeItem(at: cache.root)
            print(String(format: "  round %d/%d: curl %.0f MB/s, craft %.0f MB/s", round + 1, rounds,
                         Double(size) / 1e6 / curl.last!, Double(size) / 1e6 / craft.last!))
        }
        let (ours, theirs) = (Double(size) / 1e6 / QuantizeBenchmark.median(craft), Double(size) / 1e6 / QuantizeBenchmark.median(curl))
        QuantizeBenchmark.printTable([
            ["download", "MB/s (median)", "vs curl"],
            ["curl -o FILE", String(format: "%.0f", theirs), "1.00x"],
            ["craft (size and sha256 checked as it streams)", String(format: "%.0f", ours), String(format: "%.2fx", ours / theirs)],
        ])
        print(String(format: "pull throughput: %.2fx curl's (target >= 0.8x)", ours / theirs))
    }
}
