import ArgumentParser
import CraftBundles
import CraftCore
import CraftRegistry
import CraftRuntimes
import Foundation

/// `craft-registry pair ENCODER BACKEND`: prove (or refute) that two bundles can be wired together.
struct RegistryPairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pair",
        abstract: "Verify an encoder and a backend and run the compatibility checker on them (exit 3 when incompatible).",
        discussion: """
            Each side is a .craft FILE or a REF from the registry. Both bundles are verified first \
            (hostile archive checks, digest against the index for REFs, signatures); the checker then \
            recomputes the encoder's codebook hash from its tensor and runs every check of \
            docs/compatibility.md. The report is printed on stdout (--json: the checker's JSON); \
            exit 0 when the pair is compatible, 3 when not, 4 when a bundle fails verification.

            Examples:
              craft-registry pair derm-vq tiny-llm
              craft-registry pair dist/derm-vq-1.2.0.craft tiny-llm@^0.3 --json
            """)

    @OptionGroup var options: RegistryOptions
    @OptionGroup var selection: VersionSelectionOptions
    @OptionGroup var signing: SignatureOptions

    @Argument(help: "The encoder: a .craft file or NAME[@VERSION|@RANGE].")
    var encoder: String

    @Argument(help: "The backend: a .craft file or NAME[@VERSION|@RANGE].")
    var backend: String

    func validate() throws {
        for side in [encoder, backend] where !BundleArgument.isFile(side) {
            _ = try parseReference(side)
        }
    }

    func run() throws {
        let registry = options.resolvedRegistry()
        let encoderBundle = try BundleArgument.verify(
            encoder, registry: registry, includePrerelease: selection.includePrerelease,
            requireSignature: signing.requireSignature)
        let backendBundle = try BundleArgument.verify(
            backend, registry: registry, includePrerelease: selection.includePrerelease,
            requireSignature: signing.requireSignature)
        // The model runtimes (siglip-vq, llama, gpt2) count as registered, as for craft run and eval.
        let report = checkCompatibility(encoder: encoderBundle.bundle, backend: backendBundle.bundle, runtimes: .craftDefault)
        if options.json {
            Output.line(try report.renderJSON().trimmingCharacters(in: .newlines))
        } else {
            Output.line(report.renderText().trimmingCharacters(in: .newlines))
        }
        if !report.isCompatible {
            let names = "\(encoderBundle.bundle.manifest.reference) and \(backendBundle.bundle.manifest.reference)"
            let first = report.failures.first.map { " (\($0.code): \($0.reason))" } ?? ""
            throw CommandError(.incompatible, "\(names) cannot be paired\(first); see the report above")
        }
    }
}

/// A command-line argument naming a bundle: a `.craft` file or a registry REF.
enum BundleArgument {
    /// An existing path, or anything that looks like one (ends in `.craft`, holds a `/`).
    static func isFile(_ text: String) -> Bool {
        FileManager.default.fileExists(atPath: text) || text.hasSuffix(".craft") || text.contains("/")
    }

    /// Verifies the bundle the argument names (signatures checked against the registry's trusted keys).
    static func verify(
        _ text: String, registry: Registry, includePrerelease: Bool, requireSignature: Bool
    ) throws -> BundleVerification {
        if isFile(text) {
            let url = URL(fileURLWithPath: text)
            let trusted = registry.exists ? try registry.trustedKeys() : []
            return try ProgressLine.run("verifying \(url.lastPathComponent)", bytes: ProgressLine.size(of: url)) {
                try BundleVerification.verify(file: url, trustedKeys: trusted, requireSignature: requireSignature)
            }
        }
        let reference = try parseReference(text)
        let resolved = try registry.resolve(reference, includePrerelease: includePrerelease)
        return try ProgressLine.run("verifying \(resolved.reference)", bytes: resolved.record.size) {
            try registry.verify(
                BundleReference(name: resolved.name, requirement: .exact(resolved.record.version)),
                requireSignature: requireSignature)
        }
    }
}
