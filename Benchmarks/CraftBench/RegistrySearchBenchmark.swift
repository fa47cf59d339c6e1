// `craft-bench registry-search`: `craft-registry search` on a remote registry of many names, read
// through its search index (index/search.tsv) from a static server on 127.0.0.1
// (scripts/static_registry_server.py), cold (an empty cache: the index is downloaded) and warm (the
// cached index revalidated with its ETag, answered 304), for queries with one hit, hundreds and
// thousands. Also a search through the shards alone (a registry without a search index) at a smaller
// size, for comparison.
// Results and the command: docs/benchmarks.md ("Remote registries: search").
//
//   craft-bench registry-search [--names 100000] [--rounds 5] [--query TEXT ...] [--shard-names 500]
import CraftBundles
import CraftRegistry
import Foundation

enum RegistrySearchBenchmark {
    static func run(arguments: [String]) throws {
        var names = 100_000, rounds = 5, shardNames = 500
        var queries: [String] = []
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--names": names = Int(iterator.next() ?? "") ?? names
            case "--rounds": rounds = Int(iterator.next() ?? "") ?? rounds
            case "--query": queries.append(iterator.next() ?? "")
            case "--shard-names": shardNames = Int(iterator.next() ?? "") ?? shardNames
            default:
                throw BenchmarkError("unknown option \(argument); usage: craft-bench registry-search [--names N] [--rounds N] [--query TEXT] [--shard-names N]", usage: true)
            }
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("craft-registry")
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw BenchmarkError("\(executable.path) is missing; build it with swift build --product craft-registry (same configuration as craft-bench)")
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("craft-bench-search-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let root = URL(fileURLWithPath: peerScript("x")).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

        print("craft-bench registry-search: writing a registry of \(names) names ...")
        let (large, middle) = try makeRegistry(at: scratch.appendingPathComponent("large"), names: names, searchIndex: true)
        // One hit (an exact name), hundreds, thousands.
        if queries.isEmpty { queries = [middle, "fundus flood weld", "retina lesion"] }
        _ = try makeRegistry(at: scratch.appendingPathComponent("small"), names: shardNames, searchIndex: false)
        let size = (try FileManager.default.attributesOfItem(atPath: large.appendingPathComponent(SearchIndex.relativePath).path)[.size] as? NSNumber)?.intValue ?? 0
        print("craft-bench registry-search: index/search.tsv is \(String(format: "%.1f", Double(size) / 1e6)) MB; CPU: \(HalfPrecisionBenchmark.cpuModel()); load average \(ModelBenchmark.loadAverage())")

        let server = try StaticRegistryServer(root: root, directory: scratch)
        defer { server.stop() }
        func search(_ registry: String, _ query: String, cache: URL) throws -> (seconds: Double, output: String) {
            let process = Process()
            process.executableURL = executable
            process.arguments = ["--registry", "\(server.url)/\(registry)", "search", query]
            var environment = ProcessInfo.processInfo.environment
            environment["CRAFT_CACHE"] = cache.path
            environment["CRAFT_CONFIG"] = scratch.appendingPathComponent("no-config.json").path
            process.environment = environment
            let output = Pipe()
            process.standardOutput = output
            let start = DispatchTime.now().uptimeNanoseconds
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            guard process.terminationStatus == 0 else { throw BenchmarkError("craft-registry search exited \(process.terminationStatus)") }
            return (seconds, String(decoding: data, as: UTF8.self))
        }
        var table = [["query", "hits", "cold ms", "warm ms", "in process, warm ms"]]
        var warmMedians: [Double] = []
        let warmCache = scratch.appendingPathComponent("cache-warm")
        for query in queries {
            var cold: [Double] = [], warm: [Double] = [], library: [Double] = []
            var hits = 0
            _ = try search("large", query, cache: warmCache)
            for round in 0..<rounds {
                let coldCache = scratch.appendingPathComponent("cache-cold-\(round)")
                cold.append(try search("large", query, cache: coldCache).seconds)
                try? FileManager.default.removeItem(at: coldCache)
                let result = try search("large", query, cache: warmCache)
                warm.append(result.seconds)
                hits = max(0, result.output.split(separator: "\n").count - 1)
                // The library call alone (no process start), a new Registry each time, the same warm cache.
                let start = DispatchTime.now().uptimeNanoseconds
                let registry = Registry(remote: URL(string: "\(server.url)/large")!, cache: BundleCache(root: warmCache))
                _ = try registry.search(query)
                library.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                print(String(format: "  \"%@\" round %d/%d: cold %.0f ms, warm %.0f ms, in process %.0f ms", query, round + 1, rounds,
                             cold.last! * 1e3, warm.last! * 1e3, library.last! * 1e3))
            }
            let median = QuantizeBenchmark.median
            warmMedians.append(median(warm))
            table.append(["\"\(query)\"", "\(hits)", String(format: "%.0f", median(cold) * 1e3), String(format: "%.0f", median(warm) * 1e3),
                          String(format: "%.0f", median(library) * 1e3)])
        }
        var shards: [Double] = []
        for round in 0..<rounds {
            let shardCache = scratch.appendingPathComponent("cache-shards-\(round)")
            shards.append(try search("small", queries[0], cache: shardCache).seconds)
            try? FileManager.default.removeItem(at: shardCache)
        }
        print("search of \(names) names through index/search.tsv (craft-registry processes; medians of \(rounds)):")
        QuantizeBenchmark.printTable(table)
        print(String(format: "without a search index, %d names (one shard each), cold: %.0f ms", shardNames, QuantizeBenchmark.median(shards) * 1e3))
        Summary.line("registry-search", String(format: "warm search of %d names, craft-registry processes: %@ ms (target < 300 ms)", names, warmMedians.map { String(format: "%.0f", $0 * 1e3) }.joined(separator: " / ")))
    }

    /// A registry of `names` encoders and backends: registry.json and one shard per name (no bundle
    /// files: search reads only the index), with or without its search index.
    static func makeRegistry(at directory: URL, names count: Int, searchIndex: Bool) throws -> (directory: URL, middleName: String) {
        let words = ["retina", "lesion", "dermatology", "chest", "xray", "digits", "handwritten", "satellite", "crop", "field",
                     "histology", "slide", "tumour", "fundus", "scan", "street", "sign", "traffic", "bird", "species", "leaf",
                     "disease", "fabric", "defect", "weld", "crack", "bridge", "road", "river", "flood", "cloud", "forest",
                     "quantized", "codebook", "small", "large", "fast", "accurate", "tiny", "base"]
        let domains = ["medical", "radiology", "ophthalmology", "remote-sensing", "agriculture", "industry", "traffic", "biology", "documents", "general"]
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        // Hash-shaped (64 hex digits), distinct per bundle; the values themselves do not matter.
        func hash(_ text: String) -> String {
            var seed = UInt64(truncatingIfNeeded: text.hashValue) | 1
            return "sha256:" + (0..<4).map { _ in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return String(format: "%016llx", seed)
            }.joined()
        }
        var shards: [IndexShard] = []
        shards.reserveCapacity(count)
        for position in 0..<count {
            let name = String(format: "%@-%06d", words[next(words.count)], position)
            let kind: BundleKind = position % 2 == 0 ? .encoder : .backend
            let summary = (0..<7).map { _ in words[next(words.count)] }.joined(separator: " ").capitalized
            let version = "1.\(next(5)).0"
            let record = IndexedVersion(
                version: version, kind: kind, summary: summary, domains: [domains[next(domains.count)]], license: "MIT",
                runtime: .init(id: kind == .encoder ? "siglip-vq" : "llama", version: "1.0.0"),
                codebook: .init(hash: hash("codebook \(position / 2)"), entries: 512, dim: 64, depth: 1, metric: "l2"),
                digest: hash(name), size: Int64(1_000_000 + next(100_000_000)), path: "bundles/\(name)/\(name)-\(version).craft")
            shards.append(IndexShard(name: name, versions: [record]))
        }
        for shard in shards {
            let url = directory.appendingPathComponent(IndexShard.relativePath(for: shard.name))
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try JSONFormatting.encode(shard).write(to: url)
        }
        try JSONFormatting.encode(RegistryIndex(names: shards.map(\.name).sorted())).write(to: directory.appendingPathComponent("registry.json"))
        if searchIndex {
            try SearchIndex.document(of: shards).write(to: directory.appendingPathComponent(SearchIndex.relativePath))
        }
        return (directory, shards[count / 2].name)
    }
}
