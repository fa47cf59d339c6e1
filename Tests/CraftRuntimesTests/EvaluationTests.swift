import CraftBundles
import CraftCore
import Foundation
import RuntimeTestSupport
import Testing

@testable import CraftRuntimes

@Suite("Evaluation scoring and keep-ratio pruning in the pipeline")
struct EvaluationTests {
    @Test("normalised exact match lowercases, trims, collapses whitespace and strips trailing punctuation")
    func normalisation() {
        #expect(AnswerScoring.normalized("  A   Cat\n on\tthe Mat!?. ") == "a cat on the mat")
        #expect(AnswerScoring.matches("Melanoma.", expected: "melanoma"))
        #expect(AnswerScoring.matches("it is 3", expected: "It  is 3 !"))
        #expect(!AnswerScoring.matches("a cat", expected: "a cats"))
        #expect(!AnswerScoring.matches("", expected: "x"))
        // Inner punctuation is kept: only trailing punctuation goes.
        #expect(!AnswerScoring.matches("u.s", expected: "us"))
    }

    @Test("the summary's accuracy is correct over total")
    func summary() {
        let items = [
            EvaluationItem(image: "a.png", prompt: "p", answer: "Yes.", expected: "yes"),
            EvaluationItem(image: "b.png", prompt: "p", answer: "no", expected: "yes"),
            EvaluationItem(image: "c.png", prompt: "p", answer: "maybe", expected: "Maybe"),
        ]
        let summary = EvaluationSummary(items: items, keepRatio: 1, meanLatencyMilliseconds: 2)
        #expect(items.map(\.correct) == [true, false, true])
        #expect(summary.correct == 2 && summary.total == 3)
        #expect(abs(summary.accuracy - 2.0 / 3.0) < 1e-12)
        #expect(EvaluationSummary(items: [], keepRatio: 1, meanLatencyMilliseconds: 0).accuracy == 0)
    }

    /// Packs the tiny pair; `frequencies` is written into the encoder bundle as code_frequencies.json.
    func makePipeline(_ scratch: Scratch, frequencies: Data? = nil) throws -> Pipeline {
        let values = TinyBundles.codebook()
        try TinyBundles.encoderDirectory(at: scratch.path("enc"), codebook: values)
        if let frequencies {
            try frequencies.write(to: scratch.path("enc/\(Pipeline.codeFrequenciesFile)"))
            let manifestURL = scratch.path("enc/craft.json")
            var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as? [String: Any])
            manifest["files"] = ((manifest["files"] as? [[String: Any]]) ?? []) + [["path": Pipeline.codeFrequenciesFile]]
            try TinyBundles.writeManifest(manifest, to: scratch.path("enc"))
        }
        try TinyBundles.backendDirectory(at: scratch.path("llm"), codebookHash: try TinyBundles.hash(values))
        let encoder = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        let backend = try TinyBundles.packAndUnpack(scratch.path("llm"), in: scratch, as: "backend")
        let report = checkCompatibility(encoder: encoder, backend: backend, runtimes: .craftDefault)
        return try Pipeline(pair: try report.requirePairing(), encoder: encoder, backend: backend)
    }

    @Test("keep ratio 0.5 halves the visual tokens, keeps their order and positions, and still answers")
    func halvesTokens() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pipeline = try makePipeline(scratch)
        #expect(pipeline.prunesWithUniformFrequencies)
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        let image = try ImageInput.rgbImage(contentsOf: scratch.path("image.png"))
        let tokens = try pipeline.tokens(for: image)
        let kept = try pipeline.pruned(tokens, keepRatio: 0.5)
        #expect(tokens.count == 16 && kept.count == 8)
        // Kept tokens are a subsequence of the originals, in order, with their positions.
        let originalIndex = kept.positions.map { position in tokens.positions.firstIndex(of: position) ?? -1 }
        #expect(!originalIndex.contains(-1) && originalIndex == originalIndex.sorted())
        for (keptIndex, original) in originalIndex.enumerated() where original >= 0 {
            #expect(kept.codes.scalars[keptIndex] == tokens.codes.scalars[original])
        }
        let result = try pipeline.answer(image: image, prompt: "what is this ?", keepRatio: 0.5, options: GenerationOptions(maximumNewTokens: 3))
        #expect(result.tokensBefore == 16 && result.tokensAfter == 8)
        #expect(!result.answer.tokens.isEmpty || result.answer.finishReason == .endOfSequence)
        // Ratio 1 is no pruning; out-of-range ratios are errors.
        #expect(try pipeline.pruned(tokens, keepRatio: 1).codes.scalars == tokens.codes.scalars)
        #expect(throws: CraftCoreError.self) { try pipeline.pruned(tokens, keepRatio: 0) }
        #expect(throws: CraftCoreError.self) { try pipeline.pruned(tokens, keepRatio: 1.5) }
    }

    @Test("code frequencies in the encoder bundle are loaded and steer pruning towards rare codes")
    func bundleFrequencies() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        let image = try ImageInput.rgbImage(contentsOf: scratch.path("image.png"))
        // First see which codes the image uses, then make the most frequent of them very common.
        let probe = try makePipeline(scratch)
        let tokens = try probe.tokens(for: image)
        let codes = (0..<tokens.count).map { Int(tokens.codes.scalars[$0]) }
        let common = try #require(Dictionary(grouping: codes, by: { $0 }).max { $0.value.count < $1.value.count }?.key)
        var counts = Array(repeating: 1, count: TinyBundles.entries)
        counts[common] = 1_000_000
        let json = try JSONEncoder().encode(try CodeFrequencies(entries: TinyBundles.entries, counts: counts))

        let second = try Scratch()
        defer { second.remove() }
        let pipeline = try makePipeline(second, frequencies: json)
        #expect(!pipeline.prunesWithUniformFrequencies)
        #expect(pipeline.codeFrequencies?.counts == counts)
        let keepCount = codes.filter { $0 != common }.count
        try #require(keepCount > 0, "the fixture image uses only one code: \(codes)")
        let kept = try pipeline.pruned(tokens, keepRatio: Double(keepCount) / Double(tokens.count))
        // The very common code is the one dropped: every kept token has a rarer code.
        #expect((0..<kept.count).allSatisfy { Int(kept.codes.scalars[$0]) != common })
    }

    @Test("frequencies for another codebook size are rejected with a clear error")
    func wrongFrequencies() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let json = try JSONEncoder().encode(try CodeFrequencies(entries: 3, counts: [1, 2, 3]))
        #expect {
            _ = try makePipeline(scratch, frequencies: json)
        } throws: { error in
            (error as? BundleError)?.message.contains("for 3 codes") == true
        }
    }
}
