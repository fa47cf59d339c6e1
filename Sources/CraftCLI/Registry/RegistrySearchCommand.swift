import ArgumentParser
import CraftBundles
import CraftRegistry
import Foundation

/// `craft-registry search QUERY`: ranked search over names, summaries, tags and hashes.
struct RegistrySearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search bundles by name, summary, domain, kind, runtime or codebook hash.",
        discussion: """
            Ranking: exact name > name prefix > codebook-hash or digest prefix (6+ hex digits) > \
            name contains > domain/kind/runtime tag > summary word. Every word of a multi-word \
            query must match something unless the whole query matches the name or a hash. \
            A remote registry is searched through its index/search.tsv (one file, revalidated \
            with its ETag), or through every shard when it has none; a damaged search index is \
            reported (exit 4) and the shards answer instead.

            Examples (from the repository root):
              craft-registry search digits
              craft-registry search "handwritten digits" --kind backend
              craft-registry search sha256:363a276a --json
            """)

    @OptionGroup var options: RegistryOptions
    @OptionGroup var selection: VersionSelectionOptions

    @Argument(help: "Words to look for, or a codebook hash / digest prefix.")
    var query: String

    @Option(help: "Only bundles of this kind (encoder or backend).")
    var kind: BundleKind?

    @Option(help: "Only bundles tagged with this domain.")
    var domain: String?

    func validate() throws {
        if query.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("QUERY is empty; give a word to search for (use `list` to see everything).")
        }
    }

    func run() throws {
        let registry = try options.resolvedRegistry()
        let (hits, problems) = try registry.search(
            query, kind: kind, domain: domain, includePrerelease: selection.includePrerelease)
        if options.json {
            struct Hit: Encodable {
                var bundle: BundleRow
                var score: Int
                var reasons: [String]
            }
            struct Result: Encodable {
                var query: String
                var results: [Hit]
                var warnings: [String]
            }
            try Output.json(Result(
                query: query,
                results: hits.map { Hit(bundle: BundleRow($0.bundle), score: $0.score, reasons: $0.reasons) },
                warnings: problems.map(\.message)))
        } else if hits.isEmpty {
            Output.line("No bundle matches '\(query)'.")
        } else {
            let byName = Dictionary(hits.map { ($0.bundle.name, $0) }, uniquingKeysWith: { first, _ in first })
            Output.line(BundleRow.table(
                hits.map(\.bundle),
                extra: [("MATCHED", { byName[$0.name]?.reasons.joined(separator: ",") ?? "" })]))
        }
        try IndexDamage.finish(problems: problems, registry: registry)
    }
}
