import ArgumentParser
import CraftBundles
import CraftCore
import CraftRegistry
import CraftRuntimes
import CraftTraining
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `craft eval`: answer every item of a JSONL dataset with a checked pair and score the answers.
struct EvalCommand: EnvironmentCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score an encoder and a backend proven compatible on a JSONL dataset (exit 3 when not compatible).",
        discussion: """
            Each line of the dataset is {"image": PATH, "prompt": TEXT, "answer": TEXT}, the image path \
            relative to the dataset file (for an encoder whose images are the rows of its feature table, \
            such as table-encoder, an image index written as a string: "3"). The pair is checked as \
            craft run checks it (exit 3 with the report when it fails), the pipeline is built once, and \
            every item is answered greedily. An answer is correct \
            when it equals the expected answer after both are lowercased, trimmed, inner whitespace \
            collapsed to one space, and trailing punctuation removed. --keep-ratio prunes the visual \
            tokens with the codebook-rarity pruner first (docs/token-pruning.md).

            --report FILE.html writes one self-contained page (inline CSS, thumbnails embedded, no \
            scripts, nothing fetched; written atomically, its directory must exist): the accuracy, the \
            accuracy per expected answer, a confusion matrix when there are at most 20 distinct \
            expected answers, and up to 12 example images with the prompt, the expected answer and the \
            model's, marked right or wrong.

            Examples (from the repository root, on the embedded registry):
              craft eval --encoder digits-siglip-vq@1.1.0 --backend digits-gpt2 \\
                  --data examples/data/digits/strong-test.jsonl --limit 40
              craft eval --encoder \\
                  registry/bundles/digits-siglip-vq/digits-siglip-vq-1.1.0.craft \\
                  --backend digits-llama@^1.0 \\
                  --data examples/publish-an-encoder/data/val.jsonl --keep-ratio 0.5 --json
              craft eval --encoder digits-siglip-vq --backend digits-llama \\
                  --data examples/data/digits/strong-test.jsonl --limit 64 --batch-size 8 \\
                  -o answers.jsonl
              craft eval --encoder digits-siglip-vq@1.1.0 --backend digits-gpt2 \\
                  --data examples/data/digits/strong-test.jsonl --limit 40 \\
                  --report eval-report.html
            """)

    @OptionGroup var options: RegistryOptions

    @OptionGroup var loading: LoadingOptions

    @OptionGroup var pipelineOptions: PipelineOptions

    @Option(help: ArgumentHelp("The JSONL dataset: one {\"image\", \"prompt\", \"answer\"} object per line.", valueName: "file"))
    var data: String

    @Option(help: "Evaluate only the first N items.")
    var limit: Int?

    @Option(name: .long, help: "Encode this many images in one batch (one vision-tower forward) and generate their answers together; the answers do not change.")
    var batchSize = 1

    @Flag(help: "Print no progress on stderr (by default: a redrawn line on a terminal; in a log, a line every 5 s and one at the end).")
    var quiet = false

    @Option(name: [.short, .long], help: ArgumentHelp("Also write one JSON object per item to this JSONL file.", valueName: "file"))
    var output: String?

    @Option(help: ArgumentHelp("Also write a self-contained HTML page of the results (accuracy per answer, a confusion matrix, example images) to this file. Example: --report eval-report.html", valueName: "file.html"))
    var report: String?

    func validate() throws {
        if let limit, limit <= 0 { throw ValidationError("--limit must be 1 or more, not \(limit).") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be 1 or more, not \(batchSize).") }
        if let report { try PictureFile.validateDestination(report, flag: "--report", fileExtension: "html") }
    }

    func run(in environment: CraftEnvironment) throws {
        loading.applyThreads()
        guard FileManager.default.fileExists(atPath: data) else {
            throw CommandError(.notFound, "the dataset \(data) does not exist; pass a JSONL file of {\"image\", \"prompt\", \"answer\"} lines")
        }
        var examples = try TrainingDataset(contentsOf: URL(fileURLWithPath: data)).examples
        if let limit { examples = Array(examples.prefix(limit)) }

        let workspace = try RuntimeWorkspace(policy: loading.policy)
        defer { workspace.remove() }
        let pipeline = try pipelineOptions.pipeline(in: workspace, registry: options, environment: environment)
        let pair = pipeline.pair
        let keepRatio = pipelineOptions.keepRatio
        let answerer = makeAnswerer(pipeline)

        var items: [EvaluationItem] = []
        var measurements: [InferenceMeasurement] = []
        var progress = CountedProgress(total: examples.count, verb: "evaluated", quiet: quiet)
        var correct = 0
        func accuracySoFar() -> String {
            String(format: "accuracy %.4f so far (%d/%d)", Double(correct) / Double(max(items.count, 1)), correct, items.count)
        }
        for start in stride(from: 0, to: examples.count, by: batchSize) {
            let batch = Array(examples[start..<min(start + batchSize, examples.count)])
            for (example, result) in zip(batch, try answerer(batch)) {
                measurements.append(result.measurement)
                let item = EvaluationItem(image: example.imagePath, prompt: example.prompt, answer: result.answer, expected: example.answer)
                if item.correct { correct += 1 }
                items.append(item)
            }
            progress.update(done: items.count, detail: accuracySoFar())
        }
        progress.finish(done: items.count, detail: accuracySoFar())
        let summary = EvaluationSummary(items: items, keepRatio: keepRatio, measurements: measurements)
        let evaluation = EvalReport(summary: summary, encoder: pair.encoder.reference, backend: pair.backend.reference)
        // The text output's table; the --report page shows the same rows.
        let metrics = [
            ["accuracy", String(format: "%.4f", evaluation.accuracy)],
            ["correct", "\(evaluation.correct)"],
            ["total", "\(evaluation.total)"],
            ["keep ratio", "\(keepRatio)"],
            ["visual tokens", String(format: "%.1f -> %.1f per item", evaluation.meanVisualTokensBefore, evaluation.meanVisualTokensAfter)],
            ["prefill FLOPs", CostText.flops(full: evaluation.meanPrefillFlopsFull, pruned: evaluation.meanPrefillFlopsPruned,
                                             savedPercent: evaluation.prefillFlopsSavedPercent) + " per item"],
            ["latency", String(format: "median %.1f ms, mean %.1f ms per item", evaluation.medianLatencyMs, evaluation.meanLatencyMs)],
        ]
        if let output { try writeItems(items, to: output) }
        if let report {
            try writeReport(items: items, examples: examples, indexed: pipeline.encoder is any IndexedImageEncoder,
                            encoder: pair.encoder.reference, backend: pair.backend.reference, metrics: metrics, to: report)
        }
        if options.json {
            try Output.json(evaluation)
        } else {
            Output.line(Output.table(header: ["metric", "value"], rows: metrics))
        }
    }

    /// One item's answer and what it cost.
    typealias Answer = (answer: String, measurement: InferenceMeasurement)

    /// The function answering a batch of items (in order) with the pipeline: pictures are encoded in
    /// one batch; an encoder whose images are table rows (``IndexedImageEncoder``) reads each item's
    /// `"image"` as an index.
    private func makeAnswerer(_ pipeline: Pipeline) -> ([TrainingExample]) throws -> [Answer] {
        let dataName = data, reference = pipeline.pair.encoder.reference
        let options = pipelineOptions.generation
        let ratio = pipelineOptions.keepRatio
        return { batch in
            if let indexed = pipeline.encoder as? any IndexedImageEncoder {
                return try batch.map { example in
                    let field = "\(dataName) line \(example.line): \"image\""
                    let index = try ImageArgument.index(example.imagePath, of: indexed, reference: reference, field: field)
                    let result = try pipeline.measuredAnswer(imageAt: index, prompt: example.prompt, keepRatio: ratio, options: options)
                    return (result.answer.text, result.measurement)
                }
            }
            let pictures = try batch.map { example in
                do {
                    return try ImageInput.rgbImage(contentsOf: example.imageURL)
                } catch {
                    throw RuntimeWorkspace.imageError(error, path: example.imagePath, context: "\(dataName) line \(example.line)")
                }
            }
            let results: [MeasuredAnswer]
            if pictures.count == 1 {
                results = [try pipeline.measuredAnswer(image: pictures[0], prompt: batch[0].prompt, keepRatio: ratio, options: options)]
            } else {
                results = try pipeline.measuredAnswers(images: pictures, prompts: batch.map(\.prompt), keepRatio: ratio, options: options)
            }
            return results.map { ($0.answer.text, $0.measurement) }
        }
    }

    /// Writes one JSON object per item (snake_case keys, sorted) to `path`.
    private func writeItems(_ items: [EvaluationItem], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var text = Data()
        for item in items {
            text += try encoder.encode(item)
            text += Data("\n".utf8)
        }
        do {
            try text.write(to: URL(fileURLWithPath: path))
        } catch {
            throw CommandError(.other, "cannot write the per-item results to \(path) (\(error.localizedDescription)); check the directory exists and is writable")
        }
    }

    /// Writes the `--report` page (``EvalReportPage``) atomically, with the text output's `metrics`
    /// rows and thumbnails of the chosen examples' image files (none for an encoder whose images are
    /// table rows).
    private func writeReport(
        items: [EvaluationItem], examples: [TrainingExample], indexed: Bool, encoder: String, backend: String, metrics: [[String]],
        to path: String
    ) throws {
        let shown = EvalReportPage.chooseExamples(items).map { index in
            EvalReportPage.Example(item: items[index], thumbnail: indexed ? nil : EvalReportPage.thumbnail(of: examples[index].imageURL))
        }
        let page = EvalReportPage(encoder: encoder, backend: backend, data: data, keepRatio: pipelineOptions.keepRatio, items: items,
                                  examples: shown, metrics: metrics)
        try PictureFile.write(page.html, to: URL(fileURLWithPath: path))
    }

    /// `--json` output of `craft eval` (snake_case keys; FLOP keys are `null` when the backend
    /// describes no decoder shape).
    struct EvalReport: Encodable {
        var accuracy: Double
        var correct: Int
        var total: Int
        var keepRatio: Double
        var meanLatencyMs: Double
        var medianLatencyMs: Double
        var meanVisualTokensBefore: Double
        var meanVisualTokensAfter: Double
        var meanPrefillFlopsFull: Double?
        var meanPrefillFlopsPruned: Double?
        var prefillFlopsSavedPercent: Double?
        var encoder: String
        var backend: String
        var items: [EvaluationItem]

        init(summary: EvaluationSummary, encoder: String, backend: String) {
            accuracy = summary.accuracy
            correct = summary.correct
            total = summary.total
            keepRatio = summary.keepRatio
            meanLatencyMs = summary.meanLatencyMilliseconds
            medianLatencyMs = summary.medianLatencyMilliseconds
            meanVisualTokensBefore = summary.meanVisualTokensBefore
            meanVisualTokensAfter = summary.meanVisualTokensAfter
            meanPrefillFlopsFull = summary.meanPrefillFLOPsFull
            meanPrefillFlopsPruned = summary.meanPrefillFLOPsPruned
            prefillFlopsSavedPercent = summary.prefillFLOPsSavedFraction.map { $0 * 100 }
            self.encoder = encoder
            self.backend = backend
            items = summary.items
        }

        private enum CodingKeys: String, CodingKey {
            case accuracy, correct, total, keepRatio, meanLatencyMs, medianLatencyMs, meanVisualTokensBefore, meanVisualTokensAfter
            case meanPrefillFlopsFull, meanPrefillFlopsPruned, prefillFlopsSavedPercent, encoder, backend, items
        }

        /// Every key always present (unknown FLOPs as `null`), so the keys are stable.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(accuracy, forKey: .accuracy)
            try container.encode(correct, forKey: .correct)
            try container.encode(total, forKey: .total)
            try container.encode(keepRatio, forKey: .keepRatio)
            try container.encode(meanLatencyMs, forKey: .meanLatencyMs)
            try container.encode(medianLatencyMs, forKey: .medianLatencyMs)
            try container.encode(meanVisualTokensBefore, forKey: .meanVisualTokensBefore)
            try container.encode(meanVisualTokensAfter, forKey: .meanVisualTokensAfter)
            try container.encode(meanPrefillFlopsFull, forKey: .meanPrefillFlopsFull)
            try container.encode(meanPrefillFlopsPruned, forKey: .meanPrefillFlopsPruned)
            try container.encode(prefillFlopsSavedPercent, forKey: .prefillFlopsSavedPercent)
            try container.encode(self.encoder, forKey: .encoder)
            try container.encode(backend, forKey: .backend)
            try container.encode(items, forKey: .items)
        }
    }
}

/// How `craft run` and `craft eval` print counted FLOPs for people.
enum CostText {
    /// `1.23 MFLOP`-style counts.
    static func flops(_ value: Double) -> String {
        let units = ["FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP"]
        var scaled = value
        var unit = 0
        while scaled >= 1000, unit < units.count - 1 {
            scaled /= 1000
            unit += 1
        }
        return unit == 0 ? String(format: "%.0f FLOP", value) : String(format: "%.2f %@", scaled, units[unit])
    }

    /// `full -> pruned (saved%)`, or a sentence saying the backend gives no decoder shape.
    static func flops(full: Double?, pruned: Double?, savedPercent: Double?) -> String {
        guard let full, let pruned else { return "not counted (the backend describes no decoder shape)" }
        return "\(flops(full)) -> \(flops(pruned)) (\(String(format: "%.1f", savedPercent ?? 0))% saved)"
    }
}
