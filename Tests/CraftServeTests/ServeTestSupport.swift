import CraftBundles
import CraftCore
import CraftImaging
import Foundation
import RuntimeTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@testable import CraftRuntimes
@testable import CraftServe

/// Runs the server's tasks on threads of its own: the test runner's other tests may occupy every
/// thread of Swift's cooperative pool with synchronous work (training, experiments) for minutes,
/// and a server waiting for one would time its clients out.
final class ServerExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = ServerExecutor()
    private let queue = DispatchQueue(label: "craft-serve-tests", attributes: .concurrent)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A ChatServer on 127.0.0.1 and a free port, started by a test and stopped by it.
final class TestServer: @unchecked Sendable {
    let server: ChatServer
    let port: Int
    private let task: Task<Void, any Error>

    init(pipelines: [Pipeline], settings: ServeSettings = ServeSettings()) async throws {
        var settings = settings
        settings.port = 0
        let server = try ChatServer(pipelines: pipelines, settings: settings)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        task = Task(executorPreference: ServerExecutor.shared) { try await server.run { continuation.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw ServeError(.internalError, "the server did not start") }
        self.server = server
        self.port = port
    }

    /// Graceful shutdown; waits until the server returned.
    func stop() async throws {
        await server.shutdown()
        try await task.value
    }

    var base: String { "http://127.0.0.1:\(port)" }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    func request(_ path: String, method: String = "GET", body: Data? = nil) async throws -> Reply {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.httpBody = body
        request.timeoutInterval = 900
        if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields { headers[String(describing: key).lowercased()] = String(describing: value) }
        return Reply(status: http.statusCode, headers: headers, body: data)
    }

    func chat(_ body: [String: Any]) async throws -> Reply {
        try await request("/v1/chat/completions", method: "POST", body: try JSONSerialization.data(withJSONObject: body))
    }
}

enum ServeFixtures {
    /// The tiny siglip-vq encoder and llama backend (RuntimeTestSupport), checked and loaded.
    static func pipeline(
        _ scratch: Scratch, runtimes: RuntimeRegistry = .craftDefault, backend name: String = "tiny-llm", model: String = "llama_tied",
        runtime: String = "llama"
    ) throws -> Pipeline {
        let values = TinyBundles.codebook()
        try TinyBundles.encoderDirectory(at: scratch.path("enc-\(name)"), codebook: values)
        try TinyBundles.backendDirectory(at: scratch.path(name), name: name, model: model, runtime: runtime, codebookHash: try TinyBundles.hash(values))
        let encoder = try TinyBundles.packAndUnpack(scratch.path("enc-\(name)"), in: scratch, as: "encoder-\(name)")
        let backend = try TinyBundles.packAndUnpack(scratch.path(name), in: scratch, as: "backend-\(name)")
        let report = checkCompatibility(encoder: encoder, backend: backend, runtimes: runtimes)
        return try Pipeline(pair: try report.requirePairing(), encoder: encoder, backend: backend, runtimes: runtimes)
    }

    /// A JPEG of CraftImaging's fixtures, and its RGB pixels.
    static func jpeg() throws -> (data: Data, rgb: RGBImage) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CraftImagingTests/Fixtures/rgb_baseline.jpg")
        let data = try Data(contentsOf: url)
        return (data, try ImageInput.rgbImage(Image(data: data)))
    }

    /// A 40x40 image whose square moves with `variant`, as PNG bytes, and its RGB pixels.
    static func image(_ variant: Int = 0) throws -> (png: Data, rgb: RGBImage) {
        var bytes: [UInt8] = []
        for y in 0..<40 {
            for x in 0..<40 {
                let inside = ((5 + variant * 3)..<(20 + variant * 3)).contains(x) && (5..<20).contains(y)
                bytes += [UInt8(x * 6), UInt8(y * 6), inside ? 230 : UInt8((x + y) * 3)]
            }
        }
        let image = try Image(width: 40, height: 40, colorModel: .rgb, bytes: bytes)
        let png = try image.pngData()
        return (png, try ImageInput.rgbImage(Image(data: png)))
    }

    static func dataURL(_ data: Data, type: String = "image/png") -> String {
        "data:\(type);base64,\(data.base64EncodedString())"
    }

    /// A chat request body with one image and one question.
    static func body(model: String, image: String, prompt: String, extra: [String: Any] = [:]) -> [String: Any] {
        var body: [String: Any] = [
            "model": model,
            "messages": [["role": "user", "content": [["type": "image_url", "image_url": ["url": image]], ["type": "text", "text": prompt]]]],
        ]
        for (key, value) in extra { body[key] = value }
        return body
    }

    /// The content of a completion, or the streamed pieces of an event stream joined.
    static func content(_ reply: TestServer.Reply) -> String? {
        if reply.headers["content-type"]?.hasPrefix("text/event-stream") == true {
            return events(reply).compactMap { event in
                ((event["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String
            }.joined()
        }
        return (((reply.json["choices"] as? [[String: Any]])?.first)?["message"] as? [String: Any])?["content"] as? String
    }

    /// The JSON events of a server-sent event stream (without `[DONE]`).
    static func events(_ reply: TestServer.Reply) -> [[String: Any]] {
        reply.text.components(separatedBy: "\n\n").compactMap { block in
            guard block.hasPrefix("data: "), block != "data: [DONE]" else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(block.dropFirst(6).utf8))) as? [String: Any]
        }
    }
}
