import ArgumentParser
import CraftBundles
import CraftRegistry
import CraftRegistryServer
import Foundation

/// `craft-registry serve DIR`: a registry directory over HTTP.
struct RegistryServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a registry directory over HTTP: its files, a JSON API, publishing and web pages.",
        discussion: """
            Other machines read it with --registry http://HOST:PORT (every lookup, pull and craft \
            run). GET / and /bundle/NAME are web pages (a bundle's page shows its model card: a \
            README.md listed in its craft.json files, as a small escaped Markdown subset); /api/v1/bundles, /api/v1/search?q=, \
            /api/v1/bundles/REF and /api/v1/bundles/REF/compatible answer JSON. PUT \
            /api/v1/bundles with a .craft body publishes it, only with --token-file and the header \
            "Authorization: Bearer TOKEN". Loopback by default; SIGINT or SIGTERM stops it. \
            Details: docs/registry.md, "Serving a registry".

            Examples (from the repository root):
              craft-registry serve registry --port 0

            For other machines, with publishing (docs/registry.md, "Serving a registry"):
              craft-registry serve /srv/craft --host 0.0.0.0 --port 8080 \\
                  --token-file /etc/craft/token
              curl -H "Authorization: Bearer $(cat /etc/craft/token)" \\
                  -T dist/NAME-VERSION.craft http://HOST:8080/api/v1/bundles
            """)

    @OptionGroup var options: RegistryOptions

    @Argument(help: ArgumentHelp("The registry directory to serve.", valueName: "dir"))
    var directory: String

    @Option(help: "The address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).")
    var host = "127.0.0.1"

    @Option(help: "The port (0 picks a free one, printed on start).")
    var port = 8080

    @Option(help: ArgumentHelp("A file holding the bearer token that allows publishing with PUT; without it the server takes no writes.", valueName: "file"))
    var tokenFile: String?

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be between 0 and 65535, not \(port).") }
    }

    func run() throws {
        var settings = RegistryServerSettings(host: host, port: port)
        if let tokenFile {
            settings.token = try TokenFile.read(tokenFile, minimumLength: 16)
        }
        let path = NSString(string: directory).expandingTildeInPath
        let server = try RegistryServer(registry: Registry(root: URL(fileURLWithPath: path)), settings: settings)
        ScratchFiles.setInterruptionHandler { _ in
            Output.note("craft-registry serve: stopping")
            Task { await server.shutdown() }
        }
        defer { ScratchFiles.setInterruptionHandler(nil) }
        let writes = settings.token == nil ? "read-only" : "publishing with the token of \(tokenFile ?? "")"
        let shown = host.contains(":") ? "[\(host)]" : host
        let outcome = Blocking.run {
            try await server.run { port in
                Output.note("craft-registry serve: \(path) listening on http://\(shown):\(port) (\(writes))")
            }
        }
        if case .failure(let error) = outcome {
            throw CommandError(.other, "craft-registry serve cannot serve on \(host):\(port): \(error)")
        }
        Output.note("craft-registry serve: stopped")
    }
}
