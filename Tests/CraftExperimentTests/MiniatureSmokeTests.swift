// A fast end-to-end run of the miniature's pipeline (base models, CRAFT adaptation, scoring) on a
// handful of images with tiny sizes, and checks that the committed registry bundles load and answer.
import CraftBundles
import CraftCore
@testable import CraftExperiment
import CraftRegistry
import Foundation
import RuntimeTestSupport
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite struct MiniatureSmokeTests {
    @Test func pipelineBuildsBundlesThatVerifyPairAndScore() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = scratch.path("registry")
        let context = ExperimentContext(
            dataDirectory: repositoryRoot.appendingPathComponent("examples/data/digits"), workDirectory: scratch.path("work"),
            registry: registry, settings: .smoke, log: { _ in })
        try BaseModels.run(context)
        try Experiment.adaptAndPublish(context)

        // Four bundles published: base encoder, adapted encoder, both backends; each verifies.
        let store = Registry(root: registry)
        for reference in ["digits-siglip-vq@1.0.0", "digits-siglip-vq@1.1.0", "digits-llama@1.0.0", "digits-gpt2@1.0.0"] {
            let resolved = try store.resolve(BundleReference(parsing: reference))
            _ = try BundleArchive.verify(resolved.file)
        }
        // The adapted encoder keeps the codebook, so it pairs with both backends and scores.
        let adapted = Adaptation.directory(AdaptationVariant(id: "craft-strong-s0"), context)
        let data = try ExperimentData(directory: context.dataDirectory, settings: .smoke)
        let test = try data.dataset(.strong, "test")
        let pixels = try PixelCache(datasets: [test], preprocessing: data.preprocessing)
        for backend in ["digits-llama-base", "digits-gpt2-base"] {
            let pair = try LoadedPair(encoder: adapted, backend: context.bundleDirectory(backend))
            let score = try pair.score(test, pixels: pixels, keepRatio: 0.8, pruner: .random)
            #expect(score.total == 8)
            #expect(score.visualTokens == 51)  // round(0.8 · 64)
            #expect(score.decoderFLOPs > 0)
        }
        // The pruning ladder: keep 1 once; below it 2 random seeds and 4 other rungs per keep ratio.
        var ladder: [ResultRow] = []
        for (name, backend) in [("A", "digits-llama-base"), ("B", "digits-gpt2-base")] {
            ladder += try PruningLadder.rows(encoder: adapted, variant: AdaptationVariant(id: "craft-strong-s0"), backendName: name,
                                             backend: context.bundleDirectory(backend), test: test, pixels: pixels, context: context)
        }
        #expect(ladder.count == 2 * (1 + 3 * (2 + 4)))
        let original = ladder.filter { $0.condition == PruningLadder.originalPositionsCondition }
        #expect(original.count == 6 && original.allSatisfy { $0.score.visualPositionIDs == .original })
        #expect(Set(ladder.filter { $0.condition == "random" }.compactMap(\.score.prunerSeed)) == [0, 1])
        for keep in [0.8, 0.6, 0.4] {
            // Same count of kept tokens for every rung at a keep ratio: round(keep · 64).
            let counts = Set(ladder.filter { $0.score.keepRatio == keep }.map(\.score.visualTokens))
            #expect(counts == [(keep * 64).rounded()])
        }
        let table = PruningLadder.markdown(ladder, settings: .smoke)
        #expect(table.contains("| 0.4 | full, original position ids |") && table.contains("| 1.0 | none |"))
        // Random rows carry a 95% interval over their two seeds.
        let randomRow = try #require(table.split(separator: "\n").first { $0.hasPrefix("| 0.6 | random |") })
        #expect(randomRow.contains("["))

        let base = try BundleArchive.open(directory: context.bundleDirectory("digits-siglip-vq-base")).manifest
        let craft = try BundleArchive.open(directory: adapted).manifest
        #expect(base.codebook.hash == craft.codebook.hash)
        #expect(craft.version.description == "1.1.0")
    }

    @Test func tableTrainsAndScoresEveryVariantWithThreeKindsOfBackends() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        var settings = ExperimentSettings.smoke
        settings.commitmentWeights = [0, 0.1, 1]
        let context = ExperimentContext(
            dataDirectory: repositoryRoot.appendingPathComponent("examples/data/digits"), workDirectory: scratch.path("work"),
            registry: nil, settings: settings, log: { _ in })
        try BaseModels.run(context)
        let results = try ResultsTable.run(context)
        let variants = ResultsTable.variants(settings)
        // Every family of the table, and one sweep point beyond the defaults (λ_commit 1).
        #expect(variants.contains { $0.id == "commit1-lr1e-3-e1-s0" })
        #expect(ResultsTable.sweepFamily(weight: 0.1, learningRate: 3e-3, epochs: 12) == "commit0p1-lr3e-3-e12")
        for variant in variants {
            let rows = results.rows.filter { $0.section == variant.id }
            // Projector: the surrogate only; others: both backends on the shifted and the general split.
            #expect(rows.count == (variant.method == .projector ? 2 : 4), "\(variant.id): \(rows.count) rows")
            if variant.method != .projector { #expect(rows.allSatisfy { $0.codes != nil }, "\(variant.id) lacks code statistics") }
        }
        // The continuous baselines run on the continuous control, which has its own base rows.
        #expect(results.rows.filter { $0.section == "base-continuous" }.count == 2 * Domain.allCases.count)
        let base = try #require(results.rows.first { $0.section == "base" && $0.domain == "strong" }?.codes)
        #expect(base.codeChangeRate == 0 && base.relativeQuantizationError > 0)
        let markdown = ResultsMarkdown.render(results)
        #expect(results.rows.contains { $0.section == "craft-rvq2-strong-s0" && $0.codes != nil })
        for heading in ["**Strong shift", "**Shift strength.**", "**Commitment sweep.**", "continuous fine-tuning (continuous control)",
                        "reverse transfer", "LDIFS", "**Codebook size and depth.**", "residual depth 2"] {
            #expect(markdown.contains(heading), "the tables lack \(heading)")
        }
    }

    @Test func confidenceIntervalsUseStudentsT() throws {
        // Values 1…5: mean 3, s = √2.5, half width 2.776 · √2.5 / √5 = 1.963.
        let interval = try #require(PruningLadder.meanWithInterval([1, 2, 3, 4, 5]))
        #expect(interval.mean == 3)
        #expect(abs((interval.high ?? 0) - 4.963) < 0.001 && abs((interval.low ?? 0) - 1.037) < 0.001)
        let single = try #require(PruningLadder.meanWithInterval([0.5]))
        #expect(single.mean == 0.5 && single.low == nil && single.high == nil)
        #expect(PruningLadder.meanWithInterval([]) == nil)
        #expect(ExperimentSettings.standard.pruningRandomSeeds.count == 5)
        #expect(ExperimentSettings.standard.pruningKeepRatios == [1.0, 0.8, 0.6, 0.4])
    }

    @Test func resultsMarkdownReplacesOnlyTheMarkedBlock() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let file = scratch.path("doc.md")
        try "# Title\n\nintro\n\(ResultsMarkdown.begin)\nold\n\(ResultsMarkdown.end)\n\nafter\n".write(to: file, atomically: true, encoding: .utf8)
        try ResultsMarkdown.insert("\(ResultsMarkdown.begin)\nnew\n\(ResultsMarkdown.end)\n", into: file)
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(text == "# Title\n\nintro\n\(ResultsMarkdown.begin)\nnew\n\(ResultsMarkdown.end)\n\nafter\n")
    }
}

@Suite struct MiniatureInputTests {
    @Test func missingDataDirectoryIsAClearError() throws {
        let missing = URL(fileURLWithPath: "/nonexistent/craft-digits")
        #expect {
            _ = try ExperimentData(directory: missing, settings: .smoke)
        } throws: { error in
            (error as? ExperimentError)?.message.contains("/nonexistent/craft-digits holds no tokenizer.json") == true
        }
    }

    @Test func unbuiltBaseModelsAreAClearError() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let context = ExperimentContext(
            dataDirectory: repositoryRoot.appendingPathComponent("examples/data/digits"), workDirectory: scratch.path("work"),
            registry: nil, settings: .smoke, log: { _ in })
        #expect {
            try Adaptation.run(AdaptationVariant(id: "craft-strong-s0"), context)
        } throws: { error in
            (error as? ExperimentError)?.message.contains("run `craft-experiment base` first") == true
        }
    }

    @Test func smokeLimitsKeepEveryQuestionOfEachImage() throws {
        let data = try ExperimentData(directory: repositoryRoot.appendingPathComponent("examples/data/digits"), settings: .smoke)
        let train = try data.dataset(.strong, "train")
        #expect(train.count == 16)  // 8 images, 2 questions each
        #expect(Set(train.examples.map(\.imagePath)).count == 8)
    }
}
