import ArgumentParser
import CraftAdaptation
import CraftBundles
import CraftCore
import CraftRegistry
import Foundation
import TensorCore

/// `craft stats`: code frequencies of an encoder over a dataset's images, written into a new version
/// of the encoder bundle for test-time token pruning.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Count an encoder's codes over a dataset and write them into a new bundle version for token pruning.",
        discussion: """
            Every image of the dataset (a JSONL of {"image", "prompt", "answer"} lines, image paths \
            relative to the file) is encoded; the first-level codes are counted into \
            code_frequencies.json ({"counts": [...], "entries": K, "total": N}), which --keep-ratio on \
            craft run and craft eval weighs codes by (docs/token-pruning.md). The new bundle has the \
            base's weights and codebook, a bumped patch version (or --version) and provenance; it is \
            written to --output-directory DIR (default craft-stats) as NAME-VERSION/ and NAME-VERSION.craft.

            Examples (from the repository root):
              craft stats --encoder digits-siglip-vq@1.1.0 \\
                  --data examples/publish-an-encoder/data/train.jsonl \\
                  --output-directory stats
              craft stats --encoder digits-siglip-vq@1.0.0 \\
                  --data examples/publish-an-encoder/data/val.jsonl \\
                  --output-directory stats --json
            """)

    @OptionGroup var options: RegistryOptions

    @OptionGroup var loading: LoadingOptions

    @Option(help: ArgumentHelp("The encoder: a .craft file, a bundle directory or NAME[@VERSION|@RANGE]. Example: --encoder derm-vq", valueName: "ref-or-file"))
    var encoder: String

    @Option(help: ArgumentHelp("The JSONL dataset whose images are encoded. Example: --data derm/train.jsonl", valueName: "file"))
    var data: String

    @Option(help: ArgumentHelp("Where NAME-VERSION/ and NAME-VERSION.craft go. Example: --output-directory out", valueName: "dir"))
    var outputDirectory = "craft-stats"

    @Option(help: ArgumentHelp("The new version (default: the base's patch version plus one). Example: --version 1.1.1", valueName: "semver"))
    var version: String?

    @Option(help: ArgumentHelp("The new bundle name (default: the base's). Example: --name derm-vq", valueName: "name"))
    var name: String?

    @Option(help: ArgumentHelp("Images encoded at once. Example: --batch-size 16", valueName: "n"))
    var batchSize = 8

    @Option(help: ArgumentHelp("How many of the most frequent codes to list. Example: --top 10", valueName: "n"))
    var top = 5

    @Flag(help: "Publish the packed bundle into the registry. Example: --publish --registry registry")
    var publish = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be 1 or more, not \(batchSize).") }
        guard top >= 0 else { throw ValidationError("--top must be 0 or more, not \(top).") }
        if let version, SemanticVersion(version) == nil {
            throw ValidationError("--version must be a semantic version such as 1.1.1, not \(version).")
        }
        if let name, !BundleReference.isValidName(name) {
            throw ValidationError("--name must be a bundle name (lowercase letters, digits, '.', '_', '-', starting with a letter or digit), not \(name).")
        }
        if !BundleSource.looksLikePath(encoder) { _ = try parseReference(encoder) }
    }

    func run() throws {
        loading.applyThreads()
        var request = CodeStatisticsRequest(
            encoder: BundleSource(argument: encoder), data: URL(fileURLWithPath: data), outputDirectory: URL(fileURLWithPath: outputDirectory))
        request.version = version.flatMap { SemanticVersion($0) }
        request.name = name
        request.registry = try options.resolvedRegistry()
        request.policy = loading.policy
        request.publish = publish
        request.batchSize = batchSize
        let result = try CodeStatisticsJob.run(request)
        let report = StatsReport(result, top: top)
        if options.json {
            try Output.json(report)
            return
        }
        let rows: [[String]] = [
            ["encoder", "\(result.base) -> \(result.manifest.reference)"],
            ["images", "\(result.images)"],
            ["tokens", "\(result.tokens)"],
            ["codes used", "\(result.codesUsed) of \(result.frequencies.entries)"],
            ["perplexity", String(format: "%.2f", result.perplexity)],
            ["top codes", report.topCodes.map { "\($0.code) (\($0.count))" }.joined(separator: ", ")],
            ["bundle", result.packedBundle.path],
            ["directory", result.bundleDirectory.path],
        ] + (result.published.map { [["published", "\($0.name)@\($0.record.version) (\($0.outcome.rawValue))"]] } ?? [])
        Output.line(Output.table(header: ["", ""], rows: rows).split(separator: "\n", omittingEmptySubsequences: false).dropFirst().joined(separator: "\n"))
    }

    /// `--json` output of `craft stats`.
    struct StatsReport: Encodable {
        struct CodeCount: Encodable {
            var code: Int
            var count: Int
        }
        var base: String
        var encoder: String
        var images: Int
        var tokens: Int
        var entries: Int
        var codesUsed: Int
        var perplexity: Double
        var topCodes: [CodeCount]
        var bundle: String
        var bundleDirectory: String
        var bundleDigest: String
        var published: Bool

        init(_ result: CodeStatisticsResult, top: Int) {
            base = result.base
            encoder = result.manifest.reference
            images = result.images
            tokens = result.tokens
            entries = result.frequencies.entries
            codesUsed = result.codesUsed
            perplexity = result.perplexity
            topCodes = result.topCodes(top).map { CodeCount(code: $0.code, count: $0.count) }
            bundle = result.packedBundle.path
            bundleDirectory = result.bundleDirectory.path
            bundleDigest = result.packedDigest
            published = result.published != nil
        }
    }
}
