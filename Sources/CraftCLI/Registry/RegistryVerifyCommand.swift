import ArgumentParser
import CraftRegistry
import Foundation

/// `craft-registry verify FILE|REF`: hostile archive checks, digest and signatures.
struct RegistryVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a bundle file or a published version: archive safety, every file's sha256, digest, signatures.",
        discussion: """
            A FILE (an existing path, or anything ending in .craft or holding a '/') is checked on \
            its own, with FILE.sig when present; a REF is checked against the registry's index \
            (its digest must match) and the signatures recorded there. Signatures are checked \
            against the registry's trusted keys (keys/*.pub). Exit 4 on any integrity or signature \
            failure, 2 when the file or REF does not exist.

            Examples (from the repository root):
              craft-registry verify registry/bundles/digits-vq/digits-vq-1.0.0.craft
              craft-registry verify digits-siglip-vq@1.1.0 --json
            """)

    @OptionGroup var options: RegistryOptions
    @OptionGroup var selection: VersionSelectionOptions
    @OptionGroup var signing: SignatureOptions

    @Argument(help: "A .craft file, or NAME, NAME@VERSION, NAME@RANGE.")
    var target: String

    @Option(help: ArgumentHelp("A detached signature for FILE (default: FILE.sig when present).", valueName: "sig-file"))
    var signature: String?

    var isFile: Bool { BundleSource.looksLikePath(target) }

    func validate() throws {
        if !isFile {
            _ = try parseReference(target)
            if signature != nil {
                throw ValidationError("--signature applies to a FILE; a published REF is checked with the signatures recorded in the registry.")
            }
        }
    }

    func run() throws {
        let registry = try options.resolvedRegistry()
        let result: BundleVerification
        if isFile {
            let url = URL(fileURLWithPath: target)
            let trusted = registry.exists ? try registry.trustedKeys() : []
            result = try ProgressLine.run("verifying \(url.lastPathComponent)", bytes: ProgressLine.size(of: url)) {
                try BundleVerification.verify(
                    file: url, signatureFile: signature.map { URL(fileURLWithPath: $0) }, trustedKeys: trusted,
                    requireSignature: signing.requireSignature)
            }
        } else {
            let reference = try parseReference(target)
            result = try registry.verify(
                reference, includePrerelease: selection.includePrerelease, requireSignature: signing.requireSignature)
        }
        let manifest = result.bundle.manifest
        if options.json {
            struct Result: Encodable {
                var ok: Bool
                var file: String
                var reference: String?
                var name: String
                var version: String
                var kind: String
                var digest: String
                var size: Int64
                var files: Int
                var signatures: SignatureRow
            }
            try Output.json(Result(
                ok: true, file: result.file.path, reference: result.reference, name: manifest.name,
                version: manifest.version.description, kind: manifest.kind.rawValue, digest: result.bundle.digest,
                size: result.bundle.size, files: manifest.files.count, signatures: SignatureRow(result.signatures)))
        } else {
            Output.line("OK \(manifest.name)@\(manifest.version) (\(manifest.kind.rawValue), \(manifest.files.count) files, \(Output.size(result.bundle.size)))")
            Output.line(Output.table(header: ["digest:", result.bundle.digest], rows: [
                ["signature:", SignatureRow(result.signatures).text],
                ["file:", result.file.path],
            ]))
        }
    }
}
