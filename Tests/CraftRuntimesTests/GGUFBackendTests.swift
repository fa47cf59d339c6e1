import CraftBundles
import CraftCore
import CraftImaging
import CraftModels
import Foundation
import GGUF
import RuntimeTestSupport
import SafeTensors
import TensorCore
import Testing

@testable import CraftRuntimes

/// Backend bundles holding a llama.cpp GGUF file (docs/gguf.md): checked and paired like any other.
@Suite("Backend bundles with a GGUF decoder")
struct GGUFBackendTests {
    static let ggufModels = TinyBundles.models.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("GGUFTests/Fixtures/models")

    /// A backend bundle directory over a fixture GGUF (hidden 64, vocabulary 600 for Llama, 801 for Qwen2) for the tiny codebook.
    /// `ownTokenizer` names model.gguf as the tokenizer (the one its metadata describes) instead of
    /// carrying a tokenizer.json.
    func backend(at directory: URL, gguf: String, runtime: String, codebookHash: String, ownTokenizer: Bool = false) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.ggufModels.appendingPathComponent("\(gguf).gguf"), to: directory.appendingPathComponent("model.gguf"))
        if !ownTokenizer { try TinyBundles.tokenizerJSON().write(to: directory.appendingPathComponent("tokenizer.json")) }
        var writer = SafeTensorsWriter()
        try writer.add("projector.weight", floats: TinyBundles.projector(hidden: 64), shape: [64, TinyBundles.dimension])
        try writer.write(to: directory.appendingPathComponent("projector.safetensors"))
        try TinyBundles.writeManifest([
            "schema": "craft.bundle/v1", "kind": "backend", "name": "tiny-gguf", "version": "1.0.0", "summary": "a GGUF decoder backend",
            "domains": ["test"], "license": "MIT", "runtime": ["id": runtime, "version": "1.0.0"],
            "codebook": ["hash": codebookHash, "entries": TinyBundles.entries, "dim": TinyBundles.dimension, "depth": 1, "metric": "l2"],
            "backend": ["context_length": 64, "tokenizer": ownTokenizer ? "model.gguf" : "tokenizer.json", "prompt_template": TinyBundles.template,
                        "projector": ["file": "projector.safetensors", "name": "projector.weight"]],
            "files": [["path": "model.gguf"], ["path": "projector.safetensors"]] + (ownTokenizer ? [] : [["path": "tokenizer.json"]]),
        ], to: directory)
    }

    @Test("a Q8_0 Llama GGUF backend pairs with an encoder of its codebook and answers as the GGUF model does")
    func pairsAndAnswers() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let values = TinyBundles.codebook()
        try TinyBundles.encoderDirectory(at: scratch.path("enc"), codebook: values)
        try backend(at: scratch.path("llm"), gguf: "llama_q8_0", runtime: "llama", codebookHash: try TinyBundles.hash(values))
        let encoder = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        let backendBundle = try TinyBundles.packAndUnpack(scratch.path("llm"), in: scratch, as: "backend")
        let report = checkCompatibility(encoder: encoder, backend: backendBundle, runtimes: .craftDefault)
        let pipeline = try Pipeline(pair: try report.requirePairing(), encoder: encoder, backend: backendBundle)
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        let image = try ImageInput.rgbImage(contentsOf: scratch.path("image.png"))
        let options = GenerationOptions(maximumNewTokens: 6)
        let answer = try pipeline.answer(image: image, prompt: "what is this ?", options: options)

        // The same prompt through a DecoderBackend built by hand over LlamaModel(gguf:).
        let model = try LlamaModel(gguf: Self.ggufModels.appendingPathComponent("llama_q8_0.gguf"))
        let byHand = try DecoderBackend(
            model: model, tokenizer: try Tokenizer(contentsOf: backendBundle.url(for: "tokenizer.json")), codebook: pipeline.encoder.codebook,
            projectorWeight: Tensor(TinyBundles.projector(hidden: 64), shape: [64, TinyBundles.dimension]), contextLength: 64,
            prefixTokens: [1], endOfSequenceTokens: [2])
        let expected = try byHand.generate(try pipeline.segments(image: image, prompt: "what is this ?"), options: options)
        #expect(answer == expected)
        #expect(pipeline.backend.decoderShape?.layers == 2)
    }

    /// `backend.tokenizer: "model.gguf"` builds the tokenizer from the file's metadata; BOS comes
    /// first because a SentencePiece vocabulary adds it unless the file says otherwise.
    @Test("a GGUF backend naming model.gguf as its tokenizer uses the file's own tokenizer")
    func ownTokenizer() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let values = TinyBundles.codebook()
        try TinyBundles.encoderDirectory(at: scratch.path("enc"), codebook: values)
        try backend(at: scratch.path("llm"), gguf: "llama_q8_0", runtime: "llama", codebookHash: try TinyBundles.hash(values), ownTokenizer: true)
        let encoder = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        let backendBundle = try TinyBundles.packAndUnpack(scratch.path("llm"), in: scratch, as: "backend")
        let pipeline = try Pipeline(pair: try checkCompatibility(encoder: encoder, backend: backendBundle, runtimes: .craftDefault).requirePairing(),
                                    encoder: encoder, backend: backendBundle)
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        let image = try ImageInput.rgbImage(contentsOf: scratch.path("image.png"))
        let options = GenerationOptions(maximumNewTokens: 6)
        let prompt = "what is this ?"
        let answer = try pipeline.answer(image: image, prompt: prompt, options: options)

        let file = try GGUFFile(contentsOf: Self.ggufModels.appendingPathComponent("llama_q8_0.gguf"))
        let tokenizer = try Tokenizer(gguf: file)
        let ids = try tokenizer.encode("The dog sleeps.", addSpecialTokens: false)
        #expect(ids.count > 2 && ids.count < 10, "a trained vocabulary merges the words: \(ids)")
        #expect(try pipeline.backend.tokenize("The dog sleeps.") == ids.map { Int32($0) })
        let byHand = try DecoderBackend(
            model: try LlamaModel(gguf: file), tokenizer: tokenizer, codebook: pipeline.encoder.codebook,
            projectorWeight: Tensor(TinyBundles.projector(hidden: 64), shape: [64, TinyBundles.dimension]), contextLength: 64,
            prefixTokens: [1], endOfSequenceTokens: [2])
        #expect(answer == (try byHand.generate(try pipeline.segments(image: image, prompt: prompt), options: options)))
    }

    @Test("a GGUF file of another architecture than the runtime named is refused with a sentence")
    func architectureMismatch() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try backend(at: scratch.path("llm"), gguf: "qwen2_f16", runtime: "llama", codebookHash: try TinyBundles.hash(TinyBundles.codebook()))
        let bundle = try TinyBundles.packAndUnpack(scratch.path("llm"), in: scratch, as: "backend")
        #expect { _ = try RuntimeRegistry.craftDefault.loadBackend(bundle) } throws: { error in
            "\(error)".contains("holds a qwen2 model; set runtime.id to qwen2")
        }
    }
}
