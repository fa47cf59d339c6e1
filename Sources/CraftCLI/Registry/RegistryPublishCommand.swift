import ArgumentParser
import CraftBundles
import CraftRegistry
import Foundation

/// `craft-registry publish FILE`: verify and add a bundle to the registry.
struct RegistryPublishCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Verify a .craft file and publish it to the registry (atomic, safe with concurrent publishers).",
        discussion: """
            The bundle is verified (hostile archive checks), copied in, and its index shard updated \
            atomically under the registry lock. The signature FILE.sig (or --signature) is checked \
            and carried along. Publishing the same bytes again changes nothing; different bytes \
            under a published NAME@VERSION are refused (exit 4): bump the version instead. The \
            registry directory is created when missing. A bundle marked partial (provenance.partial: \
            true, written by craft train --stop-after-steps) is refused (exit 64) unless --force.

            A registry served by craft-registry serve --token-file takes the bundle over HTTP: \
            --registry http(s)://HOST:PORT, with the server's token in CRAFT_REGISTRY_TOKEN or \
            --token-file; the server verifies and publishes it the same way, signatures included \
            (docs/registry.md, "Serving a registry").

            Examples (from the repository root):
              craft-registry pack examples/bundles/digits-vq --output-directory dist
              craft-registry --registry my-registry publish dist/digits-vq-1.0.0.craft
              craft-registry --registry my-registry list
            """)

    @OptionGroup var options: RegistryOptions

    @Argument(help: "The .craft file to publish.")
    var file: String

    @Option(help: ArgumentHelp("A detached signature to publish with it (default: FILE.sig when present).", valueName: "sig-file"))
    var signature: String?

    @Option(help: ArgumentHelp("For a registry served over HTTP: a file holding the server's token (default: $CRAFT_REGISTRY_TOKEN).", valueName: "file"))
    var tokenFile: String?

    @Flag(help: "Publish a bundle marked partial (provenance.partial: a training run stopped before its planned end). Example: --force")
    var force = false

    func run() throws {
        // An interrupted command removes its scratch files (staging copy, download, unpack directory).
        let registry = try options.resolvedRegistry()
        let url = URL(fileURLWithPath: file)
        let sigURL = signature.map { URL(fileURLWithPath: $0) } ?? url.appendingPathExtension("sig")
        var signatures: [BundleSignature] = []
        if FileManager.default.fileExists(atPath: sigURL.path) {
            signatures.append(try BundleSignature.read(from: sigURL))
        } else if signature != nil {
            throw CommandError(.notFound, "the signature file \(sigURL.path) does not exist; check the --signature path")
        }
        let result: PublishResult
        if registry.remote != nil {
            if force { throw CommandError(.usage, "--force is for a registry directory; a served registry refuses partial bundles") }
            let token = try tokenFile.map { try TokenFile.read($0) } ?? ProcessInfo.processInfo.environment[Registry.tokenVariable]
            result = try ProgressLine.run("uploading \(url.lastPathComponent)", bytes: ProgressLine.size(of: url)) {
                try registry.publishRemotely(url, signatures: signatures, token: token)
            }
        } else {
            if tokenFile != nil { throw CommandError(.usage, "--token-file is for a registry served over HTTP; \(registry.location) is a directory") }
            if !registry.exists {
                try FileManager.default.createDirectory(at: registry.root, withIntermediateDirectories: true)
            }
            result = try ProgressLine.run("publishing \(url.lastPathComponent)", bytes: ProgressLine.size(of: url)) {
                try registry.publish(url, signatures: signatures, allowPartial: force)
            }
        }
        if options.json {
            struct Result: Encodable {
                var outcome: String
                var name: String
                var version: String
                var digest: String
                var size: Int64
                var file: String
                var registry: String
                var signedBy: [String]
            }
            try Output.json(Result(
                outcome: result.outcome.rawValue, name: result.name, version: result.record.version,
                digest: result.record.digest, size: result.record.size, file: result.file.path,
                registry: registry.location, signedBy: result.record.signatures.map(\.keyID)))
        } else {
            let what = "\(result.name)@\(result.record.version)"
            switch result.outcome {
            case .published: Output.line("Published \(what) (\(result.record.digest)) to \(registry.location).")
            case .unchanged: Output.line("\(what) is already published with the same digest; nothing changed.")
            case .signaturesAdded: Output.line("\(what) is already published; added its new signature.")
            }
        }
    }
}
