import ArgumentParser
import CraftBundles
import CraftCore
import CraftRuntimes
import CraftServe
import Foundation

/// `craft serve`: checked pairs behind an OpenAI-compatible HTTP API (docs/serve.md).
struct ServeCommand: EnvironmentCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve checked encoder+backend pairs over an OpenAI-compatible HTTP API (exit 3 when a pair is incompatible).",
        discussion: """
            Every pair is opened, verified and checked at start-up: any pair that fails the \
            compatibility checker stops the start with its report and exit status 3. Each pair is served \
            as the model ENCODER@VERSION+BACKEND@VERSION; concurrent requests to a pair are decoded \
            together (continuous batching). The server binds to 127.0.0.1 unless --host says otherwise, \
            prints the address it listens on, and on SIGTERM or SIGINT stops accepting, finishes the \
            requests in flight and exits 0.

            Routes: POST /v1/chat/completions (OpenAI's format; one image_url part per request, as a \
            data:image/png or data:image/jpeg base64 URL; "stream": true for server-sent events; \
            "craft": {"keep_ratio": R} prunes visual tokens), GET /v1/models, GET /health, GET /metrics \
            (Prometheus). Answers are greedy unless the request sets a temperature.

            Examples (from the repository root):
              craft serve --encoder digits-siglip-vq@1.1.0 --backend digits-llama --port 0
              craft serve --port 0 --pair digits-siglip-vq@1.1.0=digits-llama \\
                  --pair digits-siglip-vq@1.1.0=digits-gpt2

            Then, from another shell (the default port is 8080):
              curl -s localhost:8080/v1/models

            A chat completion with curl and with the openai Python client: docs/serve.md.
            """)

    @OptionGroup var options: RegistryOptions

    @OptionGroup var loading: LoadingOptions

    @Option(help: ArgumentHelp("The encoder of the first pair: a .craft file, a bundle directory or NAME[@VERSION|@RANGE].", valueName: "bundle"))
    var encoder: String?

    @Option(help: ArgumentHelp("The backend of the first pair.", valueName: "bundle"))
    var backend: String?

    @Option(name: .customLong("pair"), help: ArgumentHelp("Another pair to serve, as ENCODER=BACKEND (repeatable).", valueName: "encoder=backend"))
    var pairs: [String] = []

    @Option(help: "The address to listen on (loopback by default; 0.0.0.0 listens on every interface).")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on; 0 picks a free port (printed at start-up).")
    var port = 8080

    @Option(name: .customLong("max-tokens"), help: "The most tokens a request may ask for, and what it gets when it does not say.")
    var maximumTokens = ServeSettings().maximumTokens

    @Option(name: .customLong("max-batch"), help: "The most sequences of one pair decoded together.")
    var maximumBatch = ServeSettings().maximumBatch

    @Option(name: .customLong("max-queue"), help: "The most requests waiting per pair; more get HTTP 429 with Retry-After.")
    var maximumQueue = ServeSettings().maximumQueue

    @Option(name: .customLong("max-body-bytes"), help: "The largest request body; larger ones get HTTP 413.")
    var maximumBodyBytes = ServeSettings().maximumBodyBytes

    @Option(name: .customLong("max-image-pixels"), help: "The largest decoded image, width x height.")
    var maximumImagePixels = ServeSettings().maximumImagePixels

    @Option(name: .customLong("request-timeout"), help: "The most seconds a request may take; later ones get HTTP 504.")
    var requestTimeout = ServeSettings().requestTimeout

    @Option(name: .customLong("allow-files"), help: ArgumentHelp("Let requests name image files under this directory (file:// URLs or absolute paths).", valueName: "dir"))
    var allowFiles: String?

    @Flag(name: .customLong("allow-remote-images"), help: "Fetch http(s) image URLs (refused by default).")
    var allowRemoteImages = false

    func validate() throws {
        guard (encoder == nil) == (backend == nil) else {
            throw ValidationError("give --encoder and --backend together (or pairs with --pair ENCODER=BACKEND).")
        }
        guard encoder != nil || !pairs.isEmpty else {
            throw ValidationError("name a pair to serve: --encoder E --backend B, or --pair E=B.")
        }
        for pair in pairs where Self.split(pair) == nil {
            throw ValidationError("--pair takes ENCODER=BACKEND, not \(pair).")
        }
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0 to 65535, not \(port).") }
        for (name, value) in [("--max-tokens", maximumTokens), ("--max-batch", maximumBatch), ("--max-queue", maximumQueue),
                              ("--max-body-bytes", maximumBodyBytes), ("--max-image-pixels", maximumImagePixels)] where value < 1 {
            throw ValidationError("\(name) must be 1 or more, not \(value).")
        }
        guard requestTimeout > 0, requestTimeout.isFinite else {
            throw ValidationError("--request-timeout must be a positive number of seconds, not \(requestTimeout).")
        }
        if let allowFiles {
            var directory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: allowFiles, isDirectory: &directory), directory.boolValue else {
                throw ValidationError("--allow-files must name an existing directory, not \(allowFiles).")
            }
        }
    }

    static func split(_ pair: String) -> (encoder: String, backend: String)? {
        let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return (parts[0], parts[1])
    }

    var settings: ServeSettings {
        var settings = ServeSettings()
        settings.host = host
        settings.port = port
        settings.maximumTokens = maximumTokens
        settings.maximumBatch = maximumBatch
        settings.maximumQueue = maximumQueue
        settings.maximumBodyBytes = maximumBodyBytes
        settings.maximumImagePixels = maximumImagePixels
        settings.requestTimeout = requestTimeout
        settings.allowedFiles = allowFiles.map { URL(fileURLWithPath: $0) }
        settings.allowRemoteImages = allowRemoteImages
        return settings
    }

    func run(in environment: CraftEnvironment) throws {
        loading.applyThreads()
        let registry = try options.resolvedRegistry()
        var named: [(encoder: String, backend: String)] = []
        if let encoder, let backend { named.append((encoder, backend)) }
        named += pairs.compactMap(Self.split)
        // One workspace per pair (its bundles unpacked side by side), all removed on exit.
        var workspaces: [RuntimeWorkspace] = []
        defer { for workspace in workspaces { workspace.remove() } }
        var pipelines: [Pipeline] = []
        for (encoder, backend) in named {
            let workspace = try RuntimeWorkspace(policy: loading.policy)
            workspaces.append(workspace)
            pipelines.append(try workspace.pipeline(encoder: encoder, backend: backend, registry: registry, runtimes: environment.runtimes, json: options.json))
        }
        let server = try ChatServer(pipelines: pipelines, settings: settings)
        let host = self.host
        // SIGTERM and SIGINT: stop accepting, finish what is in flight, exit 0. A second signal ends at once.
        ScratchFiles.setInterruptionHandler { _ in
            Output.note("craft serve: stopping; finishing the requests in flight")
            Task { await server.shutdown() }
        }
        defer { ScratchFiles.setInterruptionHandler(nil) }
        let outcome = Blocking.run {
            try await server.run { port in
                Output.note("craft serve: listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port)")
                for id in server.modelIDs { Output.note("  model \(id)") }
            }
        }
        if case .failure(let error) = outcome {
            throw CommandError(.other, "craft serve cannot serve on \(host):\(port): \(error)")
        }
        Output.note("craft serve: stopped")
    }
}

/// Runs async work to completion from synchronous code (a command's `run`), on Swift's global
/// executor while the calling thread waits.
enum Blocking {
    static func run(_ body: @escaping @Sendable () async throws -> Void) -> Result<Void, any Error> {
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await body() } catch { box.set(.failure(error)) }
            done.signal()
        }
        done.wait()
        return box.result
    }

    private final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: Result<Void, any Error> = .success(())
        func set(_ result: Result<Void, any Error>) {
            lock.lock()
            stored = result
            lock.unlock()
        }
        var result: Result<Void, any Error> {
            lock.lock()
            defer { lock.unlock() }
            return stored
        }
    }
}
