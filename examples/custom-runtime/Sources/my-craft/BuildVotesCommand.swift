// `my-craft build-votes`: builds a code-vote backend bundle for an encoder from a labelled dataset.
// An application's own command, running in the same environment as Craft's commands.
import ArgumentParser
import CraftBundles
import CraftCLI
import CraftCore
import CraftRegistry
import CraftRuntimes
import CraftTraining
import Foundation

struct BuildVotesCommand: EnvironmentCommand {
    static let configuration = CommandConfiguration(
        commandName: "build-votes",
        abstract: "Build a code-vote backend bundle: count which answers each visual code of an encoder goes with.",
        discussion: """
            Encodes every image of a JSONL dataset ({"image", "prompt", "answer"}) with the encoder, \
            counts each first-level code's answers per prompt, and packs a backend bundle for the \
            code-vote runtime that reads the encoder's codebook (so it pairs with every encoder \
            sharing it).

            Example (from the repository root; D=examples/data/digits):
              my-craft build-votes --registry registry \\
                  --encoder digits-siglip-vq@1.1.0 \\
                  --data $D/strong-train.jsonl --output votes.craft
            """)

    @OptionGroup var options: RegistryOptions

    @Option(help: ArgumentHelp("The encoder: a .craft file, a bundle directory or NAME[@VERSION|@RANGE].", valueName: "bundle"))
    var encoder: String

    @Option(help: ArgumentHelp("The labelled JSONL dataset.", valueName: "file"))
    var data: String

    @Option(help: ArgumentHelp("The packed bundle to write.", valueName: "file"))
    var output: String

    @Option(help: "The bundle's name.")
    var name = "digits-votes"

    @Option(help: "Use only the first N examples.")
    var limit: Int?

    func run(in environment: CraftEnvironment) throws {
        let registry = Registry.locate(explicit: options.registry).registry
        let opener = try BundleOpener(prefix: "my-craft")
        defer { opener.remove() }
        let opened = try opener.open(BundleSource(argument: encoder), role: "encoder", registry: registry)
        let model = try environment.runtimes.loadEncoder(opened.bundle)

        var votes = CodeVotes()
        var codesOfImage: [URL: [Int32]] = [:]
        let examples = try TrainingDataset(contentsOf: URL(fileURLWithPath: data)).examples.prefix(limit ?? .max)
        for example in examples {
            let codes: [Int32]
            if let cached = codesOfImage[example.imageURL] {
                codes = cached
            } else {
                let pixels = try model.preprocess(try ImageInput.rgbImage(contentsOf: example.imageURL))
                let tokens = try model.encode(pixels.unsqueezed(0))[0]
                let depth = tokens.codes.shape[1]
                codes = stride(from: 0, to: tokens.codes.scalars.count, by: depth).map { tokens.codes.scalars[$0] }
                codesOfImage[example.imageURL] = codes
            }
            votes.add(codes: codes, prompt: example.prompt, answer: example.answer)
        }

        // The bundle: votes.json and a manifest reading the encoder's codebook (hash only, no tensor).
        let staging = opener.root.appendingPathComponent("bundle")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        let encoder = opened.manifest
        let encoderCodebook = encoder.codebook
        let manifest = BundleManifest(
            kind: .backend, name: name, version: try SemanticVersion(parsing: "1.0.0"),
            summary: "Answers by votes of \(encoder.name)'s visual codes (\(examples.count) examples)",
            domains: encoder.domains, license: encoder.license,
            runtime: RuntimeReference(id: CodeVoteBackend.runtimeID, version: try SemanticVersion(parsing: "1.0.0")),
            codebook: CodebookDescriptor(
                hash: encoderCodebook.hash, entries: encoderCodebook.entries, dimension: encoderCodebook.dimension,
                depth: encoderCodebook.depth, metric: encoderCodebook.metric),
            files: [BundleFileEntry(path: CodeVoteBackend.votesFile, size: 0, sha256: String(repeating: "0", count: 64))],
            backend: BackendSpecifics(contextLength: 4096),
            provenance: ["method": "code-vote", "encoder": .string(encoder.reference), "dataset": .string(data)])
        let encoderJSON = JSONEncoder()
        encoderJSON.outputFormatting = [.sortedKeys]
        try encoderJSON.encode(votes).write(to: staging.appendingPathComponent(CodeVoteBackend.votesFile))
        try manifest.canonicalJSON().write(to: staging.appendingPathComponent(BundleManifest.fileName))
        let packed = try BundleArchive.pack(directory: staging, to: URL(fileURLWithPath: output))
        print("wrote \(packed.url.path) (\(manifest.reference), \(examples.count) examples, \(codesOfImage.count) images)")
    }
}
