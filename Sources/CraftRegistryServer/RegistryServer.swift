// CraftRegistryServer: `craft-registry serve DIR` (docs/registry.md, "Serving a registry"). One
// Hummingbird server for a registry directory: its files as any static server would serve them (so
// `--registry http://…` reads it), a JSON API, publishing with a bearer token, and HTML pages.
import CraftBundles
import CraftRegistry
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// How a registry is served.
public struct RegistryServerSettings: Sendable {
    /// The address to bind; loopback by default.
    public var host = "127.0.0.1"
    /// The port; 0 picks a free one.
    public var port = 8080
    /// The bearer token `PUT /api/v1/bundles` must carry; `nil` refuses every write.
    public var token: String?
    /// The largest bundle accepted by `PUT`, in bytes (4 GiB).
    public var maximumUploadBytes: Int64 = 4 << 30

    public init(host: String = "127.0.0.1", port: Int = 8080, token: String? = nil) {
        self.host = host
        self.port = port
        self.token = token
    }
}

/// Serves one registry directory over HTTP until ``shutdown()``.
///
/// ```swift
/// let server = try RegistryServer(registry: Registry(root: directory), settings: RegistryServerSettings(port: 0))
/// try await server.run { port in print("listening on \(port)") }
/// ```
public final class RegistryServer: Sendable {
    public let registry: Registry
    public let settings: RegistryServerSettings
    private let group = ServiceGroupBox()

    /// - Throws: ``RegistryError`` `usage` for a remote registry, `noRegistry` when the directory does not exist.
    public init(registry: Registry, settings: RegistryServerSettings) throws {
        guard !registry.isRemote else {
            throw RegistryError(.usage, "craft-registry serve serves a registry directory, not \(registry.location); give it a DIR")
        }
        guard registry.exists else {
            throw RegistryError(.noRegistry, "no registry at \(registry.root.path); create one with craft-registry --registry \(registry.root.path) publish FILE, or give another DIR")
        }
        self.registry = registry
        self.settings = settings
    }

    /// Serves until ``shutdown()``; `onListening` gets the bound port.
    public func run(logger: Logger = RegistryServer.defaultLogger(), onListening: @escaping @Sendable (Int) -> Void) async throws {
        let app = Application(
            router: makeRouter(logger: logger),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "craft-registry"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        self.group.attach(group)
        defer { self.group.attach(nil) }
        try await group.run()
    }

    /// Stops accepting connections; ``run(logger:onListening:)`` returns once in-flight requests finished.
    public func shutdown() async {
        await group.current?.triggerGracefulShutdown()
    }

    /// Warnings and errors on standard error (`LOG_LEVEL=info` shows more).
    public static func defaultLogger() -> Logger {
        var logger = Logger(label: "craft-registry-serve") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }

    func makeRouter(logger: Logger) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: APIErrorMiddleware())
        router.add(middleware: RegistryFiles(root: registry.root, logger: logger))
        // Registry work reads files, hashes bundles and takes locks: it runs on a queue of its own.
        let api = RegistryAPI(registry: registry, settings: settings)
        router.get("api/v1/bundles") { request, _ in try await offload { try api.list(request) } }
        router.get("api/v1/search") { request, _ in try await offload { try api.search(request) } }
        router.get("api/v1/bundles/:name") { _, context in
            let name = try context.parameters.require("name")
            return try await offload { try api.info(name) }
        }
        router.get("api/v1/bundles/:name/compatible") { _, context in
            let name = try context.parameters.require("name")
            return try await offload { try api.compatible(name) }
        }
        router.put("api/v1/bundles") { request, _ in try await api.publish(request) }
        let pages = RegistryPages(registry: registry)
        router.get("/") { request, _ in try await offload { try pages.home(request) } }
        router.get("bundle/:name") { request, context in
            let name = try context.parameters.require("name")
            return try await offload { try pages.bundle(name, request: request) }
        }
        router.get("health") { _, _ in "ok\n" }
        return router
    }
}

/// The registry's own files, as a static server serves them (ETags, `Range`): `registry.json`,
/// `index/…`, `bundles/…` and `keys/…`. Anything hidden (a path component starting with a dot: the
/// lock, staging, temporaries) is never served.
struct RegistryFiles: RouterMiddleware {
    typealias Context = BasicRequestContext
    let files: FileMiddleware<BasicRequestContext, LocalFileSystem>

    init(root: URL, logger: Logger) {
        files = FileMiddleware(root.path, searchForIndexHtml: false, logger: logger)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let components = request.uri.path.split(separator: "/")
        guard let first = components.first, request.method == .get || request.method == .head,
              request.uri.path == "/registry.json" || ["index", "bundles", "keys"].contains(String(first))
        else { return try await next(request, context) }
        guard !components.contains(where: { $0.hasPrefix(".") || $0.contains("%") }) else {
            throw RegistryAPIError(status: .notFound, code: "not-found", message: "there is no file \(request.uri.path) in this registry")
        }
        do {
            // FileMiddleware serves the file when what follows it answers "not found".
            return try await files.handle(request, context: context) { _, _ in throw HTTPError(.notFound) }
        } catch let error as any HTTPResponseError where error.status == .notFound {
            throw RegistryAPIError(status: .notFound, code: "not-found", message: "there is no file \(request.uri.path) in this registry")
        }
    }
}

/// The queue registry work runs on: never Swift's cooperative threads, which a verification of a
/// large bundle or a lock would hold.
let registryWork = DispatchQueue(label: "craft-registry-serve.work", attributes: .concurrent)

/// Runs blocking registry work on ``registryWork`` and waits for it without blocking a thread.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        registryWork.async { continuation.resume(with: Result { try body() }) }
    }
}

/// Holds the running service group so ``RegistryServer/shutdown()`` can reach it.
final class ServiceGroupBox: @unchecked Sendable {
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
