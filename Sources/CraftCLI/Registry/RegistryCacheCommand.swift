import ArgumentParser
import CraftRegistry
import Foundation

/// `craft-registry cache`: what pulls and remote registries left in the cache.
struct RegistryCacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "List or prune the cache of pulled bundles, downloads and remote indexes.",
        discussion: """
            The cache is $CRAFT_CACHE, else ~/.craft/cache. It holds bundles unpacked by pull and \
            run (by digest), bundle files downloaded from remote registries, interrupted downloads \
            (resumed by the next pull) and the mirrored indexes of remote registries (read by \
            --offline).

            Examples (from the repository root):
              craft-registry cache list
              craft-registry cache prune --unused-days 30
              craft-registry cache prune --all
            """,
        subcommands: [RegistryCacheListCommand.self, RegistryCachePruneCommand.self])
}

/// One cache item in `--json` output.
struct CacheRow: Encodable {
    var kind: String
    var label: String?
    var digest: String?
    var path: String
    var bytes: Int64
    var lastUsed: String

    init(_ item: CacheItem) {
        kind = item.kind.rawValue
        label = item.label
        digest = item.digest
        path = item.path.path
        bytes = item.bytes
        lastUsed = ISO8601DateFormatter().string(from: item.lastUsed)
    }

    static func table(_ items: [CacheItem]) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return Output.table(
            header: ["KIND", "WHAT", "SIZE", "LAST USED (UTC)"],
            rows: items.map { item in
                [item.kind.rawValue, item.label ?? item.digest.map { String($0.prefix(19)) + "…" } ?? item.path.lastPathComponent,
                 Output.size(item.bytes), formatter.string(from: item.lastUsed)]
            })
    }
}

/// `craft-registry cache list`.
struct RegistryCacheListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List what the cache holds, with sizes and when each was last used.",
        discussion: """
            Examples (from the repository root):
              craft-registry cache list
              CRAFT_CACHE=/tmp/craft-cache craft-registry cache list --json
            """)

    @OptionGroup var options: RegistryOptions

    func run() throws {
        let cache = BundleCache.locate()
        let items = cache.inventory()
        let total = items.reduce(0) { $0 + $1.bytes }
        if options.json {
            struct Result: Encodable {
                var cache: String
                var items: [CacheRow]
                var bytes: Int64
            }
            try Output.json(Result(cache: cache.root.path, items: items.map(CacheRow.init), bytes: total))
        } else if items.isEmpty {
            Output.line("The cache \(cache.root.path) is empty.")
        } else {
            Output.line(CacheRow.table(items))
            Output.line("\(items.count) item\(items.count == 1 ? "" : "s"), \(Output.size(total)) in \(cache.root.path).")
        }
    }
}

/// `craft-registry cache prune`.
struct RegistryCachePruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove cache items not used for a number of days (or everything).",
        discussion: """
            A pull or run that reuses an item marks it used. Removed bundles are pulled or \
            downloaded again when next needed.

            Examples (from the repository root):
              craft-registry cache prune                  # unused for 30 days
              craft-registry cache prune --unused-days 7
              craft-registry cache prune --all
            """)

    @OptionGroup var options: RegistryOptions

    @Option(help: ArgumentHelp("Remove items not used for this many days.", valueName: "days"))
    var unusedDays: Double = 30

    @Flag(help: "Remove everything in the cache.")
    var all = false

    func validate() throws {
        guard unusedDays >= 0 else { throw ValidationError("--unused-days must be 0 or more, not \(unusedDays).") }
    }

    func run() throws {
        let cache = BundleCache.locate()
        let removed = try cache.prune(unusedFor: all ? 0 : unusedDays * 86_400)
        let total = removed.reduce(0) { $0 + $1.bytes }
        if options.json {
            struct Result: Encodable {
                var cache: String
                var removed: [CacheRow]
                var bytes: Int64
            }
            try Output.json(Result(cache: cache.root.path, removed: removed.map(CacheRow.init), bytes: total))
        } else if removed.isEmpty {
            Output.line("Nothing to remove from \(cache.root.path)\(all ? "" : " (nothing unused for \(Self.days(unusedDays)))").")
        } else {
            Output.line(CacheRow.table(removed))
            Output.line("Removed \(removed.count) item\(removed.count == 1 ? "" : "s"), \(Output.size(total)), from \(cache.root.path).")
        }
    }

    static func days(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) day\(value == 1 ? "" : "s")" : "\(value) days"
    }
}
