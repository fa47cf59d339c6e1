import CraftBundles
import CraftCore
import CraftImaging
import Foundation
import RuntimeTestSupport
import Testing

@testable import CraftRuntimes
@testable import CraftServe

/// A backend that decodes one token (id 1, the word "go") per step, forever unless a request asks for
/// at most 100 tokens: only a client that leaves, a timeout or a full queue can end its long requests.
struct EndlessBackend: ContinuousBatchingBackend {
    let codebookHash: String
    var contextLength: Int { 64 }
    func tokenize(_ text: String) throws -> [Int32] { text.split(separator: " ").map { _ in 2 } }
    func detokenize(_ tokens: [Int32]) throws -> String { tokens.map { _ in "go" }.joined(separator: " ") }
    func generate(_ prompt: [PromptSegment], options: GenerationOptions) throws -> GeneratedText {
        GeneratedText(text: try detokenize(Array(repeating: 1, count: options.maximumNewTokens)),
                      tokens: Array(repeating: 1, count: options.maximumNewTokens), finishReason: .length)
    }
    func makeDecodingBatch() -> any DecodingBatch { Batch(backend: self) }

    struct Batch: DecodingBatch {
        let backend: EndlessBackend
        var activeIDs: [Int] = []
        var limits: [Int: Int] = [:]
        var counts: [Int: Int] = [:]

        mutating func join(_ requests: [DecodingRequest]) throws -> [DecodingStep] {
            for request in requests {
                activeIDs.append(request.id)
                limits[request.id] = request.options.maximumNewTokens <= 100 ? request.options.maximumNewTokens : .max
                counts[request.id] = 0
            }
            return try step(requests.map(\.id))
        }

        mutating func step() throws -> [DecodingStep] {
            // 20 ms a step: a 10-token request stays active for 200 ms, long enough for the tests'
            // 50 ms metric polls to see it on a loaded machine (at 2 ms they missed it).
            Thread.sleep(forTimeInterval: 0.02)
            return try step(activeIDs)
        }

        private mutating func step(_ ids: [Int]) throws -> [DecodingStep] {
            ids.map { id in
                counts[id, default: 0] += 1
                guard counts[id]! >= limits[id]! else { return DecodingStep(id: id, token: 1, finished: nil) }
                activeIDs.removeAll { $0 == id }
                let tokens = [Int32](repeating: 1, count: counts[id]!)
                return DecodingStep(id: id, token: 1, finished: GeneratedText(text: (try? backend.detokenize(tokens)) ?? "", tokens: tokens, finishReason: .length))
            }
        }

        mutating func leave(_ id: Int) { activeIDs.removeAll { $0 == id } }
    }
}

@Suite("craft serve's queue, time limit, departures and shutdown", .serialized)
struct SchedulingTests {
    func endlessPipeline(_ scratch: Scratch) throws -> Pipeline {
        var runtimes = RuntimeRegistry.craftDefault
        runtimes.registerBackend("llama", versions: .any, summary: "endless test backend") { bundle in
            EndlessBackend(codebookHash: bundle.manifest.codebook.hash)
        }
        return try ServeFixtures.pipeline(scratch, runtimes: runtimes)
    }

    func body(_ pipeline: Pipeline, tokens: Int, stream: Bool = false) throws -> [String: Any] {
        ServeFixtures.body(model: ChatServer.modelID(pipeline), image: ServeFixtures.dataURL(try ServeFixtures.image().png),
                           prompt: "what is this ?", extra: ["max_tokens": tokens, "stream": stream])
    }

    /// Polls `/metrics` until `name` reads `value` (at most 1200 polls 50 ms apart).
    func waitForMetric(_ server: TestServer, _ name: String, _ value: Double) async throws -> Bool {
        try await waitForMetrics(server, [name: value])
    }

    /// Polls /metrics until every named metric has its value in the same exposition (at most a minute).
    func waitForMetrics(_ server: TestServer, _ expected: [String: Double]) async throws -> Bool {
        for _ in 0..<1200 {
            let text = try await server.request("/metrics").text
            if expected.allSatisfy({ ChatServerTests.metric(text, $0.key) == $0.value }) { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test("a full queue answers 429 with Retry-After; a request past its time limit gets 504 and frees its slot")
    func queueAndTimeout() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pipeline = try endlessPipeline(scratch)
        var settings = ServeSettings()
        settings.maximumBatch = 1
        settings.maximumQueue = 1
        settings.maximumTokens = 1000
        // Long enough that the first request still holds the slot while the second is queued and the
        // third refused, even on a loaded machine (3 s and 10 s were not, with the documentation and
        // help-example suites running alongside on two cores).
        settings.requestTimeout = 30
        let server = try await TestServer(pipelines: [pipeline], settings: settings)
        // The first request holds the only slot until its time runs out; the second waits in the queue.
        let first = Task { try await server.chat(try body(pipeline, tokens: 1000)) }
        #expect(try await waitForMetric(server, "craft_active_sequences", 1))
        // The time limit counts from arrival for the queued request too: it arrives 5 s after the first so
        // that it still has 5 s left when the first one's time runs out and its slot frees.
        try await Task.sleep(for: .seconds(5))
        let second = Task { try await server.chat(try body(pipeline, tokens: 3)) }
        #expect(try await waitForMetric(server, "craft_queue_depth", 1))
        let refused = try await server.chat(try body(pipeline, tokens: 3))
        #expect(refused.status == 429 && refused.errorCode == "queue_full" && refused.headers["retry-after"] == "1", "\(refused.text)")
        let timedOut = try await first.value
        #expect(timedOut.status == 504 && timedOut.errorCode == "timeout", "\(timedOut.text)")
        let answered = try await second.value
        #expect(answered.status == 200 && ServeFixtures.content(answered) == "go go go", "\(answered.text)")
        try await server.stop()
    }

    @Test("a client that leaves mid-stream frees its slot for the next request")
    func departureFreesTheSlot() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pipeline = try endlessPipeline(scratch)
        var settings = ServeSettings()
        settings.maximumBatch = 1
        settings.maximumTokens = 1000
        let server = try await TestServer(pipelines: [pipeline], settings: settings)
        // curl reads the endless stream for a second, then hangs up.
        let request = scratch.path("endless.json")
        try JSONSerialization.data(withJSONObject: try body(pipeline, tokens: 1000, stream: true)).write(to: request)
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        curl.arguments = ["curl", "-sN", "--max-time", "1", "-o", "/dev/null", "-H", "Content-Type: application/json",
                          "--data-binary", "@\(request.path)", server.base + "/v1/chat/completions"]
        try curl.run()
        curl.waitUntilExit()
        #expect(curl.terminationStatus == 28, "curl should stop on its own time limit")
        // With one slot, this request can only be decoded once the endless one has left.
        let next = try await server.chat(try body(pipeline, tokens: 2))
        #expect(next.status == 200 && ServeFixtures.content(next) == "go go")
        #expect(try await waitForMetric(server, "craft_active_sequences", 0))
        try await server.stop()
    }

    @Test("shutdown stops accepting but finishes the requests in flight")
    func gracefulShutdown() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pipeline = try endlessPipeline(scratch)
        var settings = ServeSettings()
        settings.maximumBatch = 2
        let server = try await TestServer(pipelines: [pipeline], settings: settings)
        // Long answers (100 steps of 20 ms) so that all four requests have reached the server, two decoding
        // and two queued, before it is told to stop: a request still in the kernel's accept backlog when the
        // listener closes is reset, which is right, but it is not what this test is about.
        let tokens = 100
        let inFlight = (0..<4).map { _ in Task { try await server.chat(try body(pipeline, tokens: tokens, stream: true)) } }
        #expect(try await waitForMetrics(server, ["craft_active_sequences": 2, "craft_queue_depth": 2]))
        try await server.stop()
        for task in inFlight {
            let reply = try await task.value
            #expect(reply.status == 200 && ServeFixtures.content(reply) == Array(repeating: "go", count: tokens).joined(separator: " "))
        }
        await #expect(throws: (any Error).self) { _ = try await server.request("/health") }
    }
}
