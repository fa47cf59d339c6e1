import ArgumentParser
import CraftBundles
import CraftCore
import CraftRegistry
import CraftRuntimes
import Foundation

/// `craft run`: pair an encoder and a backend (checked), and answer a prompt about an image.
struct RunCommand: EnvironmentCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Answer a prompt about an image with an encoder and a backend proven compatible (exit 3 when not).",
        discussion: """
            Each bundle is a .craft FILE, an unpacked bundle DIRECTORY or a REF (NAME, NAME@VERSION, \
            NAME@RANGE) from the registry. \
            Both are verified (packed ones unpacked into a temporary directory); the compatibility checker runs \
            (on failure its report is printed and the exit status is 3); the runtimes named by the \
            bundles (siglip-vq, llama, gpt2; see docs/runtimes.md) load the models; the image is \
            preprocessed, encoded into visual tokens, placed by the backend's prompt template, and the \
            answer is generated greedily. A table-encoder's images are the rows of its feature table: \
            --image is then an image index.

            Examples (from the repository root):
              craft run --encoder digits-siglip-vq@1.1.0 --backend digits-llama \\
                  --image examples/data/digits/images/strong/0017.png \\
                  --prompt "what digit is this ?"
              craft run --encoder \\
                  registry/bundles/digits-siglip-vq/digits-siglip-vq-1.1.0.craft \\
                  --backend digits-gpt2@^1.0 \\
                  --image examples/data/digits/images/strong/0017.png \\
                  --prompt "what digit is this ?" --keep-ratio 0.8 --json
              craft run --encoder digits-vq --backend digits-answers --image 3 \\
                  --prompt "which digit?"
            """)

    @OptionGroup var options: RegistryOptions

    @OptionGroup var loading: LoadingOptions

    @OptionGroup var pipelineOptions: PipelineOptions

    @Option(help: ArgumentHelp("The image (PNG or JPEG); for an encoder whose images are the rows of its feature table (table-encoder), an image index.", valueName: "file"))
    var image: String

    @Option(help: "The question or instruction about the image.")
    var prompt: String

    func run(in environment: CraftEnvironment) throws {
        loading.applyThreads()
        let workspace = try RuntimeWorkspace(policy: loading.policy)
        defer { workspace.remove() }
        let pipeline = try pipelineOptions.pipeline(in: workspace, registry: options, environment: environment)
        let pair = pipeline.pair
        let (keepRatio, generation) = (pipelineOptions.keepRatio, pipelineOptions.generation)
        let result: MeasuredAnswer = switch try ImageArgument(image, for: pipeline.encoder, reference: pair.encoder.reference, field: "--image") {
        case .file(let path):
            try pipeline.measuredAnswer(image: RuntimeWorkspace.loadImage(path), prompt: prompt, keepRatio: keepRatio, options: generation)
        case .index(let index, _):
            try pipeline.measuredAnswer(imageAt: index, prompt: prompt, keepRatio: keepRatio, options: generation)
        }
        let answer = result.answer, measurement = result.measurement
        if options.json {
            try Output.json(RunReport(
                answer: answer.text, tokens: answer.tokens.map { Int($0) }, finishReason: answer.finishReason.rawValue,
                encoder: pair.encoder.reference, backend: pair.backend.reference, codebookHash: pair.codebook.hash,
                visualTokens: measurement.visualTokensAfter, visualTokensBefore: measurement.visualTokensBefore, keepRatio: keepRatio,
                textTokens: measurement.textTokens, prefillFlopsFull: measurement.prefillFLOPsFull,
                prefillFlopsPruned: measurement.prefillFLOPsPruned,
                prefillFlopsSavedPercent: measurement.prefillFLOPsSavedFraction.map { $0 * 100 },
                latencyMs: measurement.latencyMilliseconds))
        } else {
            Output.line(answer.text)
            // The cost goes to stderr so stdout stays the answer alone.
            let flops = CostText.flops(
                full: measurement.prefillFLOPsFull, pruned: measurement.prefillFLOPsPruned,
                savedPercent: measurement.prefillFLOPsSavedFraction.map { $0 * 100 })
            Output.note(
                "visual tokens \(measurement.visualTokensBefore) -> \(measurement.visualTokensAfter) (keep ratio \(keepRatio)), "
                    + "prefill \(flops), latency \(String(format: "%.1f", measurement.latencyMilliseconds)) ms")
        }
    }

    /// `--json` output of `craft run`.
    struct RunReport: Encodable {
        var answer: String
        var tokens: [Int]
        var finishReason: String
        var encoder: String
        var backend: String
        var codebookHash: String
        /// The visual tokens given to the backend (after pruning).
        var visualTokens: Int
        /// The visual tokens the encoder produced (before pruning).
        var visualTokensBefore: Int
        /// The keep ratio applied.
        var keepRatio: Double
        /// The prompt positions that are not visual tokens.
        var textTokens: Int
        /// Counted prefill FLOPs with every visual token (`null` when the backend gives no decoder shape).
        var prefillFlopsFull: Double?
        /// Counted prefill FLOPs with the kept visual tokens.
        var prefillFlopsPruned: Double?
        /// `100 · (1 − pruned / full)`.
        var prefillFlopsSavedPercent: Double?
        /// Wall-clock milliseconds from the decoded image (or the table lookup) to the answer.
        var latencyMs: Double?

        private enum CodingKeys: String, CodingKey {
            case answer, tokens, finishReason, encoder, backend, codebookHash, visualTokens, visualTokensBefore, keepRatio
            case textTokens, prefillFlopsFull, prefillFlopsPruned, prefillFlopsSavedPercent, latencyMs
        }

        /// Every key always present (unknown values as `null`), so the keys are stable.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(answer, forKey: .answer)
            try container.encode(tokens, forKey: .tokens)
            try container.encode(finishReason, forKey: .finishReason)
            try container.encode(self.encoder, forKey: .encoder)
            try container.encode(backend, forKey: .backend)
            try container.encode(codebookHash, forKey: .codebookHash)
            try container.encode(visualTokens, forKey: .visualTokens)
            try container.encode(visualTokensBefore, forKey: .visualTokensBefore)
            try container.encode(keepRatio, forKey: .keepRatio)
            try container.encode(textTokens, forKey: .textTokens)
            try container.encode(prefillFlopsFull, forKey: .prefillFlopsFull)
            try container.encode(prefillFlopsPruned, forKey: .prefillFlopsPruned)
            try container.encode(prefillFlopsSavedPercent, forKey: .prefillFlopsSavedPercent)
            try container.encode(latencyMs, forKey: .latencyMs)
        }
    }
}
