import CraftBundles
import CraftCore
import CraftRegistry
import Foundation
import RuntimeTestSupport
import Testing

@testable import CraftRuntimes

/// examples/pair-and-ask: its library source is compiled into this target (a symbolic link in
/// PairAndAskExample/), because building the nested package in a test would rebuild all of Craft
/// (minutes on two cores). Its `main.swift` is one line calling `PairAndAsk.main`, tested here.
@Suite("pair-and-ask example")
struct PairAndAskExampleTests {
    /// A registry holding the tiny siglip-vq encoder, llama and gpt2 backends of its codebook, and a
    /// llama backend of another codebook.
    func makeRegistry(_ scratch: Scratch) throws -> Registry {
        let values = TinyBundles.codebook()
        let hash = try TinyBundles.hash(values)
        try TinyBundles.encoderDirectory(at: scratch.path("src/enc"), codebook: values)
        try TinyBundles.backendDirectory(at: scratch.path("src/llm"), codebookHash: hash)
        try TinyBundles.backendDirectory(at: scratch.path("src/gpt"), name: "tiny-gpt", model: "gpt2", runtime: "gpt2", codebookHash: hash)
        try TinyBundles.backendDirectory(at: scratch.path("src/other"), name: "other-llm", codebookHash: try TinyBundles.hash(TinyBundles.codebook(seed: 2)))
        let registry = Registry(root: scratch.path("registry"))
        for name in ["enc", "llm", "gpt", "other"] {
            let packed = try BundleArchive.pack(directory: scratch.path("src/\(name)"), to: scratch.path("\(name).craft"))
            try registry.publish(packed.url)
        }
        try TinyBundles.writeImage(to: scratch.path("photo.png"))
        return registry
    }

    @Test("named refs: pulls, checks and answers exactly as a pipeline wired from the same bundles by hand")
    func namedPairAnswers() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = try makeRegistry(scratch)
        let request = PairAndAskRequest(
            registry: registry.root, encoder: "tiny-vq@^1.0", backend: "tiny-llm", image: scratch.path("photo.png"),
            prompt: "what is this ?", maximumNewTokens: 4, cache: scratch.path("cache"))
        let result = try PairAndAsk.run(request)
        #expect(result.encoder == "tiny-vq@1.0.0" && result.backend == "tiny-llm@1.0.0")
        #expect(result.codebookHash == (try TinyBundles.hash(TinyBundles.codebook())))
        #expect(!result.passedChecks.isEmpty)

        let encoder = try TinyBundles.packAndUnpack(scratch.path("src/enc"), in: scratch, as: "encoder")
        let backend = try TinyBundles.packAndUnpack(scratch.path("src/llm"), in: scratch, as: "backend")
        let report = checkCompatibility(encoder: encoder, backend: backend, runtimes: .craftDefault)
        #expect(result.passedChecks.count == report.checks.count, "every check passed")
        let pipeline = try Pipeline(pair: try report.requirePairing(), encoder: encoder, backend: backend)
        let expected = try pipeline.answer(
            image: try ImageInput.rgbImage(contentsOf: scratch.path("photo.png")), prompt: "what is this ?",
            options: GenerationOptions(maximumNewTokens: 4))
        #expect(result.answer == expected.text)
        #expect(result.measurement.visualTokensBefore == 16 && result.measurement.visualTokensAfter == 16)
        let lines = result.report.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "encoder: tiny-vq@1.0.0" && lines.contains("answer: \(expected.text)"), "\(result.report)")
        #expect(lines.contains("visual tokens: 16 -> 16") && lines.contains("prefill FLOPs: 1089792 -> 1089792"), "\(result.report)")

        // Pruning through the example: half the tokens.
        var pruned = request
        pruned.keepRatio = 0.5
        #expect(try PairAndAsk.run(pruned).measurement.visualTokensAfter == 8)
    }

    @Test("no refs: picks the encoder and the first compatible backend of a model runtime, never the other codebook's")
    func automaticChoice() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = try makeRegistry(scratch)
        let result = try PairAndAsk.run(PairAndAskRequest(
            registry: registry.root, image: scratch.path("photo.png"), prompt: "what", maximumNewTokens: 2, cache: scratch.path("cache")))
        #expect(result.encoder == "tiny-vq@1.0.0")
        #expect(["tiny-gpt@1.0.0", "tiny-llm@1.0.0"].contains(result.backend), "\(result.backend)")
        // Only the encoder named: its compatible backend is found.
        let named = try PairAndAsk.run(PairAndAskRequest(
            registry: registry.root, encoder: "tiny-vq", image: scratch.path("photo.png"), prompt: "what", maximumNewTokens: 2,
            cache: scratch.path("cache")))
        #expect(named.backend != "other-llm@1.0.0")
    }

    @Test("a pair of different codebooks is refused (incompatible, exit 3); usage errors exit 64; a missing registry or image exits 2")
    func failures() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = try makeRegistry(scratch)
        let error = try #require(throws: PairAndAskError.self) {
            try PairAndAsk.run(PairAndAskRequest(
                registry: registry.root, encoder: "tiny-vq", backend: "other-llm", image: scratch.path("photo.png"), prompt: "what",
                cache: scratch.path("cache")))
        }
        #expect(error.category == .incompatible && error.message.contains("other-llm@1.0.0"), "\(error.message)")

        let cache = ["--cache", scratch.path("cache").path]
        let base = ["--registry", registry.root.path, "--image", scratch.path("photo.png").path] + cache
        #expect(PairAndAsk.main(base + ["--encoder", "tiny-vq", "--backend", "other-llm"]) == 3)
        #expect(PairAndAsk.main(["--prompt", "what"]) == 64)
        #expect(PairAndAsk.main(base + ["--keep-ratio", "0"]) == 64)
        #expect(PairAndAsk.main(base + ["--bogus", "1"]) == 64)
        #expect(PairAndAsk.main(["--registry", scratch.path("nowhere").path, "--image", scratch.path("photo.png").path] + cache) == 2)
        #expect(PairAndAsk.main(["--registry", registry.root.path, "--image", scratch.path("none.png").path] + cache) == 2)
        #expect(PairAndAsk.main(base + ["--encoder", "no-such-encoder", "--backend", "tiny-llm"]) == 2)
        #expect(PairAndAsk.main(base + ["--max-tokens", "1"]) == 0)

        // Defaults: the registry is ./registry, the prompt a generic question.
        let parsed = try #require(try PairAndAsk.parse(["--image", "x.png"], currentDirectory: URL(fileURLWithPath: "/work/here")))
        #expect(parsed.registry.path == "/work/here/registry" && parsed.image.path == "/work/here/x.png")
        #expect(parsed.encoder == nil && parsed.backend == nil && parsed.keepRatio == 1 && parsed.maximumNewTokens == 16 && parsed.cache == nil)
        #expect(try PairAndAsk.parse(["--help"]) == nil)
    }
}
