import ArgumentParser
import CraftRegistry
import Foundation

/// `craft-registry compatible REF`: bundles on the other side sharing the codebook hash.
struct RegistryCompatibleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compatible",
        abstract: "List backends for an encoder (or encoders for a backend) that share its codebook hash.",
        discussion: """
            This is an index lookup by codebook hash; `pair ENCODER BACKEND` proves a pairing by \
            verifying both bundles and recomputing the encoder's hash.

            Examples (from the repository root):
              craft-registry compatible digits-siglip-vq
              craft-registry compatible digits-llama@1.0.0 --json
            """)

    @OptionGroup var options: RegistryOptions
    @OptionGroup var target: ReferenceArgument

    func run() throws {
        let registry = try options.resolvedRegistry()
        let (subject, partners, problems) = try registry.compatible(
            with: target.parsed(), includePrerelease: target.selection.includePrerelease)
        if options.json {
            struct Result: Encodable {
                var subject: BundleRow
                var partners: [BundleRow]
                var warnings: [String]
            }
            try Output.json(Result(
                subject: BundleRow(subject), partners: partners.map(BundleRow.init), warnings: problems.map(\.message)))
        } else {
            let other = subject.record.kind == .encoder ? "backends" : "encoders"
            if partners.isEmpty {
                Output.line("No \(other) share the codebook \(subject.record.codebook.hash) of \(subject.reference).")
            } else {
                Output.line("\(other.prefix(1).uppercased() + other.dropFirst()) sharing the codebook \(subject.record.codebook.hash) of \(subject.reference):")
                Output.line(BundleRow.table(partners))
            }
        }
        try IndexDamage.finish(problems: problems, registry: registry)
    }
}
