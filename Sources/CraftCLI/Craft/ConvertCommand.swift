import ArgumentParser
import CraftBundles
import CraftCore
import CraftRuntimes
import Foundation

/// `craft convert encoder|backend`: a Hugging Face directory becomes a bundle directory.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Turn a Hugging Face model directory into a bundle directory ready for craft-registry pack.",
        discussion: """
            The files are copied (config.json, model.safetensors or the index and its shards, \
            tokenizer.json and preprocessor_config.json when present), craft.json is written with \
            every field the runtime reads and every file's size and sha256, and the bundle is loaded \
            through its runtime before it is moved into place: a directory that exists was proven \
            to load. Then: craft-registry pack DIR, craft-registry pair ENCODER BACKEND.

            Forms (with your own model directories; docs/models.md):
              craft convert encoder --model siglip-so400m \\
                  --codebook rvq.safetensors:codebook --quantization-layer 26 \\
                  --name my-vq --license apache-2.0 --output-directory bundles/my-vq
              craft convert backend --model Qwen2-1.5B \\
                  --projector mm_projector.safetensors --projector-type mlp2x_gelu \\
                  --codebook rvq.safetensors --name my-qwen --license apache-2.0 \\
                  --output-directory bundles/my-qwen
            """,
        subcommands: [ConvertEncoderCommand.self, ConvertBackendCommand.self])
}

/// The options both conversions share: the bundle's identity, its codebook, where to write it.
struct ConversionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The Hugging Face model directory (for a backend, also a Llama or Qwen2 .gguf file).", valueName: "dir"))
    var model: String

    @Option(help: ArgumentHelp("The codebook tensor: FILE or FILE:TENSOR (default tensor \"codebook\"), [K, D] or [depth, K, D].", valueName: "file[:tensor]"))
    var codebook: String

    @Option(help: "The codebook's metric: l2 or cosine.")
    var metric = "l2"

    @Option(help: "Read a [K, D] codebook as one codebook shared by this many residual levels (stored once).")
    var sharedDepth = 1

    @Flag(help: "Drop the last row of every codebook level: RQ-VAE's (VILA-U's) padding embedding, never a code.")
    var dropPaddingRow = false

    @Option(help: "The bundle name.")
    var name: String

    @Option(help: "The bundle version.")
    var version = "1.0.0"

    @Option(help: "The license of the weights (SPDX), as the model's card states it.")
    var license: String

    @Option(help: "One line for listings (default: converted from DIR).")
    var summary: String?

    @Option(name: .customLong("domain"), help: "A domain the bundle serves (repeatable).")
    var domains: [String] = []

    @Option(help: ArgumentHelp("The bundle directory to create (must not exist).", valueName: "dir"))
    var outputDirectory: String

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    func validate() throws {
        guard CodebookMetric(rawValue: metric) != nil else { throw ValidationError("--metric must be l2 or cosine, not \(metric).") }
        guard sharedDepth >= 1 else { throw ValidationError("--shared-depth must be at least 1, not \(sharedDepth).") }
        guard SemanticVersion(version) != nil else { throw ValidationError("--version must be a semantic version such as 1.0.0, not \(version).") }
    }

    var codebookSource: CodebookSource {
        let (file, tensor) = Self.split(codebook, defaultTensor: "codebook")
        return CodebookSource(
            file: URL(fileURLWithPath: file), tensor: tensor ?? "codebook", metric: CodebookMetric(rawValue: metric) ?? .l2,
            sharedDepth: sharedDepth, dropsPaddingRow: dropPaddingRow)
    }

    var target: ConversionTarget {
        ConversionTarget(
            name: name, version: SemanticVersion(version) ?? SemanticVersion(major: 1, minor: 0, patch: 0),
            summary: summary ?? "Converted from \(URL(fileURLWithPath: model).lastPathComponent)", license: license,
            domains: domains, output: URL(fileURLWithPath: outputDirectory), progress: { Output.note("\($0) ...") })
    }

    /// `FILE:TENSOR` split at the last colon when the part before it is an existing file.
    static func split(_ text: String, defaultTensor: String?) -> (file: String, tensor: String?) {
        if let colon = text.lastIndex(of: ":"), FileManager.default.fileExists(atPath: String(text[..<colon])) {
            return (String(text[..<colon]), String(text[text.index(after: colon)...]))
        }
        return (text, defaultTensor)
    }

    /// Prints what was written: text for people, or the stable JSON keys of ``ConversionReport``.
    func report(_ bundle: UnpackedBundle) throws {
        let report = ConversionReport(bundle)
        guard !json else { return try Output.json(report) }
        let codebook = bundle.manifest.codebook
        let size = bundle.manifest.files.reduce(Int64(0)) { $0 + $1.size }
        Output.line(
            "wrote \(report.bundleDirectory): \(bundle.manifest.reference), \(report.kind) for runtime \(report.runtime), "
                + "\(report.files.count) files, \(Output.size(size))\n"
                + "codebook \(report.codebookHash) (\(codebook.depth)×\(codebook.entries)×\(codebook.dimension), \(codebook.metric.rawValue))\n"
                + "next: craft-registry pack \(report.bundleDirectory)")
    }

    /// `--json` output of `craft convert`.
    struct ConversionReport: Encodable {
        /// The bundle directory written.
        var bundleDirectory: String
        /// Its name and version.
        var name: String, version: String
        /// `encoder` or `backend`, and the runtime that loads it.
        var kind: String, runtime: String
        /// The codebook it emits or reads.
        var codebookHash: String
        /// Every file it lists, in `craft.json` order.
        var files: [String]

        init(_ bundle: UnpackedBundle) {
            let manifest = bundle.manifest
            bundleDirectory = bundle.directory.path
            (name, version) = (manifest.name, manifest.version.description)
            (kind, runtime) = (manifest.kind.rawValue, manifest.runtime.id)
            codebookHash = manifest.codebook.hash
            files = manifest.files.map(\.path)
        }
    }
}

struct ConvertEncoderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encoder",
        abstract: "A SigLIP vision tower plus a codebook becomes a siglip-vq encoder bundle.",
        discussion: """
            The tower's image size and patch grid give encoder.image_size and tokens_per_image; the \
            codebook is written alone into codebook.safetensors (once, for --shared-depth).

            Forms (with your own model directories; docs/models.md):
              craft convert encoder --model siglip-so400m \\
                  --codebook rvq.safetensors:codebook --quantization-layer 26 \\
                  --name my-vq --license apache-2.0 --output-directory bundles/my-vq
              # VILA-U's layout (docs/runtimes.md): RQ-VAE codebook with a padding
              # row, shared by 4 levels, quantized before the last layer, text tower
              # kept for L_con
              craft convert encoder --model vila-u-siglip \\
                  --codebook rq.safetensors:quantizer.codebooks.0.weight \\
                  --drop-padding-row --shared-depth 4 --quantization-layer 26 \\
                  --text-tower \\
                  --name vila-u-vq --license mit --output-directory bundles/vila-u-vq
            """)

    @OptionGroup var options: ConversionOptions

    @Option(help: "Quantize the output of this encoder layer (1...layers; VILA-U quantizes before the last). Default: after the post-layernorm.")
    var quantizationLayer: Int?

    @Flag(help: "Carry the text tower of a full SiglipModel (into text/) and its logit scale and bias, for L_con in craft train.")
    var textTower = false

    @Option(help: ArgumentHelp("The text tower's tokenizer.json (default: tokenizer.json in --model).", valueName: "file"))
    var textTokenizer: String?

    func validate() throws {
        if textTokenizer != nil && !textTower { throw ValidationError("--text-tokenizer goes with --text-tower.") }
    }

    func run() throws {
        let bundle = try BundleConversion.encoder(
            model: URL(fileURLWithPath: options.model), codebook: options.codebookSource, quantizationLayer: quantizationLayer,
            textTower: textTower ? TextTowerSource(tokenizer: textTokenizer.map { URL(fileURLWithPath: $0) }) : nil,
            target: options.target)
        try options.report(bundle)
    }
}

struct ConvertBackendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backend",
        abstract: "A decoder (Llama, Qwen2, GPT-2, or a Llama/Qwen2 GGUF file) plus a projector becomes a backend bundle reading a codebook.",
        discussion: """
            The runtime is the decoder's architecture (llama, qwen2, gpt2); the codebook's identity is \
            recorded, not its vectors; the context length defaults to the decoder's maximum. --model may \
            be a llama.cpp .gguf file holding a Llama or Qwen2 decoder: it goes into the bundle as \
            model.gguf, and its tokenizer is the one its metadata describes (SentencePiece or \
            byte-level BPE), unless --tokenizer gives a Hugging Face tokenizer.json (docs/gguf.md).

            Forms (with your own model files; docs/models.md):
              craft convert backend --model Qwen2-1.5B \\
                  --projector mm_projector.safetensors --projector-type mlp2x_gelu \\
                  --codebook rvq.safetensors --name my-qwen --license apache-2.0 \\
                  --output-directory bundles/my-qwen
              craft convert backend --model qwen2-q8_0.gguf \\
                  --projector mm_projector.safetensors --projector-type mlp2x_gelu \\
                  --codebook rvq.safetensors --name my-qwen-q8 --license apache-2.0 \\
                  --output-directory bundles/my-qwen-q8
            """)

    @OptionGroup var options: ConversionOptions

    @Option(help: ArgumentHelp("The tokenizer.json to carry (default: tokenizer.json in --model; for a .gguf model, the file's own tokenizer).", valueName: "file"))
    var tokenizer: String?

    @Option(help: ArgumentHelp("The projector: FILE or FILE:TENSOR (its weight; NAME.0.weight for mlp2x_gelu). Without TENSOR, the only candidate.", valueName: "file[:tensor]"))
    var projector: String

    @Option(help: "The projector's form: linear or mlp2x_gelu.")
    var projectorType = "linear"

    @Option(help: "The most positions prompt plus answer may take (default: the decoder's maximum).")
    var contextLength: Int?

    @Option(help: "Where the image and the prompt go: <image> once, {prompt} at most once.")
    var promptTemplate: String?

    func validate() throws {
        guard BundleConversion.ProjectorType(rawValue: projectorType) != nil else {
            throw ValidationError("--projector-type must be linear or mlp2x_gelu, not \(projectorType).")
        }
        if let contextLength, contextLength < 1 { throw ValidationError("--context-length must be at least 1, not \(contextLength).") }
    }

    func run() throws {
        let (file, tensor) = ConversionOptions.split(projector, defaultTensor: nil)
        let bundle = try BundleConversion.backend(
            model: URL(fileURLWithPath: options.model), projector: URL(fileURLWithPath: file), projectorTensor: tensor,
            projectorType: BundleConversion.ProjectorType(rawValue: projectorType) ?? .linear, codebook: options.codebookSource,
            contextLength: contextLength, promptTemplate: promptTemplate, tokenizer: tokenizer.map { URL(fileURLWithPath: $0) },
            target: options.target)
        try options.report(bundle)
    }
}
