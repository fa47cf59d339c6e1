// craft serve's HTTP side on Hummingbird: the OpenAI-compatible routes over checked pairs, each pair
// decoded by its own PairScheduler; graceful shutdown lets in-flight requests finish.
import CraftCore
import CraftPipeline
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// One checked pair served under a model id.
struct ServedPair: Sendable {
    /// `ENCODER@VERSION+BACKEND@VERSION`.
    let id: String
    let pipeline: Pipeline
    let scheduler: PairScheduler
}

/// An OpenAI-compatible HTTP server over checked pairs (docs/serve.md).
///
/// Every ``Pipeline`` was built from a passing compatibility report, so only checked pairs are
/// served. Routes: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`, `GET /metrics`.
///
/// ```swift
/// let server = try ChatServer(pipelines: [pipeline], settings: settings)
/// try await server.run { port in print("listening on \(port)") }   // until shutdown()
/// ```
public final class ChatServer: Sendable {
    /// The settings the server runs with.
    public let settings: ServeSettings
    let pairs: [ServedPair]
    let metrics = ServeMetrics()
    let started = Date()
    private let group = GroupHolder()

    /// Builds the server over checked pipelines; their schedulers start with ``run(onListening:)``.
    ///
    /// - Throws: ``ServeError`` (`badRequest`) when two pipelines serve the same pair, or an encoder
    ///   takes image indices rather than pictures.
    public init(pipelines: [Pipeline], settings: ServeSettings) throws(ServeError) {
        var seen: Set<String> = []
        var pairs: [ServedPair] = []
        for pipeline in pipelines {
            let id = Self.modelID(pipeline)
            guard seen.insert(id).inserted else { throw ServeError(.badRequest, "the pair \(id) is given twice; serve each pair once") }
            guard pipeline.imageIndices == nil else {
                throw ServeError(.badRequest, "the encoder \(pipeline.pair.encoder.reference) takes image indices, not pictures, so it cannot answer image_url content; serve an encoder of pictures")
            }
            pairs.append(ServedPair(id: id, pipeline: pipeline, scheduler: PairScheduler(pipeline: pipeline, settings: settings, metrics: metrics)))
        }
        self.pairs = pairs
        self.settings = settings
    }

    /// The model id of a pair: `ENCODER@VERSION+BACKEND@VERSION`.
    public static func modelID(_ pipeline: Pipeline) -> String {
        "\(pipeline.pair.encoder.reference)+\(pipeline.pair.backend.reference)"
    }

    /// The model ids served, in order.
    public var modelIDs: [String] { pairs.map(\.id) }

    /// Serves until ``shutdown()``: binds, calls `onListening` with the bound port, answers requests;
    /// after shutdown, stops accepting, finishes in-flight requests, then returns.
    public func run(logger: Logger = ChatServer.defaultLogger(), onListening: @escaping @Sendable (Int) -> Void) async throws {
        for pair in pairs { pair.scheduler.start() }
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "craft-serve"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        self.group.attach(group)
        defer { self.group.attach(nil) }
        do {
            try await group.run()
        } catch {
            for pair in pairs { await pair.scheduler.drain() }
            throw error
        }
        for pair in pairs { await pair.scheduler.drain() }
    }

    /// Stops accepting connections; ``run(onListening:)`` returns once in-flight requests finished.
    public func shutdown() async {
        await group.current?.triggerGracefulShutdown()
    }

    /// Warnings and errors on standard error (`LOG_LEVEL=info` shows more).
    public static func defaultLogger() -> Logger {
        var logger = Logger(label: "craft-serve") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }

    /// The pair a request's `model` names: its full id, or `ENCODER+BACKEND` without versions when
    /// that is unambiguous.
    func pair(named model: String) throws(ServeError) -> ServedPair {
        if let exact = pairs.first(where: { $0.id == model }) { return exact }
        let loose = pairs.filter { "\($0.pipeline.pair.encoder.name)+\($0.pipeline.pair.backend.name)" == model }
        if loose.count == 1 { return loose[0] }
        throw ServeError(.notFound, "the model \"\(model)\" is not served here; GET /v1/models lists \(pairs.map(\.id).joined(separator: ", "))", param: "model")
    }

    // MARK: - Routes

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorMiddleware(metrics: metrics))
        router.get("health") { _, _ in
            Self.json(HealthBody(status: "ok", models: self.pairs.map(\.id), uptimeSeconds: Date().timeIntervalSince(self.started)))
        }
        router.get("v1/models") { _, _ in
            Self.json(ModelList(data: self.pairs.map { pair in
                let checked = pair.pipeline.pair
                return ModelEntry(
                    id: pair.id, created: Int(self.started.timeIntervalSince1970),
                    craft: PairDescription(encoder: checked.encoder.reference, backend: checked.backend.reference,
                                           codebookHash: checked.codebook.hash, contextLength: pair.pipeline.backend.contextLength))
            }))
        }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: self.metrics.render())))
        }
        router.post("v1/chat/completions") { request, _ in try await self.chat(request) }
        return router
    }

    func chat(_ request: Request) async throws -> Response {
        let arrival = ContinuousClock.now
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: settings.maximumBodyBytes)
        } catch is NIOTooManyBytesError {
            throw ServeError(.tooLarge, "the request body is larger than \(settings.maximumBodyBytes) bytes, the most this server reads (--max-body-bytes); send a smaller image")
        }
        let chat = try await ChatRequestReader(settings: settings).read(Data(buffer: body))
        let pair = try pair(named: chat.model)
        let (id, events) = try pair.scheduler.submit(chat, arrival: arrival)
        let completion = CompletionWriter(
            id: "chatcmpl-\(UUID().uuidString.lowercased())", created: Int(Date().timeIntervalSince1970), model: pair.id,
            fingerprint: pair.pipeline.pair.codebook.hash)
        guard chat.stream else {
            return try await withTaskCancellationHandler {
                for await event in events {
                    switch event {
                    case .text: continue
                    case .failed(let error): throw error
                    case .finished(let answer, let promptTokens, let report):
                        return Self.json(completion.whole(answer, promptTokens: promptTokens, report: report))
                    }
                }
                throw ServeError(.unavailable, "the request was dropped before it finished")
            } onCancel: {
                pair.scheduler.cancel(id)
            }
        }
        let includeUsage = chat.includeUsage
        let scheduler = pair.scheduler
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                do {
                    try await writer.write(completion.event(completion.chunk(role: "assistant", content: "")))
                    for await event in events {
                        switch event {
                        case .text(let piece):
                            try await writer.write(completion.event(completion.chunk(content: piece)))
                        case .failed(let error):
                            try await writer.write(completion.event(error.body))
                        case .finished(let answer, let promptTokens, let report):
                            try await writer.write(completion.event(completion.chunk(finishReason: Self.finishReason(answer.finishReason), report: report)))
                            if includeUsage {
                                try await writer.write(completion.event(completion.usageChunk(Usage(promptTokens: promptTokens, completionTokens: answer.tokens.count))))
                            }
                        }
                    }
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    try await writer.finish(nil)
                } catch {
                    scheduler.cancel(id)  // the client left: free its slot
                    throw error
                }
            })
    }

    /// `value` as compact JSON with sorted keys (every body and event the server writes; the wire
    /// types are plain values, so encoding cannot fail).
    static func encoded(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)) ?? Data("{}".utf8)
    }

    /// OpenAI's finish reason: `stop` for an end-of-sequence token or a stop sequence, `length` for
    /// the token limit or a full context.
    static func finishReason(_ reason: FinishReason) -> String {
        switch reason {
        case .endOfSequence, .stopSequence: "stop"
        case .length, .contextFull: "length"
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = encoded(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// `GET /health`.
struct HealthBody: Encodable {
    var status: String
    var models: [String]
    var uptimeSeconds: Double
    enum CodingKeys: String, CodingKey { case status, models, uptimeSeconds = "uptime_seconds" }
}

/// Builds one completion's JSON and server-sent events.
struct CompletionWriter: Sendable {
    let id: String
    let created: Int
    let model: String
    let fingerprint: String

    func whole(_ answer: GeneratedText, promptTokens: Int, report: InferenceReport) -> ChatCompletion {
        ChatCompletion(
            id: id, created: created, model: model, systemFingerprint: fingerprint,
            choices: [.init(message: .init(content: answer.text), finishReason: ChatServer.finishReason(answer.finishReason))],
            usage: Usage(promptTokens: promptTokens, completionTokens: answer.tokens.count), craft: report)
    }

    func chunk(role: String? = nil, content: String? = nil, finishReason: String? = nil, report: InferenceReport? = nil) -> ChatCompletionChunk {
        ChatCompletionChunk(
            id: id, created: created, model: model, systemFingerprint: fingerprint,
            choices: [.init(delta: .init(role: role, content: content), finishReason: finishReason)], craft: report)
    }

    func usageChunk(_ usage: Usage) -> ChatCompletionChunk {
        ChatCompletionChunk(id: id, created: created, model: model, systemFingerprint: fingerprint, choices: [], usage: usage)
    }

    /// One server-sent event: `data: JSON` and a blank line.
    func event(_ value: some Encodable) -> ByteBuffer {
        let data = ChatServer.encoded(value)
        var buffer = ByteBuffer(string: "data: ")
        buffer.writeBytes(data)
        buffer.writeString("\n\n")
        return buffer
    }
}

/// Renders every failure as an OpenAI error object with its status, and counts requests by route
/// and status for `/metrics`.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let metrics: ServeMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let route = ["/v1/chat/completions", "/v1/models", "/health", "/metrics"].contains(request.uri.path) ? request.uri.path : "other"
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            let failure = Self.serveError(error, request: request)
            var rendered = ChatServer.json(failure.body, status: .init(code: failure.kind.status))
            if failure.kind == .queueFull { rendered.headers[.retryAfter] = "1" }
            response = rendered
        }
        metrics.request(route: route, status: response.status.code)
        return response
    }

    static func serveError(_ error: any Error, request: Request) -> ServeError {
        if let error = error as? ServeError { return error }
        if let http = error as? any HTTPResponseError {
            switch http.status {
            case .notFound:
                return ServeError(.notFound, "there is no route \(request.method) \(request.uri.path); craft serve answers POST /v1/chat/completions, GET /v1/models, GET /health and GET /metrics")
            case .contentTooLarge:
                return ServeError(.tooLarge, "the request body is larger than this server reads (--max-body-bytes)")
            default:
                return ServeError(.badRequest, "\(request.method) \(request.uri.path) failed with HTTP \(http.status.code)")
            }
        }
        return PairScheduler.serveError(error)
    }
}

/// The running service group, so that ``ChatServer/shutdown()`` reaches it.
final class GroupHolder: @unchecked Sendable {
    private let lock = NSLock()
    private var group: ServiceGroup?

    func attach(_ group: ServiceGroup?) {
        lock.lock()
        self.group = group
        lock.unlock()
    }

    var current: ServiceGroup? {
        lock.lock()
        defer { lock.unlock() }
        return group
    }
}
