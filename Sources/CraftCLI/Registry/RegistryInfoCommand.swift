import ArgumentParser
import CraftBundles
import CraftRegistry
import Foundation

/// `craft-registry info REF`: everything the index knows about one version, and the other versions.
struct RegistryInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show one bundle version: summary, runtime, codebook, provenance, digest, signatures, other versions.",
        discussion: """
            REF is NAME (newest visible version), NAME@VERSION (exactly, even if yanked) or \
            NAME@RANGE (^1.2, ~1.2.3, ">=1.0 <2.0", 1.x). Exit 2 when nothing matches. \
            Provenance (how the bundle was made: method, base, surrogate, validation accuracy before \
            and after), prompt template and context length are read from the bundle's craft.json: \
            for a remote registry, once the bundle is in the cache (craft-registry pull REF).

            Examples (from the repository root):
              craft-registry info digits-siglip-vq
              craft-registry info digits-llama@^1.0 --json
            """)

    @OptionGroup var options: RegistryOptions
    @OptionGroup var target: ReferenceArgument

    func run() throws {
        let registry = try options.resolvedRegistry()
        let bundle = try registry.resolve(target.parsed(), includePrerelease: target.selection.includePrerelease)
        let shard = try registry.shard(named: bundle.name)
        let signature: (row: SignatureRow?, problem: String?)
        do {
            signature = (SignatureRow(try registry.signatureStatus(of: bundle)), nil)
        } catch let error as RegistryError {
            signature = (nil, error.message)
        }
        let details = BundleDetails(bundle)
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
                var details: BundleDetails
            }
            try Output.json(Result(
                bundle: BundleRow(bundle),
                signatures: Signatures(
                    status: signature.row?.status ?? "invalid", keyIds: signature.row?.keyIds ?? [],
                    problem: signature.problem),
                versions: shard.versions.map(VersionRow.init), details: details))
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
        ] + (bundle.source.map { [["registry:", $0]] } ?? []) + [
            ["signature:", signature.row?.text ?? "INVALID: \(signature.problem ?? "")"],
            ["versions:", shard.versions.map { $0.version + ($0.yanked ? " (yanked)" : "") }.joined(separator: ", ")],
        ] + details.rows(reference: bundle.reference)
        Output.line(Output.table(header: rows[0], rows: Array(rows.dropFirst())))
    }
}

/// What `info` reads from a bundle's own craft.json rather than the index: how it was made
/// (`provenance`, as the manifest holds it), and a backend's prompt template and context length.
/// `source` says where they came from: `bundle`, or `not-downloaded` for a remote bundle not in the
/// cache, or `unreadable` (with `problem`).
struct BundleDetails: Encodable {
    var source: String
    var problem: String?
    var provenance: JSONValue?
    var promptTemplate: String?
    var contextLength: Int?

    init(_ bundle: ResolvedBundle) {
        guard FileManager.default.fileExists(atPath: bundle.file.path) else {
            source = "not-downloaded"
            return
        }
        do {
            let manifest = try BundleArchive.readManifest(of: bundle.file)
            source = "bundle"
            provenance = manifest.provenance
            promptTemplate = manifest.backend?.promptTemplate
            contextLength = manifest.backend?.contextLength
        } catch {
            source = "unreadable"
            problem = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
        }
    }

    /// The text rows: method, base and surrogate, accuracies, training, prompt template, context length.
    func rows(reference: String) -> [[String]] {
        switch source {
        case "not-downloaded": return [["provenance:", "in the bundle, not downloaded yet; craft-registry pull \(reference) fetches it"]]
        case "unreadable": return [["provenance:", "unreadable: \(problem ?? "")"]]
        default: break
        }
        var rows: [[String]] = []
        if let provenance {
            let text = { (key: String) in provenance[key]?.stringValue }
            var made = text("method") ?? "unknown"
            let origins = [text("base").map { "base \($0)" }, text("surrogate").map { "surrogate \($0)" }].compactMap { $0 }
            if !origins.isEmpty { made += " (\(origins.joined(separator: ", ")))" }
            rows.append(["method:", made])
            if let before = provenance["validation_accuracy_before"]?.doubleValue, let after = provenance["validation_accuracy_after"]?.doubleValue {
                let count = provenance["validation_examples"]?.integerValue.map { " on \($0) validation examples" } ?? ""
                rows.append(["accuracy:", String(format: "%.1f %% before, %.1f %% after", before * 100, after * 100) + count])
            }
            let training = [
                provenance["steps"]?.integerValue.map { "\($0) steps" }, provenance["seed"]?.integerValue.map { "seed \($0)" },
                text("dataset").map { "data \($0)" }, text("created_by").map { "by \($0)" },
            ].compactMap { $0 }
            if !training.isEmpty { rows.append(["made:", training.joined(separator: ", ")]) }
        } else {
            rows.append(["provenance:", "none recorded"])
        }
        if let promptTemplate { rows.append(["prompt template:", promptTemplate.debugDescription]) }
        if let contextLength { rows.append(["context length:", "\(contextLength) tokens"]) }
        return rows
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
