import ArgumentParser
import CraftBundles
import CraftRegistry
import Foundation

/// `craft-registry reindex`: rebuild registry.json and every shard from the bundle files present.
struct RegistryReindexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex",
        abstract: "Rebuild the index (registry.json and every shard) from the bundle files in the registry.",
        discussion: """
            Repairs a damaged index: a deleted or garbled registry.json, a missing or damaged shard, \
            names the index forgot, a missing, stale or damaged index/search.tsv (written last). Each bundles/NAME/NAME-VERSION.craft is read; a version an intact \
            shard already records with the file's digest keeps its record (signatures, yanked state); \
            any other file is verified as publish verifies it (archive checks, codebook hash \
            recomputed) and indexed unsigned. Records whose file is gone are dropped. Runs under the \
            registry lock; every index file is replaced atomically, and an intact index is left \
            byte for byte as it was. Exit 4 when a bundle file could not be indexed or is not the \
            published file (the rest is indexed all the same).

            Examples (from the repository root):
              craft-registry reindex
              craft-registry --registry registry reindex --json
            """)

    @OptionGroup var options: RegistryOptions

    func run() throws {
        let registry = try options.resolvedRegistry()
        let result = try registry.reindex()
        if options.json {
            struct Result: Encodable {
                var registry: String
                var names: [String]
                var versions: Int
                var kept: [String]
                var added: [String]
                var dropped: [String]
                var rewritten: [String]
                var removed: [String]
                var repaired: [String]
                var warnings: [String]
            }
            try Output.json(Result(
                registry: registry.location, names: result.names, versions: result.versionCount, kept: result.kept,
                added: result.added, dropped: result.dropped, rewritten: result.rewritten, removed: result.removed,
                repaired: result.repaired, warnings: result.problems.map(\.message)))
        } else {
            let changed = result.rewritten.isEmpty && result.removed.isEmpty
                ? "the index was intact; nothing rewritten"
                : "\(result.rewritten.count) index file\(result.rewritten.count == 1 ? "" : "s") written, \(result.removed.count) removed"
            Output.line("Reindexed \(registry.location): \(result.names.count) name\(result.names.count == 1 ? "" : "s"), \(result.versionCount) version\(result.versionCount == 1 ? "" : "s") (\(changed)).")
            if !result.added.isEmpty { Output.line("indexed from bundle files: \(result.added.joined(separator: ", "))") }
            if !result.dropped.isEmpty { Output.line("dropped (bundle file gone): \(result.dropped.joined(separator: ", "))") }
            for note in result.repaired { Output.line("repaired: \(note)") }
        }
        for problem in result.problems { Output.warning(problem.message) }
        if let first = result.problems.first {
            let more = result.problems.count == 1 ? "" : " (and \(result.problems.count - 1) more, listed above)"
            throw CommandError(.integrity, "the index was rebuilt, but \(first.message)\(more)")
        }
    }
}
