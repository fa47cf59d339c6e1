import CraftBundles
import CraftCore
import CraftImaging
import CraftModels
import Foundation
import RuntimeTestSupport
import TensorCore
import Testing

@testable import CraftRuntimes

@Suite("Counted prefill FLOPs and measured latency of answers")
struct MeasurementTests {
    func pipeline(_ scratch: Scratch, model: String = "llama_tied", runtime: String = "llama") throws -> (Pipeline, RGBImage) {
        let values = TinyBundles.codebook()
        try TinyBundles.encoderDirectory(at: scratch.path("enc"), codebook: values)
        try TinyBundles.backendDirectory(at: scratch.path("llm"), name: "tiny-\(runtime)", model: model, runtime: runtime,
                                         codebookHash: try TinyBundles.hash(values))
        let encoder = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        let backend = try TinyBundles.packAndUnpack(scratch.path("llm"), in: scratch, as: "backend")
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        let report = checkCompatibility(encoder: encoder, backend: backend, runtimes: .craftDefault)
        let pipeline = try Pipeline(pair: try report.requirePairing(), encoder: encoder, backend: backend)
        return (pipeline, try ImageInput.rgbImage(contentsOf: scratch.path("image.png")))
    }

    @Test("llama: the measured answer is the plain answer; tokens 16 -> 8, 9 text positions, FLOPs counted by hand")
    func llamaMeasurement() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (pipeline, image) = try pipeline(scratch)
        let options = GenerationOptions(maximumNewTokens: 4)
        let measured = try pipeline.measuredAnswer(image: image, prompt: "what is this ?", keepRatio: 0.5, options: options)
        let plain = try pipeline.answer(image: image, prompt: "what is this ?", keepRatio: 0.5, options: options)
        #expect(measured.answer == plain.answer)
        let m = measured.measurement
        #expect(m.visualTokensBefore == 16 && m.visualTokensAfter == 8)
        // BOS + "question : what is this ? answer :" (8 words of the word-level tokenizer).
        #expect(m.textTokens == 9)
        // llama_tied: 2 layers, hidden 32, 4 heads of 8, 2 KV heads, gated MLP 64, vocab 128.
        // Per layer: q,o 2·2·n·32·32 = 4096n; k,v 2·2·n·32·16 = 2048n; attention 2·2·n²·32 = 128n²;
        // MLP 3·2·n·32·64 = 12288n. Head 2·32·128 = 8192.
        func byHand(_ n: Double) -> Double { 2 * (4096 * n + 2048 * n + 128 * n * n + 12288 * n) + 8192 }
        #expect(m.prefillFLOPsFull == byHand(25) && m.prefillFLOPsPruned == byHand(17))
        #expect(m.prefillFLOPsFull == 1_089_792)
        let saved = try #require(m.prefillFLOPsSavedFraction)
        #expect(abs(saved - (1 - 708_864.0 / 1_089_792.0)) < 1e-12)
        #expect(m.latencyMilliseconds > 0)

        let shape = try #require(pipeline.backend.decoderShape)
        #expect(shape == DecoderShape(layers: 2, hidden: 32, heads: 4, kvHeads: 2, mlpSize: 64, vocabulary: 128, gatedMLP: true, headDimension: 8))

        // Keep 1: nothing saved, before == after.
        let whole = try pipeline.measuredAnswer(image: image, prompt: "what is this ?", options: options).measurement
        #expect(whole.visualTokensAfter == 16 && whole.prefillFLOPsPruned == whole.prefillFLOPsFull && whole.prefillFLOPsSavedFraction == 0)
    }

    @Test("gpt2: plain MHA, two-matrix MLP of 4·hidden, no prefix token; FLOPs counted by hand")
    func gpt2Measurement() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (pipeline, image) = try pipeline(scratch, model: "gpt2", runtime: "gpt2")
        let shape = try #require(pipeline.backend.decoderShape)
        #expect(shape == DecoderShape(layers: 2, hidden: 32, heads: 4, kvHeads: 4, mlpSize: 128, vocabulary: 128, gatedMLP: false))
        let m = try pipeline.measuredAnswer(image: image, prompt: "what is this ?", options: GenerationOptions(maximumNewTokens: 2)).measurement
        #expect(m.textTokens == 8)
        // Per layer: q,o 4096n; k,v 2·2·n·32·32 = 4096n; attention 128n²; MLP 2·2·n·32·128 = 16384n.
        let n = 24.0
        #expect(m.prefillFLOPsFull == 2 * (4096 * n + 4096 * n + 128 * n * n + 16384 * n) + 8192)
        #expect(m.prefillFLOPsFull == 1_335_296)
    }

    @Test("a head_dim apart from hidden/heads widens the query, key and value projections and the attention")
    func headDimension() throws {
        let cost = try PruningCost(shape: DecoderShape(layers: 2, hidden: 32, heads: 4, kvHeads: 2, mlpSize: 64, vocabulary: 128, headDimension: 16))
        // Per layer at n = 1: q,o 2·2·32·64 = 8192; k,v 2·2·32·32 = 4096; attention 2·2·64 = 256; MLP 12288.
        #expect(try cost.forwardFLOPs(textTokens: 1, visualTokens: 0) == 2 * (8192 + 4096 + 256 + 12288) + 8192)
        // Without head_dim, hidden must be a multiple of heads; with it, it need not be.
        #expect(throws: CraftCoreError.self) { try PruningCost(shape: DecoderShape(layers: 1, hidden: 30, heads: 4, kvHeads: 2, mlpSize: 8, vocabulary: 8)) }
        _ = try PruningCost(shape: DecoderShape(layers: 1, hidden: 30, heads: 4, kvHeads: 2, mlpSize: 8, vocabulary: 8, headDimension: 8))
        #expect(throws: CraftCoreError.self) {
            try PruningCost(shape: DecoderShape(layers: 1, hidden: 32, heads: 4, kvHeads: 2, mlpSize: 8, vocabulary: 8, headDimension: 0))
        }

        let llama = try LlamaModel(directory: TinyBundles.models.appendingPathComponent("llama_biases_head_dim"))
        let codebook = try Codebook(values: TinyBundles.codebook(), entries: TinyBundles.entries, dimension: TinyBundles.dimension, metric: .l2)
        let backend = try DecoderBackend(
            model: llama, tokenizer: Tokenizer(data: TinyBundles.tokenizerJSON()), codebook: codebook,
            projectorWeight: Tensor.zeros([32, 32]), contextLength: 16, prefixTokens: [1, 1])
        #expect(backend.decoderShape?.headDimension == 16 && backend.decoderShape?.effectiveHeadDimension == 16)
        // Prefix tokens count as positions; text through the tokenizer; vectors by rows.
        #expect(try backend.promptPositions([.text("what is"), .tokens([3, 4, 5]), .vectors(Tensor.zeros([4, 32]))]) == 2 + 2 + 3 + 4)
    }

    @Test("a batch of images encoded in one forward gives each image's own tokens and answers")
    func batchedEncoding() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (pipeline, image) = try pipeline(scratch)
        // A second, different picture: a diagonal gradient.
        let pixels = (0..<(24 * 24)).flatMap { index -> [UInt8] in
            let x = index % 24, y = index / 24
            return [UInt8(x * 10), UInt8(255 - y * 10), UInt8((x * y) % 256)]
        }
        let other = try RGBImage(width: 24, height: 24, pixels: pixels)
        let images = [image, other, image]
        let prompts = ["what is this ?", "what", "what is"]
        let options = GenerationOptions(maximumNewTokens: 3)
        let batch = try pipeline.tokens(for: images)
        #expect(batch.count == 3)
        for (tokens, picture) in zip(batch, images) {
            let single = try pipeline.tokens(for: picture)
            #expect(tokens.codes.scalars == single.codes.scalars)
            #expect(tokens.positions == single.positions)
        }
        #expect(batch[0].codes.scalars != batch[1].codes.scalars, "the two pictures differ")
        let answers = try pipeline.measuredAnswers(images: images, prompts: prompts, keepRatio: 0.5, options: options)
        for (answer, (picture, prompt)) in zip(answers, zip(images, prompts)) {
            let single = try pipeline.measuredAnswer(image: picture, prompt: prompt, keepRatio: 0.5, options: options)
            #expect(answer.answer == single.answer)
            #expect(answer.measurement.visualTokensAfter == 8 && answer.measurement.prefillFLOPsPruned == single.measurement.prefillFLOPsPruned)
            #expect(answer.measurement.latencyMilliseconds > 0)
        }
        #expect(throws: CraftCoreError.self) { try pipeline.measuredAnswers(images: images, prompts: ["one"]) }
        #expect(try pipeline.measuredAnswers(images: [], prompts: []).isEmpty)
    }

    @Test("the summary's median and mean latency, mean tokens and FLOP saving over items; FLOPs unknown when any item lacks them")
    func summary() {
        let items = (0..<4).map { EvaluationItem(image: "\($0).png", prompt: "p", answer: "a", expected: "a") }
        let latencies = [3.0, 1.0, 2.0, 10.0]
        let measurements = latencies.enumerated().map { index, latency in
            InferenceMeasurement(visualTokensBefore: 16, visualTokensAfter: 8 + index, textTokens: 9,
                                 prefillFLOPsFull: 100, prefillFLOPsPruned: Double(40 + 10 * index), latencyMilliseconds: latency)
        }
        let summary = EvaluationSummary(items: items, keepRatio: 0.5, measurements: measurements)
        #expect(summary.medianLatencyMilliseconds == 2.5 && summary.meanLatencyMilliseconds == 4)
        #expect(summary.meanVisualTokensBefore == 16 && summary.meanVisualTokensAfter == 9.5)
        #expect(summary.meanPrefillFLOPsFull == 100 && summary.meanPrefillFLOPsPruned == 55)
        #expect(abs((summary.prefillFLOPsSavedFraction ?? -1) - 0.45) < 1e-12)
        let odd = EvaluationSummary(items: Array(items.prefix(3)), keepRatio: 0.5, measurements: Array(measurements.prefix(3)))
        #expect(odd.medianLatencyMilliseconds == 2)

        var unknown = measurements
        unknown[2].prefillFLOPsFull = nil
        let partial = EvaluationSummary(items: items, keepRatio: 0.5, measurements: unknown)
        #expect(partial.meanPrefillFLOPsFull == nil && partial.prefillFLOPsSavedFraction == nil)
        #expect(EvaluationSummary(items: [], keepRatio: 1, measurements: []).medianLatencyMilliseconds == 0)
    }
}
