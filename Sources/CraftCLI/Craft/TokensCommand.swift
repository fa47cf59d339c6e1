import ArgumentParser
import CraftBundles
import CraftCore
import CraftRegistry
import CraftRuntimes
import Foundation

/// `craft tokens`: the visual token codes an encoder gives an image, as its patch grid.
struct TokensCommand: EnvironmentCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Print the visual token codes (patch grid) an encoder gives an image.",
        discussion: """
            The encoder is a .craft FILE, a bundle DIRECTORY or a REF from the registry; its runtime (siglip-vq, see \
            docs/runtimes.md) loads it. Text output is one line per grid row, codes separated by spaces \
            (residual levels joined with "+"). --json prints `encoder`, `codebook_hash`, `rows`, \
            `columns`, `depth` and `codes` ([row][column][level]).

            Examples (from the repository root):
              craft tokens --registry registry --encoder digits-siglip-vq@1.1.0 \\
                  --image examples/data/digits/images/strong/0000.png
              craft tokens --encoder dist/derm-vq-1.2.0.craft --image lesion.png --json
            """)

    @OptionGroup var options: RegistryOptions

    @OptionGroup var loading: LoadingOptions

    @Option(help: ArgumentHelp("The encoder: a .craft file, a bundle directory or NAME[@VERSION|@RANGE].", valueName: "bundle"))
    var encoder: String

    @Option(help: ArgumentHelp("The image (PNG or JPEG); for an encoder whose images are the rows of its feature table (table-encoder), an image index.", valueName: "file"))
    var image: String

    func validate() throws {
        if !BundleSource.looksLikePath(encoder) { _ = try parseReference(encoder) }
    }

    func run(in environment: CraftEnvironment) throws {
        loading.applyThreads()
        let workspace = try RuntimeWorkspace(policy: loading.policy)
        defer { workspace.remove() }
        let bundle = try workspace.unpack(encoder, registry: options.resolvedRegistry(), as: "encoder")
        guard bundle.manifest.kind == .encoder else {
            throw CommandError(.usage, "\(bundle.manifest.reference) is a backend bundle; craft tokens needs an encoder")
        }
        let live = try environment.runtimes.loadEncoder(bundle)
        let tokens: VisualTokens
        switch try ImageArgument(image, for: live, reference: bundle.manifest.reference, field: "--image") {
        case .file(let path):
            guard let encoded = try live.encode(live.preprocess(RuntimeWorkspace.loadImage(path)).unsqueezed(0)).first else {
                throw CommandError(.other, "the encoder \(bundle.manifest.reference) returned no tokens for \(image)")
            }
            tokens = encoded
        case .index(let index, let indexed):
            tokens = try indexed.tokens(forImage: index)
        }
        let depth = tokens.codes.shape.last ?? 1
        let codes = tokens.codes.scalars.map { Int($0) }
        var grid = Array(repeating: Array(repeating: [Int](), count: tokens.grid.columns), count: tokens.grid.rows)
        for (index, position) in tokens.positions.enumerated()
        where position.row < tokens.grid.rows && position.column < tokens.grid.columns {
            grid[position.row][position.column] = Array(codes[(index * depth)..<((index + 1) * depth)])
        }
        if options.json {
            try Output.json(TokensReport(
                encoder: bundle.manifest.reference, codebookHash: tokens.codebookHash, rows: tokens.grid.rows,
                columns: tokens.grid.columns, depth: depth, codes: grid))
        } else {
            let cells = grid.map { row in row.map { $0.map(String.init).joined(separator: "+") } }
            let width = cells.flatMap { $0 }.map(\.count).max() ?? 1
            for row in cells {
                Output.line(row.map { String(repeating: " ", count: width - $0.count) + $0 }.joined(separator: " "))
            }
        }
    }

    /// `--json` output of `craft tokens`.
    struct TokensReport: Encodable {
        var encoder: String
        var codebookHash: String
        var rows: Int
        var columns: Int
        var depth: Int
        var codes: [[[Int]]]
    }
}
