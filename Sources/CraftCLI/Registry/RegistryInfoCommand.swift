import ArgumentParser
import CraftRegistry
import Foundation

/// `craft-registry info REF`: everything the index knows about one version, and the other versions.
struct RegistryInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show one bundle version: summary, runtime, codebook, digest, signatures, other versions.",
        discussion: """
            REF is NAME (newest visible version), NAME@VERSION (exactly, even if yanked) or \
            NAME@RANGE (^1.2, ~1.2.3, ">=1.0 <2.0", 1.x). Exit 2 when nothing matches.

            Examples:
              craft-registry info clinical-vq
              craft-registry info clinical-vq@^1.2 --json
            """)

    @OptionGroup var options: RegistryOptions
    @OptionGroup var target: ReferenceArgument

    func run() throws {
        let registry = options.resolvedRegistry()
        let bundle = try registry.resolve(target.parsed(), includePrerelease: target.selection.includePrerelease)
        let shard = try registry.shard(named: bundle.name)
        let signature: (row: SignatureRow?, problem: String?)
        do {
            signature = (SignatureRow(try registry.signatureStatus(of: bundle)), nil)
        } catch let error as RegistryError {
            signature = (nil, error.message)
        }
        if options.json {
            struct Signatures: Encodable {
                var status: String
                var keyIds: [String]
                var problem: String?
            }
            struct Result: Encodable {
                var bundle: BundleRow
                var signatures: Signatures
                var versions: [VersionRow]
            }
            try Output.json(Result(
                bundle: BundleRow(bundle),
                signatures: Signatures(
                    status: signature.row?.status ?? "invalid", keyIds: signature.row?.keyIds ?? [],
                    problem: signature.problem),
                versions: shard.versions.map(VersionRow.init)))
            return
        }
        let record = bundle.record
        let codebook = record.codebook
        let rows: [[String]] = [
            ["name:", bundle.name],
            ["version:", record.version + (record.yanked ? " (yanked)" : "")],
            ["kind:", record.kind.rawValue],
            ["summary:", record.summary],
            ["domains:", record.domains.joined(separator: ", ")],
            ["license:", record.license],
            ["runtime:", "\(record.runtime.id) \(record.runtime.version)"],
            ["codebook:", "\(codebook.hash) (K=\(codebook.entries), D=\(codebook.dim), depth=\(codebook.depth), \(codebook.metric))"],
            ["digest:", record.digest],
            ["size:", "\(Output.size(record.size)) (\(record.size) bytes)"],
            [bundle.remoteURL == nil ? "file:" : "url:", bundle.location],
            ["signature:", signature.row?.text ?? "INVALID: \(signature.problem ?? "")"],
            ["versions:", shard.versions.map { $0.version + ($0.yanked ? " (yanked)" : "") }.joined(separator: ", ")],
        ]
        Output.line(Output.table(header: rows[0], rows: Array(rows.dropFirst())))
    }
}

/// The REF argument of a command that looks up one published bundle, with `--include-prerelease`; a
/// malformed REF is refused before the command runs.
struct ReferenceArgument: ParsableArguments {
    @OptionGroup var selection: VersionSelectionOptions

    @Argument(help: "NAME, NAME@VERSION or NAME@RANGE.")
    var reference: String

    func validate() throws {
        _ = try parsed()
    }

    /// The parsed reference.
    func parsed() throws -> BundleReference {
        try parseReference(reference)
    }
}

/// Parses a REF argument, turning a malformed one into a usage error (exit 64).
func parseReference(_ text: String) throws -> BundleReference {
    do {
        return try BundleReference(parsing: text)
    } catch let error as RegistryError {
        throw ValidationError(error.message)
    }
}
