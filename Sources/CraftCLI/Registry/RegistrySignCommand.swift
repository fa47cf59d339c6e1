import ArgumentParser
import CraftBundles
import CraftRegistry
import Foundation

/// `craft-registry sign FILE --key KEY`: write a detached signature FILE.sig.
struct RegistrySignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign a bundle file: writes FILE.sig, an Ed25519 signature over the bundle digest.",
        discussion: """
            The bundle is verified first (nobody should sign a broken bundle). `publish` carries \
            FILE.sig along automatically.

            Examples (from the repository root):
              craft-registry key generate --output keys/team
              craft-registry pack examples/bundles/digits-vq --output-directory dist
              craft-registry sign dist/digits-vq-1.0.0.craft --key keys/team
              craft-registry --registry my-registry key trust keys/team.pub
              craft-registry --registry my-registry publish dist/digits-vq-1.0.0.craft
              craft-registry --registry my-registry pull digits-vq --require-signature
            """)

    @OptionGroup var options: RegistryOptions

    @Argument(help: "The .craft file to sign.")
    var file: String

    @Option(help: ArgumentHelp("The private key file written by `key generate`.", valueName: "key"))
    var key: String

    @Option(name: [.short, .long], help: ArgumentHelp("The signature file to write (default: FILE.sig).", valueName: "file"))
    var output: String?

    func run() throws {
        let url = URL(fileURLWithPath: file)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw CommandError(.notFound, "the bundle file \(url.path) does not exist; check the path")
        }
        let signingKey = try SigningKey.read(from: URL(fileURLWithPath: key))
        let verified = try ProgressLine.run("verifying \(url.lastPathComponent)", bytes: ProgressLine.size(of: url)) {
            try BundleArchive.verify(url)
        }
        let signature = try BundleSignature.sign(digest: verified.digest, with: signingKey)
        let destination = output.map { URL(fileURLWithPath: $0) } ?? url.appendingPathExtension("sig")
        try signature.write(to: destination)
        if options.json {
            struct Result: Encodable {
                var file: String
                var signature: String
                var keyId: String
                var digest: String
            }
            try Output.json(Result(file: url.path, signature: destination.path, keyId: signingKey.keyID, digest: verified.digest))
        } else {
            Output.line("Signed \(verified.digest) with key \(signingKey.keyID): \(destination.path)")
        }
    }
}
