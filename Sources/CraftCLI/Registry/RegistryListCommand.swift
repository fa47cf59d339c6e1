import ArgumentParser
import CraftBundles
import CraftRegistry
import Foundation

/// `craft-registry list`: every bundle name with its newest visible version.
struct RegistryListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List every bundle in the registry (newest visible version of each name).",
        discussion: """
            Yanked versions and pre-releases are hidden (use --include-prerelease for pre-releases; \
            `info NAME` shows every version). A broken index file is reported on stderr and makes \
            the command exit 4 after printing the rest. A remote registry is listed from its \
            index/search.tsv (one file), or from every shard when it has none.

            Examples (from the repository root):
              craft-registry list
              craft-registry list --kind encoder --json
            """)

    @OptionGroup var options: RegistryOptions
    @OptionGroup var selection: VersionSelectionOptions

    @Option(help: "Only bundles of this kind (encoder or backend).")
    var kind: BundleKind?

    @Option(help: "Only bundles tagged with this domain.")
    var domain: String?

    func run() throws {
        let registry = try options.resolvedRegistry()
        let (bundles, problems) = try registry.list(
            kind: kind, domain: domain, includePrerelease: selection.includePrerelease)
        if options.json {
            struct Result: Encodable {
                var registry: String
                var bundles: [BundleRow]
                var warnings: [String]
            }
            try Output.json(Result(
                registry: registry.location, bundles: bundles.map(BundleRow.init), warnings: problems.map(\.message)))
        } else if bundles.isEmpty {
            Output.line("No bundles in \(registry.location)\(kind == nil && domain == nil ? "" : " match the filters").")
        } else {
            Output.line(BundleRow.table(bundles, extra: [("SIZE", { Output.size($0.record.size) })]))
        }
        try IndexDamage.finish(problems: problems, registry: registry)
    }
}

extension BundleKind: ExpressibleByArgument {}
