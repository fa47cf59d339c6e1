// `craft-bench serve`: craft serve's throughput and latency over real HTTP on 127.0.0.1, against a
// sequential loop over the same pair in the same run (Pipeline.answer, one request after another, no
// server). The pair: the embedded digits-siglip-vq@1.1.0 encoder (64 visual tokens per image) and a
// backend over the ~110M Llama of `craft-bench llama` (hidden 768, 12 layers, vocab 32000; weights
// made by Benchmarks/peers/torch_models.py), with no end-of-sequence token so every answer is exactly
// --tokens tokens. Each round alternates: the sequential loop, the same answers generated together
// without a server (Pipeline.measuredAnswers, 8 at a time), then each concurrency level (clients, each
// a curl process per request, sending requests back to back). Reported: requests/s, generated tokens/s, the ratio to the
// sequential loop and to one stream, and p50/p99 latency; greedy answers are checked equal to the loop's.
// Results and the exact command: docs/benchmarks.md ("craft serve").
//
//   craft-bench serve [--concurrency 1,8,32] [--tokens 64] [--rounds 3] [--threads 2] [--models DIR]
import CraftBundles
import CraftCore
import CraftImaging
import CraftRuntimes
import CraftServe
import Foundation
import SafeTensors
import TensorCore
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

enum ServeBenchmark {
    struct Options {
        var concurrency = [1, 8, 32]
        var tokens = 64
        var rounds = 3
        var threads = 2
        var models = ModelBenchmark.Options().models
    }

    static let prompt = "what digit is this ?"

    static func run(arguments: [String]) throws {
        var options = Options()
        var reader = BenchmarkArguments(arguments)
        while let argument = reader.next() {
            switch argument {
            case "--concurrency": options.concurrency = try reader.threadCounts(after: argument)
            case "--tokens": options.tokens = try reader.positiveInteger(after: argument)
            case "--rounds": options.rounds = try reader.positiveInteger(after: argument)
            case "--threads": options.threads = try reader.positiveInteger(after: argument)
            case "--models":
                guard let path = reader.next(), !path.isEmpty else { throw BenchmarkError("--models needs a directory", usage: true) }
                options.models = path
            default: throw BenchmarkError("unknown option \(argument); see the header of ServeBenchmark.swift", usage: true)
            }
        }
        try ModelBenchmark.prepareModels(in: options.models)
        Tensor.threadCount = options.threads
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("craft-bench-serve-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let pipeline = try makePipeline(models: options.models, in: scratch)
        let images = try (0..<8).map { index in
            try ImageInput.rgbImage(contentsOf: URL(fileURLWithPath: String(format: "examples/data/digits/images/strong/%04d.png", index)))
        }
        let pngs = try (0..<8).map { index in
            try Data(contentsOf: URL(fileURLWithPath: String(format: "examples/data/digits/images/strong/%04d.png", index)))
        }
        let generation = GenerationOptions(maximumNewTokens: options.tokens)
        print("craft-bench serve: \(ChatServer.modelID(pipeline)) (backend: ~110M Llama, float32), \(options.tokens) tokens per answer, "
              + "\(options.rounds) alternating rounds, \(options.threads) thread(s); BLAS: \(BLAS.kernels.summary); "
              + "load average \(ModelBenchmark.loadAverage())")
        print("CPU: \(HalfPrecisionBenchmark.cpuModel())")

        // What each request must answer: the sequential loop's greedy answers.
        let expected = try images.map { try pipeline.answer(image: $0, prompt: prompt, options: generation).text }

        var settings = ServeSettings()
        settings.port = 0
        settings.maximumBatch = max(options.concurrency.max() ?? 1, 1)
        settings.maximumTokens = options.tokens
        let server = try ChatServer(pipelines: [pipeline], settings: settings)
        let port = try startServer(server)
        let model = ChatServer.modelID(pipeline)

        var sequential: [Measurement] = []
        var batched: [Measurement] = []
        var served: [Int: [Measurement]] = [:]
        for round in 1...options.rounds {
            let count = 4
            var latencies: [Double] = []
            let start = Date()
            for index in 0..<count {
                let begin = Date()
                _ = try pipeline.answer(image: images[index % images.count], prompt: prompt, options: generation)
                latencies.append(Date().timeIntervalSince(begin))
            }
            sequential.append(Measurement(requests: count, tokens: count * options.tokens, seconds: Date().timeIntervalSince(start), latencies: latencies))
            print(String(format: "round %d: sequential loop %.2f tokens/s", round, sequential.last!.tokensPerSecond))
            // The same work without a server: 8 answers generated together by Pipeline.measuredAnswers.
            let batchStart = Date()
            let answers = try pipeline.measuredAnswers(images: images, prompts: Array(repeating: prompt, count: images.count), options: generation)
            let batchSeconds = Date().timeIntervalSince(batchStart)
            guard answers.map(\.answer.text) == expected else { throw BenchmarkError("batched answers differ from the sequential loop's") }
            batched.append(Measurement(requests: images.count, tokens: images.count * options.tokens, seconds: batchSeconds,
                                       latencies: Array(repeating: batchSeconds, count: images.count)))
            print(String(format: "round %d: batched loop (8 together, no server) %.2f tokens/s", round, batched.last!.tokensPerSecond))
            for concurrency in options.concurrency {
                let perClient = concurrency == 1 ? 4 : 2
                let before = try batchSizes(port: port)
                var measurement = try load(port: port, model: model, pngs: pngs, expected: expected, concurrency: concurrency,
                                           perClient: perClient, tokens: options.tokens)
                let after = try batchSizes(port: port)
                measurement.meanBatch = (after.sum - before.sum) / max(1, after.count - before.count)
                served[concurrency, default: []].append(measurement)
                print(String(format: "round %d: concurrency %d: %.2f tokens/s, %.1f sequences per decoding step on average",
                             round, concurrency, measurement.tokensPerSecond, measurement.meanBatch))
            }
        }
        try stopServer(server)

        let loopRate = median(sequential.map(\.tokensPerSecond))
        let oneStream = served[1].map { median($0.map(\.tokensPerSecond)) }
        var rows: [[String]] = [[
            "sequential loop", "1", String(format: "%.2f", median(sequential.map(\.requestsPerSecond))), String(format: "%.1f", loopRate),
            "1.00x", "-", percentile(sequential.flatMap(\.latencies), 0.5), percentile(sequential.flatMap(\.latencies), 0.99),
        ]]
        let batchedRate = median(batched.map(\.tokensPerSecond))
        rows.append([
            "batched loop, no server", "8", String(format: "%.2f", median(batched.map(\.requestsPerSecond))), String(format: "%.1f", batchedRate),
            String(format: "%.2fx", batchedRate / loopRate), oneStream.map { String(format: "%.2fx", batchedRate / $0) } ?? "-",
            percentile(batched.flatMap(\.latencies), 0.5), percentile(batched.flatMap(\.latencies), 0.99),
        ])
        for concurrency in options.concurrency {
            let samples = served[concurrency] ?? []
            let rate = median(samples.map(\.tokensPerSecond))
            rows.append([
                "craft serve", "\(concurrency)", String(format: "%.2f", median(samples.map(\.requestsPerSecond))), String(format: "%.1f", rate),
                String(format: "%.2fx", rate / loopRate), oneStream.map { String(format: "%.2fx", rate / $0) } ?? "-",
                percentile(samples.flatMap(\.latencies), 0.5), percentile(samples.flatMap(\.latencies), 0.99),
            ])
        }
        for concurrency in options.concurrency where concurrency > 1 {
            let rate = median((served[concurrency] ?? []).map(\.tokensPerSecond))
            Summary.line("serve", String(format: "%d concurrent requests: %.2fx the sequential loop's tokens/s", concurrency, rate / loopRate))
        }
        print("")
        QuantizeBenchmark.printTable([["case", "concurrency", "requests/s", "tokens/s", "vs loop", "vs 1 stream", "p50 s", "p99 s"]] + rows)
        print("(medians of \(options.rounds) rounds; latency percentiles over every request; load average \(ModelBenchmark.loadAverage()))")
    }

    struct Measurement {
        var requests: Int
        var tokens: Int
        var seconds: Double
        var latencies: [Double]
        var meanBatch = 1.0
        var tokensPerSecond: Double { Double(tokens) / seconds }
        var requestsPerSecond: Double { Double(requests) / seconds }
    }

    /// `concurrency` clients each sending `perClient` requests back to back; every answer checked.
    ///
    /// Each request is a `curl` process (a client outside the server's process, waiting in `poll`
    /// as real clients do; Foundation's URLSession on Linux spends CPU while it waits, which the
    /// server would then compete with).
    static func load(port: Int, model: String, pngs: [Data], expected: [String], concurrency: Int, perClient: Int, tokens: Int) throws -> Measurement {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("craft-bench-serve-bodies-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bodies = try pngs.enumerated().map { index, png in
            let url = directory.appendingPathComponent("body-\(index).json")
            try JSONSerialization.data(withJSONObject: [
                "model": model, "max_tokens": tokens,
                "messages": [["role": "user", "content": [
                    ["type": "image_url", "image_url": ["url": "data:image/png;base64," + png.base64EncodedString()]],
                    ["type": "text", "text": prompt]]]],
            ] as [String: Any]).write(to: url)
            return url
        }
        let url = "http://127.0.0.1:\(port)/v1/chat/completions"
        let outcome = Locked<(latencies: [Double], wrong: [String], failures: [String])>(([], [], []))
        let start = Date()
        let finished = DispatchGroup()
        for client in 0..<concurrency {
          finished.enter()
          // A thread per client: each waits on its curl, as that many independent clients would.
          Thread {
            defer { finished.leave() }
            for request in 0..<perClient {
                let index = (client + request) % pngs.count
                let output = directory.appendingPathComponent("reply-\(client)-\(request).json")
                let curl = Process()
                curl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                curl.arguments = ["curl", "-s", "--max-time", "3600", "-o", output.path, "-H", "Content-Type: application/json",
                                  "--data-binary", "@" + bodies[index].path, url]
                let begin = Date()
                do {
                    try curl.run()
                    curl.waitUntilExit()
                    let seconds = Date().timeIntervalSince(begin)
                    let data = try Data(contentsOf: output)
                    let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
                    let content = ((json?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
                    outcome.update {
                        $0.latencies.append(seconds)
                        if content != expected[index] { $0.wrong.append(content ?? String(decoding: data, as: UTF8.self)) }
                    }
                } catch {
                    outcome.update { $0.failures.append("curl exited \(curl.terminationStatus): \(error)") }
                }
            }
          }.start()
        }
        finished.wait()
        let seconds = Date().timeIntervalSince(start)
        let result = outcome.value
        guard result.failures.isEmpty, result.wrong.isEmpty else {
            throw BenchmarkError("at concurrency \(concurrency), \(result.failures.count) requests failed and \(result.wrong.count) answers differ from the sequential loop's (first: \(result.failures.first ?? result.wrong.first ?? ""))")
        }
        let requests = concurrency * perClient
        return Measurement(requests: requests, tokens: requests * tokens, seconds: seconds, latencies: result.latencies)
    }

    /// The server's `craft_batch_size` histogram sum and count (sequences per decoding step).
    static func batchSizes(port: Int) throws -> (sum: Double, count: Double) {
        let text = try String(contentsOf: URL(string: "http://127.0.0.1:\(port)/metrics")!, encoding: .utf8)
        func value(_ name: String) -> Double {
            text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        }
        return (value("craft_batch_size_sum"), value("craft_batch_size_count"))
    }

    // MARK: - The pair

    /// The embedded encoder and a backend bundle over the benchmark Llama with the encoder's codebook.
    static func makePipeline(models: String, in scratch: URL) throws -> Pipeline {
        let encoder = try BundleArchive.unpack(
            URL(fileURLWithPath: "registry/bundles/digits-siglip-vq/digits-siglip-vq-1.1.0.craft"), into: scratch.appendingPathComponent("encoder"))
        let codebook = encoder.manifest.codebook
        let directory = scratch.appendingPathComponent("backend-source")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let llama = URL(fileURLWithPath: models).appendingPathComponent("llama")
        try FileManager.default.copyItem(at: llama.appendingPathComponent("model.safetensors"), to: directory.appendingPathComponent("model.safetensors"))
        try FileManager.default.copyItem(at: llama.appendingPathComponent("config.json"), to: directory.appendingPathComponent("config.json"))
        try wordTokenizer(size: 32000).write(to: directory.appendingPathComponent("tokenizer.json"))
        var writer = SafeTensorsWriter()
        var generator = SplitMix64(seed: 7)
        try writer.add("projector.weight", floats: (0..<(768 * codebook.dimension)).map { _ in (Float(generator.next() >> 40) / Float(1 << 24) - 0.5) * 0.2 },
                       shape: [768, codebook.dimension])
        try writer.write(to: directory.appendingPathComponent("projector.safetensors"))
        let manifest: [String: Any] = [
            "schema": "craft.bundle/v1", "kind": "backend", "name": "bench-llama-110m", "version": "1.0.0",
            "summary": "the ~110M benchmark Llama behind the digits codebook", "domains": ["benchmark"], "license": "MIT",
            "runtime": ["id": "llama", "version": "1.0.0"],
            "codebook": ["hash": codebook.hash, "entries": codebook.entries, "dim": codebook.dimension, "depth": codebook.depth, "metric": "l2"],
            "backend": ["context_length": 1024, "tokenizer": "tokenizer.json", "prompt_template": "<image>{prompt}",
                        "projector": ["file": "projector.safetensors", "name": "projector.weight"]],
            "config": ["eos_token_ids": [Int]()],
            "files": [["path": "config.json"], ["path": "model.safetensors"], ["path": "tokenizer.json"], ["path": "projector.safetensors"]],
        ]
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]).write(to: directory.appendingPathComponent("craft.json"))
        let packed = try BundleArchive.pack(directory: directory, to: scratch.appendingPathComponent("backend.craft"))
        let backend = try BundleArchive.unpack(packed.url, into: scratch.appendingPathComponent("backend"))
        let report = checkCompatibility(encoder: encoder, backend: backend, runtimes: .craftDefault)
        return try Pipeline(pair: try report.requirePairing(), encoder: encoder, backend: backend)
    }

    /// A word-level tokenizer whose every id decodes (`w<i>`), so random weights' tokens are text.
    static func wordTokenizer(size: Int) throws -> Data {
        var vocab: [String: Int] = ["[UNK]": 0, "<s>": 1, "</s>": 2]
        for (offset, word) in ["what", "digit", "is", "this", "?"].enumerated() { vocab[word] = 3 + offset }
        for id in vocab.count..<size { vocab["w\(id)"] = id }
        let json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": [[String: Any]](),
            "normalizer": NSNull(), "pre_tokenizer": ["type": "Whitespace"], "post_processor": NSNull(), "decoder": NSNull(),
            "model": ["type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"],
        ]
        return try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
    }

    // MARK: - The server

    private static let serverTask = Locked<Task<Void, any Error>?>(nil)

    static func startServer(_ server: ChatServer) throws -> Int {
        let port = Locked<Int?>(nil)
        serverTask.update { $0 = Task { try await server.run { bound in port.update { $0 = bound } } } }
        let deadline = Date().addingTimeInterval(30)
        while port.value == nil, Date() < deadline { usleep(10_000) }
        guard let bound = port.value else { throw BenchmarkError("the server did not start") }
        return bound
    }

    static func stopServer(_ server: ChatServer) throws {
        let done = DispatchSemaphore(value: 0)
        Task {
            await server.shutdown()
            _ = try? await serverTask.value?.value
            done.signal()
        }
        done.wait()
    }

    // MARK: - Figures

    static func median(_ values: [Double]) -> Double { values.isEmpty ? .nan : QuantizeBenchmark.median(values) }

    static func percentile(_ values: [Double], _ fraction: Double) -> String {
        guard !values.isEmpty else { return "-" }
        let sorted = values.sorted()
        let index = min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded()))
        return String(format: "%.2f", sorted[index])
    }

}

/// A value behind a lock, for the client tasks.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
    func update(_ body: (inout Value) -> Void) {
        lock.lock()
        body(&stored)
        lock.unlock()
    }
}
