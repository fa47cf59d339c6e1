import ArgumentParser
import CraftBundles
import CraftCore
import CraftRegistry
import CraftRuntimes
import Foundation

/// `craft-registry pair ENCODER BACKEND`: prove (or refute) that two bundles can be wired together.
struct RegistryPairCommand: EnvironmentCommand {
    static let configuration = CommandConfiguration(
        commandName: "pair",
        abstract: "Verify an encoder and a backend and run the compatibility checker on them (exit 3 when incompatible).",
        discussion: """
            Each side is a .craft FILE, an unpacked bundle DIRECTORY or a REF from the registry. Both \
            bundles are verified first (hostile archive checks, digest against the index for REFs, \
            every listed file's digest for directories, signatures); the checker then \
            recomputes the encoder's codebook hash from its tensor and runs every check of \
            docs/compatibility.md. The report is printed on stdout (--json: the checker's JSON); \
            exit 0 when the pair is compatible, 3 when not, 4 when a bundle fails verification.

            Examples (from the repository root):
              craft-registry pair digits-siglip-vq digits-gpt2
              craft-registry pair \\
                  registry/bundles/digits-siglip-vq/digits-siglip-vq-1.1.0.craft \\
                  digits-llama@^1.0 --json
            """)

    @OptionGroup var options: RegistryOptions
    @OptionGroup var selection: VersionSelectionOptions
    @OptionGroup var signing: SignatureOptions

    @Argument(help: "The encoder: a .craft file, a bundle directory or NAME[@VERSION|@RANGE].")
    var encoder: String

    @Argument(help: "The backend: a .craft file, a bundle directory or NAME[@VERSION|@RANGE].")
    var backend: String

    func validate() throws {
        for side in [encoder, backend] where !BundleSource.looksLikePath(side) {
            _ = try parseReference(side)
        }
    }

    func run(in environment: CraftEnvironment) throws {
        let registry = try options.resolvedRegistry()
        let workspace = try RuntimeWorkspace(
            policy: OpeningPolicy(includePrerelease: selection.includePrerelease, requireSignature: signing.requireSignature))
        defer { workspace.remove() }
        let encoderBundle = try workspace.open(encoder, registry: registry, as: "encoder")
        let backendBundle = try workspace.open(backend, registry: registry, as: "backend")
        // The environment's runtimes (every one Craft ships, plus an application's) count as registered.
        let report = checkCompatibility(encoder: encoderBundle.bundle, backend: backendBundle.bundle, runtimes: environment.runtimes)
        if options.json {
            Output.line(try report.renderJSON().trimmingCharacters(in: .newlines))
        } else {
            Output.line(report.renderText().trimmingCharacters(in: .newlines))
        }
        QuantizerBypass.warn(encoderBundle.bundle.manifest)
        if !report.isCompatible {
            let names = "\(encoderBundle.bundle.manifest.reference) and \(backendBundle.bundle.manifest.reference)"
            let first = report.failures.first.map { " (\($0.code): \($0.reason))" } ?? ""
            throw CommandError(.incompatible, "\(names) cannot be paired\(first); see the report above")
        }
    }
}
