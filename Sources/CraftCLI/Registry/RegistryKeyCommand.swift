import ArgumentParser
import CraftRegistry
import Foundation

/// `craft-registry key`: signing keys.
struct RegistryKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Generate signing keys and manage the keys a registry trusts.",
        subcommands: [RegistryKeyGenerateCommand.self, RegistryKeyTrustCommand.self])
}

/// `craft-registry key generate --output KEY`.
struct RegistryKeyGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Create an Ed25519 signing key: KEY (private, mode 0600) and KEY.pub (public).",
        discussion: """
            Keep KEY secret; give KEY.pub to registries that should trust your bundles.

            Examples (from the repository root):
              craft-registry key generate --output keys/team
            """)

    @OptionGroup var options: RegistryOptions

    @Option(name: [.short, .long], help: ArgumentHelp("The private key file to write (KEY.pub is written beside it).", valueName: "file"))
    var output: String

    func run() throws {
        let url = URL(fileURLWithPath: output)
        let key = SigningKey.generate()
        try key.write(to: url)
        let publicURL = url.appendingPathExtension("pub")
        if options.json {
            struct Result: Encodable {
                var keyId: String
                var privateKey: String
                var publicKey: String
            }
            try Output.json(Result(keyId: key.keyID, privateKey: url.path, publicKey: publicURL.path))
        } else {
            Output.line("Created key \(key.keyID): private \(url.path) (keep it secret), public \(publicURL.path).")
        }
    }
}

/// `craft-registry key trust PUBFILE`.
struct RegistryKeyTrustCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "Trust a public key in the registry (copied to keys/<key id>.pub).",
        discussion: """
            Signatures by trusted keys make `verify`, `pull` and `info` report "trusted", which
            --require-signature demands.

            Examples (from the repository root):
              craft-registry key generate --output keys/team
              craft-registry --registry my-registry key trust keys/team.pub
            """)

    @OptionGroup var options: RegistryOptions

    @Argument(help: "A public key file written by `key generate` (KEY.pub).")
    var publicKey: String

    func run() throws {
        let registry = try options.resolvedRegistry()
        let key = try PublicKey.read(from: URL(fileURLWithPath: publicKey))
        let id = try registry.trust(key)
        if options.json {
            struct Result: Encodable {
                var keyId: String
                var registry: String
            }
            try Output.json(Result(keyId: id, registry: registry.location))
        } else {
            Output.line("Registry \(registry.location) now trusts key \(id).")
        }
    }
}
