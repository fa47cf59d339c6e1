import ArgumentParser
import CraftBundles
import CraftCore
import CraftImaging
import CraftPipeline
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

            --keep-ratio R prunes the tokens as craft run and craft eval do (codebook rarity, \
            docs/token-pruning.md) and says how many are kept; --json adds `keep_ratio` and `kept` \
            ([row][column], true when kept). --overlay FILE.png draws the image as the encoder sees \
            it (resized to its input size, scaled up to at least 256 pixels) with the kept patches \
            bright inside a thin yellow grid and the pruned ones greyed, darkened and hatched; the \
            file is written atomically, and its directory must exist.

            Examples (from the repository root):
              craft tokens --registry registry --encoder digits-siglip-vq@1.1.0 \\
                  --image examples/data/digits/images/strong/0000.png
              craft tokens --registry registry --encoder digits-siglip-vq@1.1.0 \\
                  --image examples/data/digits/images/strong/0000.png \\
                  --keep-ratio 0.5 --overlay overlay.png
              craft tokens --encoder digits-vq --image 3 --json
            """)

    @OptionGroup var options: RegistryOptions

    @OptionGroup var loading: LoadingOptions

    @Option(help: ArgumentHelp("The encoder: a .craft file, a bundle directory or NAME[@VERSION|@RANGE].", valueName: "bundle"))
    var encoder: String

    @Option(help: ArgumentHelp("The image (PNG or JPEG); for an encoder whose images are the rows of its feature table (table-encoder), an image index.", valueName: "file"))
    var image: String

    @Option(help: ArgumentHelp("Prune to this fraction of the tokens, in (0, 1], as craft run and craft eval --keep-ratio do, and show which are kept. Example: --keep-ratio 0.5", valueName: "ratio"))
    var keepRatio: Double?

    @Option(help: ArgumentHelp("Draw the image as the encoder sees it with the kept tokens bright and the pruned ones greyed and hatched into this PNG file. Example: --keep-ratio 0.5 --overlay overlay.png", valueName: "file.png"))
    var overlay: String?

    func validate() throws {
        if !BundleSource.looksLikePath(encoder) { _ = try parseReference(encoder) }
        if let keepRatio, !(keepRatio > 0 && keepRatio <= 1) {
            throw ValidationError("--keep-ratio must be in (0, 1], such as 0.5 (1 keeps every token), not \(keepRatio).")
        }
        if let overlay { try PictureFile.validateDestination(overlay, flag: "--overlay", fileExtension: "png") }
    }

    func run(in environment: CraftEnvironment) throws {
        loading.applyThreads()
        let workspace = try RuntimeWorkspace(policy: loading.policy)
        defer { workspace.remove() }
        let bundle = try workspace.unpack(encoder, registry: try options.resolvedRegistry(), as: "encoder")
        guard bundle.manifest.kind == .encoder else {
            throw CommandError(.usage, "\(bundle.manifest.reference) is a backend bundle; craft tokens needs an encoder")
        }
        let live = try environment.runtimes.loadEncoder(bundle)
        let tokens: VisualTokens
        var picture: RGBImage?
        switch try ImageArgument(image, for: live, reference: bundle.manifest.reference, field: "--image") {
        case .file(let path):
            let loaded = try RuntimeWorkspace.loadImage(path)
            guard let encoded = try live.encode(live.preprocess(loaded).unsqueezed(0)).first else {
                throw CommandError(.other, "the encoder \(bundle.manifest.reference) returned no tokens for \(image)")
            }
            tokens = encoded
            picture = loaded
        case .index(let index, let indexed):
            if overlay != nil {
                throw CommandError(.usage, "--overlay needs an image file, but the images of \(bundle.manifest.reference) are the rows of its feature table (--image \(image) is an index)")
            }
            tokens = try indexed.tokens(forImage: index)
        }
        // Which grid positions pruning keeps (all without --keep-ratio).
        var keptGrid = Array(repeating: Array(repeating: keepRatio == nil, count: tokens.grid.columns), count: tokens.grid.rows)
        var keptCount = tokens.count
        if let keepRatio {
            let frequencies = try Pipeline.loadCodeFrequencies(bundle)
            if frequencies == nil, keepRatio < 1 {
                Output.warning("\(bundle.manifest.reference) carries no \(Pipeline.codeFrequenciesFile); pruning with uniform code frequencies (tokens rank by residual norm and isolation)")
            }
            let kept = try Pipeline.pruned(tokens, keepRatio: keepRatio, codeFrequencies: frequencies, codebookEntries: bundle.manifest.codebook.entries)
            keptCount = kept.count
            for position in kept.positions where position.row < tokens.grid.rows && position.column < tokens.grid.columns {
                keptGrid[position.row][position.column] = true
            }
        }
        if let overlay, let picture {
            try writeOverlay(picture, kept: keptGrid, bundle: bundle, imageSize: live.imageSize, to: overlay)
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
                columns: tokens.grid.columns, depth: depth, codes: grid,
                keepRatio: keepRatio, kept: keepRatio == nil ? nil : keptGrid, overlay: overlay))
        } else {
            let cells = grid.map { row in row.map { $0.map(String.init).joined(separator: "+") } }
            let width = cells.flatMap { $0 }.map(\.count).max() ?? 1
            for row in cells {
                Output.line(row.map { String(repeating: " ", count: width - $0.count) + $0 }.joined(separator: " "))
            }
            if let keepRatio { Output.line("kept \(keptCount) of \(tokens.count) tokens at --keep-ratio \(keepRatio)") }
            if let overlay { Output.line("overlay written to \(overlay)") }
        }
    }

    /// Draws ``TokenOverlay`` for `picture`, resized to the encoder's input size with the bundle's
    /// resampling filter (as its preprocessing resizes it), and writes it as PNG atomically.
    private func writeOverlay(_ picture: RGBImage, kept: [[Bool]], bundle: UnpackedBundle, imageSize: (height: Int, width: Int), to path: String) throws {
        let preprocessing = try ImagePreprocessing(bundle: bundle)
        let drawn: Data
        do {
            var seen = try Image(width: picture.width, height: picture.height, colorModel: .rgb, bytes: picture.pixels)
            if preprocessing.resize, (seen.width, seen.height) != (imageSize.width, imageSize.height) {
                seen = try seen.resized(width: imageSize.width, height: imageSize.height, filter: preprocessing.resampling)
            }
            drawn = try TokenOverlay.draw(seen, kept: kept).pngData()
        } catch {
            let reason = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
            throw CommandError(.other, "cannot draw the token overlay of \(image): \(reason)")
        }
        try PictureFile.write(drawn, to: URL(fileURLWithPath: path))
    }

    /// `--json` output of `craft tokens`.
    struct TokensReport: Encodable {
        var encoder: String
        var codebookHash: String
        var rows: Int
        var columns: Int
        var depth: Int
        var codes: [[[Int]]]
        /// `--keep-ratio`, when given.
        var keepRatio: Double?
        /// `[row][column]`: whether pruning keeps the token (with `--keep-ratio`).
        var kept: [[Bool]]?
        /// The `--overlay` file, when written.
        var overlay: String?
    }
}
