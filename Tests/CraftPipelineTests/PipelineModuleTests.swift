// CraftPipeline on its own: what a runtime author compiles, without CraftModels or CraftRuntimes.
import CraftBundles
import CraftCore
import CraftPipeline
import Foundation
import RuntimeTestSupport
import Testing

/// A backend a runtime author might write: it answers with the codes of the visual tokens it is given.
struct CodeEchoBackend: LanguageBackend {
    let codebookHash: String
    let contextLength = 64

    func tokenize(_ text: String) throws -> [Int32] { text.unicodeScalars.map { Int32($0.value) } }

    func detokenize(_ tokens: [Int32]) throws -> String {
        String(String.UnicodeScalarView(tokens.compactMap { Unicode.Scalar(UInt32($0)) }))
    }

    func generate(_ prompt: [PromptSegment], options: GenerationOptions) throws -> GeneratedText {
        for case .visual(let tokens) in prompt {
            return GeneratedText(text: Self.text(tokens), tokens: [], finishReason: .endOfSequence)
        }
        return GeneratedText(text: "", tokens: [], finishReason: .endOfSequence)
    }

    static func text(_ tokens: VisualTokens) -> String { tokens.codes.scalars.map(String.init).joined(separator: " ") }
}

@Suite("CraftPipeline without the model runtimes")
struct PipelineModuleTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/bundles")

    @Test("the table runtimes answer through the pipeline by image index (examples/bundles digits); pruning applies to their tokens")
    func tableRuntimesRunThroughThePipeline() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let encoder = try TinyBundles.packAndUnpack(Self.examples.appendingPathComponent("digits-vq"), in: scratch, as: "encoder")
        let backend = try TinyBundles.packAndUnpack(Self.examples.appendingPathComponent("digits-answers"), in: scratch, as: "backend")
        let pair = try checkCompatibility(encoder: encoder, backend: backend, runtimes: .tables).requirePairing()
        let pipeline = try Pipeline(pair: pair, encoder: encoder, backend: backend, runtimes: .tables)
        let tableEncoder = try TableEncoder(bundle: encoder)
        let tableBackend = try TableBackend(bundle: backend)
        #expect(pipeline.imageIndices == 0..<tableEncoder.imageCount)
        for index in 0..<3 {
            let result = try pipeline.measuredAnswer(imageAt: index, prompt: "which digit?")
            #expect(result.answer.text == tableBackend.answer(try tableEncoder.tokens(forImage: index)))
            #expect(result.measurement.visualTokensBefore == 4 && result.measurement.textTokens == 0)
            #expect(result.measurement.prefillFLOPsFull == nil)
        }
        let pruned = try pipeline.measuredAnswer(imageAt: 0, prompt: "which digit?", keepRatio: 0.5)
        #expect(pruned.measurement.visualTokensAfter == 2)
        // A table-backend has no positions to keep: asking for original position ids is refused, not ignored.
        #expect(!pipeline.backend.supportsOriginalVisualPositionIDs)
        let original = GenerationOptions(visualPositionIDs: .original)
        let positions = try #require(throws: CraftCoreError.self) {
            try pipeline.measuredAnswer(imageAt: 0, prompt: "which digit?", keepRatio: 0.5, options: original)
        }
        #expect(positions.code == .invalidParameter && positions.message.contains("cannot keep the original position ids"))
        let picture = try RGBImage(width: 8, height: 8, pixels: Array(repeating: 0, count: 192))
        let refused = try #require(throws: BundleError.self) { try pipeline.tokens(for: picture) }
        #expect(refused.message.contains("digits-vq@1.0.0") && refused.message.contains("image index"))
    }

    @Test("a runtime author's own backend, registered with registerBackend, runs through the pipeline")
    func ownBackendRunsThroughThePipeline() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let source = scratch.path("code-echo")
        try FileManager.default.copyItem(at: Self.examples.appendingPathComponent("digits-answers"), to: source)
        let manifestURL = source.appendingPathComponent("craft.json")
        var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as? [String: Any])
        manifest["name"] = "code-echo"
        manifest["runtime"] = ["id": "code-echo", "version": "1.0.0"]
        try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]).write(to: manifestURL)
        let encoder = try TinyBundles.packAndUnpack(Self.examples.appendingPathComponent("digits-vq"), in: scratch, as: "encoder")
        let backend = try TinyBundles.packAndUnpack(source, in: scratch, as: "backend")

        // Without its runtime the pair is refused: nothing could load the backend.
        #expect(!checkCompatibility(encoder: encoder, backend: backend, runtimes: .tables).isCompatible)
        var runtimes = RuntimeRegistry.tables
        runtimes.registerBackend("code-echo", versions: try VersionRange("^1.0"), summary: "echoes the visual codes") { bundle in
            CodeEchoBackend(codebookHash: bundle.manifest.codebook.hash)
        }
        let pair = try checkCompatibility(encoder: encoder, backend: backend, runtimes: runtimes).requirePairing()
        let pipeline = try Pipeline(pair: pair, encoder: encoder, backend: backend, runtimes: runtimes)
        let answer = try pipeline.measuredAnswer(imageAt: 2, prompt: "which codes?")
        #expect(answer.answer.text == CodeEchoBackend.text(try TableEncoder(bundle: encoder).tokens(forImage: 2)))
        #expect(answer.measurement.visualTokensBefore == 4)
    }
}
