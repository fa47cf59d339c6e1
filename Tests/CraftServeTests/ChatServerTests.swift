import CraftBundles
import CraftCore
import CraftImaging
import Foundation
import RuntimeTestSupport
import Hummingbird
import Testing

@testable import CraftRuntimes
@testable import CraftServe

@Suite("craft serve's HTTP API on a tiny checked pair", .serialized)
struct ChatServerTests {
    @Test("plain and streamed answers to PNG and JPEG data URLs equal the pipeline's own answers")
    func answersEqualThePipeline() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pipeline = try ServeFixtures.pipeline(scratch)
        let server = try await TestServer(pipelines: [pipeline])
        let model = ChatServer.modelID(pipeline)
        #expect(model == "tiny-vq@1.0.0+tiny-llm@1.0.0")
        let png = try ServeFixtures.image(), jpeg = try ServeFixtures.jpeg()
        for (url, rgb) in [(ServeFixtures.dataURL(png.png), png.rgb), (ServeFixtures.dataURL(jpeg.data, type: "image/jpeg"), jpeg.rgb)] {
            let options = GenerationOptions(maximumNewTokens: 6)
            let expected = try pipeline.answer(image: rgb, prompt: "what is this ?", options: options)
            let plain = try await server.chat(ServeFixtures.body(model: model, image: url, prompt: "what is this ?", extra: ["max_tokens": 6]))
            #expect(plain.status == 200)
            #expect(ServeFixtures.content(plain) == expected.text)
            let usage = try #require(plain.json["usage"] as? [String: Any])
            let positions = try pipeline.backend.promptPositions(try pipeline.segments(image: rgb, prompt: "what is this ?"))
            #expect(usage["prompt_tokens"] as? Int == positions && usage["completion_tokens"] as? Int == expected.tokens.count)
            let choice = try #require((plain.json["choices"] as? [[String: Any]])?.first)
            #expect(choice["finish_reason"] as? String == (expected.finishReason == .length ? "length" : "stop"))
            let report = try #require(plain.json["craft"] as? [String: Any])
            #expect(report["visual_tokens_before"] as? Int == 16 && report["visual_tokens_after"] as? Int == 16)
            #expect(report["codebook_hash"] as? String == pipeline.pair.codebook.hash)

            let streamed = try await server.chat(ServeFixtures.body(
                model: model, image: url, prompt: "what is this ?",
                extra: ["max_tokens": 6, "stream": true, "stream_options": ["include_usage": true]]))
            #expect(streamed.status == 200 && streamed.headers["content-type"]?.hasPrefix("text/event-stream") == true)
            #expect(ServeFixtures.content(streamed) == expected.text)
            #expect(streamed.text.hasSuffix("data: [DONE]\n\n"))
            let events = ServeFixtures.events(streamed)
            #expect(events.allSatisfy { $0["object"] as? String == "chat.completion.chunk" && $0["model"] as? String == model })
            #expect((events.last?["usage"] as? [String: Any])?["completion_tokens"] as? Int == expected.tokens.count)
        }
        // Pruning through the extension: half of the 16 visual tokens, as the pipeline prunes.
        let pruned = try await server.chat(ServeFixtures.body(
            model: "tiny-vq+tiny-llm", image: ServeFixtures.dataURL(png.png), prompt: "what is this ?",
            extra: ["max_tokens": 4, "craft": ["keep_ratio": 0.5]]))
        let expected = try pipeline.answer(image: png.rgb, prompt: "what is this ?", keepRatio: 0.5, options: GenerationOptions(maximumNewTokens: 4))
        #expect(ServeFixtures.content(pruned) == expected.answer.text)
        let report = try #require(pruned.json["craft"] as? [String: Any])
        #expect(report["visual_tokens_after"] as? Int == 8)
        #expect((report["prefill_flops_pruned"] as? Double ?? .infinity) < (report["prefill_flops_full"] as? Double ?? 0))
        try await server.stop()
    }

    @Test("concurrent requests are decoded together and each gets the answer it gets alone")
    func concurrentRequestsAreBatched() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pipeline = try ServeFixtures.pipeline(scratch)
        var settings = ServeSettings()
        settings.maximumBatch = 8
        let server = try await TestServer(pipelines: [pipeline], settings: settings)
        let model = ChatServer.modelID(pipeline)
        let prompts = ["what is this ?", "what is", "this ? what", "is this what ?"]
        var expected: [String] = []
        var bodies: [[String: Any]] = []
        for index in 0..<24 {
            let image = try ServeFixtures.image(index % 4)
            let prompt = prompts[index / 4 % prompts.count]
            let keep = index % 3 == 0 ? 0.5 : 1
            let tokens = 3 + index % 5
            expected.append(try pipeline.answer(image: image.rgb, prompt: prompt, keepRatio: keep, options: GenerationOptions(maximumNewTokens: tokens)).answer.text)
            bodies.append(ServeFixtures.body(model: model, image: ServeFixtures.dataURL(image.png), prompt: prompt,
                                             extra: ["max_tokens": tokens, "craft": ["keep_ratio": keep], "stream": index % 2 == 0]))
        }
        let answers = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for (index, body) in try bodies.map({ try JSONSerialization.data(withJSONObject: $0) }).enumerated() {
                group.addTask { (index, ServeFixtures.content(try await server.request("/v1/chat/completions", method: "POST", body: body))) }
            }
            var answers = [String?](repeating: nil, count: bodies.count)
            for try await (index, answer) in group { answers[index] = answer }
            return answers
        }
        #expect(answers == expected.map { Optional($0) })
        let metrics = try await server.request("/metrics").text
        // Some decoding step held more than one sequence.
        let single = Self.metric(metrics, "craft_batch_size_bucket{le=\"1.0\"}")
        let steps = Self.metric(metrics, "craft_batch_size_count")
        #expect(steps > single, "\(metrics)")
        #expect(Self.metric(metrics, "craft_requests_total{route=\"/v1/chat/completions\",status=\"200\"}") == 24)
        try await server.stop()
    }

    static func metric(_ text: String, _ name: String) -> Double {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? -1
    }

    @Test("two pairs served side by side: each request goes to the pair its model names")
    func twoPairs() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let llama = try ServeFixtures.pipeline(scratch)
        let gpt2 = try ServeFixtures.pipeline(scratch, backend: "tiny-gpt2", model: "gpt2", runtime: "gpt2")
        let server = try await TestServer(pipelines: [llama, gpt2])
        let models = try await server.request("/v1/models")
        let ids = (models.json["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        #expect(ids == ["tiny-vq@1.0.0+tiny-llm@1.0.0", "tiny-vq@1.0.0+tiny-gpt2@1.0.0"])
        let image = try ServeFixtures.image()
        for (pipeline, model) in [(llama, "tiny-vq+tiny-llm"), (gpt2, "tiny-vq@1.0.0+tiny-gpt2@1.0.0")] {
            let reply = try await server.chat(ServeFixtures.body(model: model, image: ServeFixtures.dataURL(image.png), prompt: "what is this ?",
                                                                 extra: ["max_tokens": 5]))
            let expected = try pipeline.answer(image: image.rgb, prompt: "what is this ?", options: GenerationOptions(maximumNewTokens: 5))
            #expect(reply.status == 200 && ServeFixtures.content(reply) == expected.text, "\(model): \(reply.text)")
            #expect(reply.json["model"] as? String == ChatServer.modelID(pipeline))
        }
        // The same pair twice is refused before anything listens.
        #expect(throws: ServeError.self) { _ = try ChatServer(pipelines: [llama, llama], settings: ServeSettings()) }
        try await server.stop()
    }

    @Test("bad requests get OpenAI error objects with the right status, and the server goes on")
    func badRequests() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pipeline = try ServeFixtures.pipeline(scratch)
        let allowed = scratch.path("images")
        try FileManager.default.createDirectory(at: allowed, withIntermediateDirectories: true)
        let png = try ServeFixtures.image()
        try png.png.write(to: allowed.appendingPathComponent("ok.png"))
        try png.png.write(to: scratch.path("outside.png"))
        try FileManager.default.createSymbolicLink(at: allowed.appendingPathComponent("link.png"), withDestinationURL: scratch.path("outside.png"))
        var settings = ServeSettings()
        settings.maximumBodyBytes = 64 << 10
        settings.maximumTokens = 16
        settings.allowedFiles = allowed
        let server = try await TestServer(pipelines: [pipeline], settings: settings)
        let model = ChatServer.modelID(pipeline)
        let image = ServeFixtures.dataURL(png.png)
        func body(_ extra: [String: Any] = [:], image: String = image, prompt: String = "what is this ?") -> [String: Any] {
            ServeFixtures.body(model: model, image: image, prompt: prompt, extra: extra)
        }
        let malformed = try await server.request("/v1/chat/completions", method: "POST", body: Data("{\"model\": ".utf8))
        #expect(malformed.status == 400 && malformed.errorCode == "invalid_request")
        #expect((malformed.json["error"] as? [String: Any])?["type"] as? String == "invalid_request_error")
        let cases: [(String, [String: Any], Int, String)] = [
            ("unknown model", body(["model": "nope"]), 404, "model_not_found"),
            ("too many tokens", body(["max_tokens": 17]), 400, "invalid_request"),
            ("n = 2", body(["n": 2]), 400, "invalid_request"),
            ("bad keep ratio", body(["craft": ["keep_ratio": 0]]), 400, "invalid_request"),
            ("gif data URL", body(image: "data:image/gif;base64,R0lGODdh"), 400, "invalid_request"),
            ("broken png", body(image: "data:image/png;base64,iVBORw0KGgoAAAAN"), 400, "invalid_request"),
            ("remote image", body(image: "http://127.0.0.1:9/x.png"), 400, "invalid_request"),
            ("file outside", body(image: scratch.path("outside.png").path), 400, "invalid_request"),
            ("symlink outside", body(image: allowed.appendingPathComponent("link.png").path), 400, "invalid_request"),
            ("dot-dot outside", body(image: allowed.path + "/../outside.png"), 400, "invalid_request"),
            ("too long", body(["max_tokens": 2], prompt: Array(repeating: "what", count: 60).joined(separator: " ")), 400, "context_length_exceeded"),
            ("assistant turn", ["model": model, "messages": [["role": "assistant", "content": "hi"]]], 400, "invalid_request"),
            ("no image", ["model": model, "messages": [["role": "user", "content": "what is this ?"]]], 400, "invalid_request"),
            ("audio part", ["model": model, "messages": [["role": "user", "content": [["type": "input_audio", "input_audio": [:] as [String: Any]]]]]], 400, "invalid_request"),
            ("missing messages", ["model": model], 400, "invalid_request"),
        ]
        for (name, request, status, code) in cases {
            let reply = try await server.chat(request)
            #expect(reply.status == status && reply.errorCode == code, "\(name): \(reply.status) \(reply.text)")
            #expect(((reply.json["error"] as? [String: Any])?["message"] as? String)?.isEmpty == false, "\(name)")
        }
        let huge = try await server.chat(body(image: ServeFixtures.dataURL(Data(count: 100 << 10))))
        #expect(huge.status == 413 && huge.errorCode == "request_too_large", "\(huge.text)")
        let route = try await server.request("/v2/nothing")
        #expect(route.status == 404 && route.errorCode == "not_found")
        // A file under --allow-files is read; the server still answers after all of the above.
        let fromFile = try await server.chat(body(["max_tokens": 4], image: "file://" + allowed.appendingPathComponent("ok.png").path))
        let expected = try pipeline.answer(image: png.rgb, prompt: "what is this ?", options: GenerationOptions(maximumNewTokens: 4))
        #expect(fromFile.status == 200 && ServeFixtures.content(fromFile) == expected.text, "\(fromFile.text)")
        let health = try await server.request("/health")
        #expect(health.status == 200 && health.json["status"] as? String == "ok")
        let models = try await server.request("/v1/models")
        let entry = try #require((models.json["data"] as? [[String: Any]])?.first)
        #expect(entry["id"] as? String == model && (entry["craft"] as? [String: Any])?["codebook_hash"] as? String == pipeline.pair.codebook.hash)
        try await server.stop()
    }
}

@Suite("craft serve against mangled requests", .serialized)
struct MangledRequestTests {
    /// Truncated, bit-flipped and retyped versions of a valid request: each gets a JSON answer with
    /// a 2xx or 4xx status, never a dropped connection or a 5xx, and the server still answers after.
    @Test("300 mangled bodies: every one a clear answer, the server unharmed")
    func mangledBodies() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pipeline = try ServeFixtures.pipeline(scratch)
        let server = try await TestServer(pipelines: [pipeline])
        let model = ChatServer.modelID(pipeline)
        let valid = try JSONSerialization.data(withJSONObject: ServeFixtures.body(
            model: model, image: ServeFixtures.dataURL(try ServeFixtures.image().png), prompt: "what is this ?", extra: ["max_tokens": 2]),
            options: [.sortedKeys])
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func random(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        let replacements: [String] = ["null", "[]", "{}", "-1", "1e999", "\"\"", "true", "\"\\u0000\""]
        var statuses: [Int: Int] = [:]
        for index in 0..<300 {
            var body = [UInt8](valid)
            switch index % 3 {
            case 0: body = Array(body.prefix(random(body.count)))
            case 1: for _ in 0..<(1 + random(4)) { body[random(body.count)] = UInt8(random(256)) }
            default:
                // Replace one JSON value after a random colon with a value of another type.
                let text = String(decoding: body, as: UTF8.self)
                let colons = text.indices.filter { text[$0] == ":" }
                let colon = colons[random(colons.count)]
                let rest = text[text.index(after: colon)...]
                let end = rest.firstIndex { $0 == "," || $0 == "}" || $0 == "]" } ?? rest.endIndex
                body = Array((String(text[...colon]) + replacements[random(replacements.count)] + String(text[end...])).utf8)
            }
            let reply = try await server.request("/v1/chat/completions", method: "POST", body: Data(body))
            statuses[reply.status, default: 0] += 1
            #expect((200..<500).contains(reply.status), "mangled body \(index): \(reply.status) \(reply.text)")
            if reply.status != 200 {
                #expect(reply.errorCode != nil, "mangled body \(index) got no error object: \(reply.text)")
            }
        }
        #expect(statuses[400, default: 0] > 100, "\(statuses)")
        let health = try await server.request("/health")
        #expect(health.status == 200)
        let answer = try await server.request("/v1/chat/completions", method: "POST", body: valid)
        #expect(answer.status == 200)
        try await server.stop()
    }
}

@Suite("craft serve's remote images", .serialized)
struct RemoteImageTests {
    @Test("http image URLs are fetched only with allowRemoteImages, and capped in size")
    func remoteImages() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pipeline = try ServeFixtures.pipeline(scratch)
        let png = try ServeFixtures.image()
        // The image host: a second Hummingbird server on 127.0.0.1.
        let router = Router()
        router.get("digit.png") { _, _ in Response(status: .ok, headers: [.contentType: "image/png"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: png.png))) }
        router.get("huge.png") { _, _ in Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(bytes: [UInt8](repeating: 0, count: 200_000)))) }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let host = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                               onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) })
        let hostTask = Task(executorPreference: ServerExecutor.shared) { try await host.runService(gracefulShutdownSignals: []) }
        defer { hostTask.cancel() }
        var iterator = ports.makeAsyncIterator()
        let hostPort = try #require(await iterator.next())

        var settings = ServeSettings()
        settings.allowRemoteImages = true
        settings.maximumRemoteImageBytes = 100_000
        let server = try await TestServer(pipelines: [pipeline], settings: settings)
        let model = ChatServer.modelID(pipeline)
        let fetched = try await server.chat(ServeFixtures.body(model: model, image: "http://127.0.0.1:\(hostPort)/digit.png", prompt: "what is this ?", extra: ["max_tokens": 4]))
        let expected = try pipeline.answer(image: png.rgb, prompt: "what is this ?", options: GenerationOptions(maximumNewTokens: 4))
        #expect(fetched.status == 200 && ServeFixtures.content(fetched) == expected.text, "\(fetched.text)")
        let missing = try await server.chat(ServeFixtures.body(model: model, image: "http://127.0.0.1:\(hostPort)/none.png", prompt: "what is this ?"))
        #expect(missing.status == 400 && missing.text.contains("404"), "\(missing.text)")
        let huge = try await server.chat(ServeFixtures.body(model: model, image: "http://127.0.0.1:\(hostPort)/huge.png", prompt: "what is this ?"))
        #expect(huge.status == 413, "\(huge.text)")
        try await server.stop()
    }
}
