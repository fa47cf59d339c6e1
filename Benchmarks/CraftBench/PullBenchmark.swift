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
        // The second peer checks the file as Craft does, with the same SHA-256 code (OpenSSL's, with
        // the CPU's SHA instructions) on the other end of a pipe.
        let hasOpenSSL = (try? Self.shell("command -v openssl >/dev/null")) != nil
        var craft: [Double] = [], curl: [Double] = [], checked: [Double] = [], craftCPU: [Double] = [], curlCPU: [Double] = []
        for round in 0..<rounds {
            let target = scratch.appendingPathComponent("curl.craft")
            try? FileManager.default.removeItem(at: target)
            var (seconds, cpu) = try Self.shell("curl -s -o '\(target.path)' '\(fileURL)'")
            curl.append(seconds)
            curlCPU.append(cpu)
            if hasOpenSSL {
                try? FileManager.default.removeItem(at: target)
                (seconds, _) = try Self.shell("curl -s '\(fileURL)' | tee '\(target.path)' | openssl dgst -sha256 >/dev/null")
                checked.append(seconds)
            }

            // Craft: a fresh cache, the download checked against the index's size and digest.
            let cache = BundleCache(root: scratch.appendingPathComponent("cache-\(round)"))
            let remote = Registry(remote: URL(string: base)!, cache: cache)
            let resolved = try remote.resolve(BundleReference(parsing: "big-backend@1.0.0"))
            let start = DispatchTime.now().uptimeNanoseconds
            let cpuStart = QuantizeBenchmark.cpuSeconds(RUSAGE_SELF)
            try remote.localFile(of: resolved)
            craft.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            craftCPU.append(QuantizeBenchmark.cpuSeconds(RUSAGE_SELF) - cpuStart)
            try? FileManager.default.removeItem(at: cache.root)
            print(String(format: "  round %d/%d: curl %.0f MB/s (%.0f CPU-ms), craft %.0f MB/s (%.0f CPU-ms)", round + 1, rounds,
                         Double(size) / 1e6 / curl.last!, curlCPU.last! * 1000, Double(size) / 1e6 / craft.last!, craftCPU.last! * 1000))
        }
        let (ours, theirs) = (Double(size) / 1e6 / QuantizeBenchmark.median(craft), Double(size) / 1e6 / QuantizeBenchmark.median(curl))
        var rows = [
            ["download", "MB/s (median)", "vs curl", "client CPU-ms (median)"],
            ["curl -o FILE", String(format: "%.0f", theirs), "1.00x", String(format: "%.0f", QuantizeBenchmark.median(curlCPU) * 1000)],
        ]
        if !checked.isEmpty {
            let speed = Double(size) / 1e6 / QuantizeBenchmark.median(checked)
            rows.append(["curl | tee FILE | openssl dgst -sha256", String(format: "%.0f", speed), String(format: "%.2fx", speed / theirs), "-"])
        }
        rows.append(["craft (size and sha256 checked as it streams)", String(format: "%.0f", ours), String(format: "%.2fx", ours / theirs),
                     String(format: "%.0f", QuantizeBenchmark.median(craftCPU) * 1000)])
        QuantizeBenchmark.printTable(rows)
        Summary.line("pull", String(format: "%.2fx curl's throughput, verification included (target >= 0.8x)", ours / theirs))
    }

    /// Runs `command` with `/bin/sh -c`; its wall-clock seconds and the CPU seconds of its processes.
    @discardableResult
    static func shell(_ command: String) throws -> (seconds: Double, cpu: Double) {
        let cpuStart = QuantizeBenchmark.cpuSeconds(RUSAGE_CHILDREN)
        let start = DispatchTime.now().uptimeNanoseconds
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchmarkError("`\(command)` failed (exit \(process.terminationStatus))") }
        return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, QuantizeBenchmark.cpuSeconds(RUSAGE_CHILDREN) - cpuStart)
    }
}
