import CraftBundles
import CraftCore
import CraftImaging
import CraftModels
import Foundation
import SafeTensors
import TensorCore
import RuntimeTestSupport
import Testing

@testable import CraftRuntimes

@Suite("Pipeline and model runtimes")
struct PipelineTests {
    @Test("a checked siglip-vq + llama pair answers exactly as the same models wired by hand (greedy)")
    func llamaPipelineMatchesHandWiredModels() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let values = TinyBundles.codebook()
        try TinyBundles.encoderDirectory(at: scratch.path("enc"), codebook: values)
        try TinyBundles.backendDirectory(at: scratch.path("llm"), codebookHash: try TinyBundles.hash(values))
        let encoder = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        let backend = try TinyBundles.packAndUnpack(scratch.path("llm"), in: scratch, as: "backend")
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        let image = try ImageInput.rgbImage(contentsOf: scratch.path("image.png"))

        let report = checkCompatibility(encoder: encoder, backend: backend, runtimes: .craftDefault)
        #expect(report.isCompatible, "\(report.renderText())")
        let pipeline = try Pipeline(pair: try report.requirePairing(), encoder: encoder, backend: backend)
        let options = GenerationOptions(maximumNewTokens: 6)
        let answer = try pipeline.answer(image: image, prompt: "what is this ?", options: options)

        // By hand: the same checkpoints, codebook, projector and template, without bundles or runtimes.
        let models = TinyBundles.models
        let codebook = try Codebook(values: values, entries: TinyBundles.entries, dimension: TinyBundles.dimension, metric: .l2)
        let preprocessing = try JSONDecoder().decode(ImagePreprocessing.self, from: Data(TinyBundles.preprocessorJSON.utf8))
        let handEncoder = try SiglipVQEncoder(tower: SiglipVisionModel(directory: models.appendingPathComponent("siglip_no_head")),
                                              codebook: codebook, quantizeAfterLayer: 1, preprocessing: preprocessing)
        let tokens = try #require(try handEncoder.encode(handEncoder.preprocess(image).unsqueezed(0)).first)
        let handBackend = try DecoderBackend(
            model: LlamaModel(directory: models.appendingPathComponent("llama_tied")),
            tokenizer: Tokenizer(data: TinyBundles.tokenizerJSON()), codebook: codebook,
            projectorWeight: Tensor(TinyBundles.projector(hidden: 32), shape: [32, 32]),
            projectorBias: Tensor((0..<32).map { Float($0) * 0.01 }, shape: [32]),
            contextLength: 64, prefixTokens: [1], endOfSequenceTokens: [2])
        let expected = try handBackend.generate([.visual(tokens), .text(" question : what is this ? answer :")], options: options)

        #expect(tokens.count == 16)
        #expect(answer.tokens == expected.tokens)
        #expect(answer.text == expected.text)
        #expect(!answer.tokens.isEmpty || answer.finishReason == .endOfSequence)
        // The pipeline's own tokens are the hand encoder's codes.
        #expect(try pipeline.tokens(for: image).codes.scalars == tokens.codes.scalars)
    }

    @Test("a gpt2 backend bundle loads and answers through the pipeline")
    func gpt2PipelineAnswers() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let values = TinyBundles.codebook()
        try TinyBundles.encoderDirectory(at: scratch.path("enc"), codebook: values)
        try TinyBundles.backendDirectory(at: scratch.path("gpt"), name: "tiny-gpt", model: "gpt2", runtime: "gpt2",
                                         codebookHash: try TinyBundles.hash(values))
        let encoder = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        let backend = try TinyBundles.packAndUnpack(scratch.path("gpt"), in: scratch, as: "backend")
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        let report = checkCompatibility(encoder: encoder, backend: backend, runtimes: .craftDefault)
        let pipeline = try Pipeline(pair: try report.requirePairing(), encoder: encoder, backend: backend)
        #expect(pipeline.backend is DecoderBackend)
        #expect((pipeline.backend as? DecoderBackend)?.model is GPT2Model)
        let answer = try pipeline.answer(image: try ImageInput.rgbImage(contentsOf: scratch.path("image.png")),
                                         prompt: "what", options: GenerationOptions(maximumNewTokens: 3))
        #expect(answer.tokens.count <= 3)
        #expect(answer.finishReason == .length || answer.finishReason == .endOfSequence)
    }

    @Test("a Qwen2 backend (bfloat16 checkpoint) loads through the qwen2 runtime and answers; runtime llama over it is refused")
    func qwen2BackendRunsThroughItsRuntime() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let values = TinyBundles.codebook()
        let hash = try TinyBundles.hash(values)
        try TinyBundles.encoderDirectory(at: scratch.path("enc"), codebook: values)
        try TinyBundles.backendDirectory(at: scratch.path("qwen"), name: "tiny-qwen", model: "qwen2_tied_bf16", runtime: "qwen2", codebookHash: hash)
        try TinyBundles.backendDirectory(at: scratch.path("wrong"), name: "tiny-wrong", model: "qwen2_tied_bf16", runtime: "llama", codebookHash: hash)
        let encoder = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        let backend = try TinyBundles.packAndUnpack(scratch.path("qwen"), in: scratch, as: "backend")
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        let pair = try checkCompatibility(encoder: encoder, backend: backend, runtimes: .craftDefault).requirePairing()
        let pipeline = try Pipeline(pair: pair, encoder: encoder, backend: backend)
        #expect((pipeline.backend as? DecoderBackend)?.model is LlamaModel)
        #expect(((pipeline.backend as? DecoderBackend)?.model as? LlamaModel)?.configuration.modelType == "qwen2")
        let answer = try pipeline.answer(image: try ImageInput.rgbImage(contentsOf: scratch.path("image.png")),
                                         prompt: "what", options: GenerationOptions(maximumNewTokens: 3))
        #expect(answer.tokens.count <= 3)

        let wrong = try TinyBundles.packAndUnpack(scratch.path("wrong"), in: scratch, as: "wrong")
        let error = try #require(throws: BundleError.self) { _ = try RuntimeRegistry.craftDefault.loadBackend(wrong) }
        #expect(error.message.contains("describes a qwen2 model; set runtime.id to qwen2"), "\(error.message)")
    }

    @Test("a backend declaring an mlp2x_gelu projector loads it (NAME.0 and NAME.2) and answers; bad declarations are refused")
    func mlpProjectorBackendRuns() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let values = TinyBundles.codebook()
        try TinyBundles.encoderDirectory(at: scratch.path("enc"), codebook: values)
        let directory = scratch.path("mlp")
        try TinyBundles.backendDirectory(at: directory, name: "tiny-mlp", codebookHash: try TinyBundles.hash(values))
        // The projector as LLaVA/VILA store it: mm_projector.0 (D -> H), GELU, mm_projector.2 (H -> H).
        var writer = SafeTensorsWriter()
        try writer.add("mm_projector.0.weight", floats: TinyBundles.projector(hidden: 32), shape: [32, TinyBundles.dimension])
        try writer.add("mm_projector.0.bias", floats: (0..<32).map { Float($0) * 0.01 }, shape: [32])
        try writer.add("mm_projector.2.weight", floats: (0..<(32 * 32)).map { Float(($0 * 7) % 13 - 6) * 0.02 }, shape: [32, 32])
        try writer.write(to: directory.appendingPathComponent("projector.safetensors"))
        func declare(_ type: String, name: String) throws {
            let url = directory.appendingPathComponent("craft.json")
            var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            var backend = try #require(object["backend"] as? [String: Any])
            backend["projector_type"] = type
            backend["projector"] = ["file": "projector.safetensors", "name": name]
            object["backend"] = backend
            try JSONSerialization.data(withJSONObject: object).write(to: url)
        }
        try declare("mlp2x_gelu", name: "mm_projector.0.weight")
        let encoder = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        let backend = try TinyBundles.packAndUnpack(directory, in: scratch, as: "backend")
        #expect(backend.manifest.backend?.projectorType == "mlp2x_gelu")
        let pair = try checkCompatibility(encoder: encoder, backend: backend, runtimes: .craftDefault).requirePairing()
        let pipeline = try Pipeline(pair: pair, encoder: encoder, backend: backend)
        let decoder = try #require(pipeline.backend as? DecoderBackend)
        #expect(decoder.mlpOutput?.weight.shape == [32, 32] && decoder.mlpOutput?.bias == nil)
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        let answer = try pipeline.answer(image: try ImageInput.rgbImage(contentsOf: scratch.path("image.png")),
                                         prompt: "what", options: GenerationOptions(maximumNewTokens: 3))
        #expect(answer.tokens.count <= 3)

        for (type, name, expected) in [("mlp2x_gelu", "mm_projector.weight", "NAME.0.weight"), ("mlp3x_relu", "mm_projector.0.weight", "projector_type \"mlp3x_relu\"")] {
            try declare(type, name: name)
            try? FileManager.default.removeItem(at: scratch.path("bad.craft"))
            try? FileManager.default.removeItem(at: scratch.path("bad-unpacked"))
            let bad = try TinyBundles.packAndUnpack(directory, in: scratch, as: "bad")
            let error = try #require(throws: BundleError.self) { _ = try RuntimeRegistry.craftDefault.loadBackend(bad) }
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }

    @Test("a backend reading another codebook fails the check, so no pipeline can be built")
    func mismatchedPairCannotBuildPipeline() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let values = TinyBundles.codebook()
        try TinyBundles.encoderDirectory(at: scratch.path("enc"), codebook: values)
        try TinyBundles.backendDirectory(at: scratch.path("llm"), codebookHash: try TinyBundles.hash(TinyBundles.codebook(seed: 1)))
        let encoder = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        let backend = try TinyBundles.packAndUnpack(scratch.path("llm"), in: scratch, as: "backend")
        let report = checkCompatibility(encoder: encoder, backend: backend, runtimes: .craftDefault)
        #expect(!report.isCompatible)
        #expect(report.pairing == nil)
        #expect(throws: (any Error).self) { try report.requirePairing() }
    }

    @Test("a pair checked for one backend cannot wire a different backend bundle")
    func pairIsBoundToItsBundles() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let values = TinyBundles.codebook()
        let hash = try TinyBundles.hash(values)
        try TinyBundles.encoderDirectory(at: scratch.path("enc"), codebook: values)
        try TinyBundles.backendDirectory(at: scratch.path("llm"), codebookHash: hash)
        try TinyBundles.backendDirectory(at: scratch.path("other"), name: "other-llm", codebookHash: hash)
        let encoder = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        let backend = try TinyBundles.packAndUnpack(scratch.path("llm"), in: scratch, as: "backend")
        let other = try TinyBundles.packAndUnpack(scratch.path("other"), in: scratch, as: "other")
        let pair = try checkCompatibility(encoder: encoder, backend: backend, runtimes: .craftDefault).requirePairing()
        let error = try #require(throws: BundleError.self) { try Pipeline(pair: pair, encoder: encoder, backend: other) }
        #expect(error.message.contains("other-llm@1.0.0"))
    }

    @Test("the model runtimes are registered, and the checker sees them")
    func defaultRegistryHoldsModelRuntimes() {
        let runtimes = RuntimeRegistry.craftDefault
        for id in ["siglip-vq", "llama", "gpt2", "table-encoder", "table-backend"] { #expect(runtimes.contains(id)) }
        #expect(!RuntimeRegistry.tables.contains("llama"))
    }

    @Test("a projector file the manifest does not list is an error naming the bundle and the file")
    func missingProjectorNamesBundleAndFile() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try TinyBundles.backendDirectory(at: scratch.path("llm"), codebookHash: try TinyBundles.hash(TinyBundles.codebook()))
        var backend = try TinyBundles.packAndUnpack(scratch.path("llm"), in: scratch, as: "backend")
        backend.manifest.backend?.projector = TensorReference(file: "missing.safetensors", name: "projector.weight")
        let error = try #require(throws: BundleError.self) { try RuntimeRegistry.craftDefault.loadBackend(backend) }
        #expect(error.entry == "missing.safetensors")
        #expect(error.message.contains("tiny-llm@1.0.0"))
    }

    @Test("a projector of the wrong shape is an error naming the bundle and the file")
    func wrongProjectorShapeNamesBundleAndFile() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try TinyBundles.backendDirectory(at: scratch.path("llm"), codebookHash: try TinyBundles.hash(TinyBundles.codebook()))
        var writer = SafeTensorsWriter()
        try writer.add("projector.weight", floats: Array(repeating: 0.1, count: 16 * 32), shape: [16, 32])
        try writer.write(to: scratch.path("llm/projector.safetensors"))
        let backend = try TinyBundles.packAndUnpack(scratch.path("llm"), in: scratch, as: "backend")
        let error = try #require(throws: BundleError.self) { try RuntimeRegistry.craftDefault.loadBackend(backend) }
        #expect(error.entry == "projector.safetensors")
        #expect(error.message.contains("tiny-llm@1.0.0") && error.message.contains("[32, 32]"))
    }

    @Test("tokens_per_image that disagrees with the tower's grid is refused")
    func wrongTokenCountRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try TinyBundles.encoderDirectory(at: scratch.path("enc"))
        var encoder = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        encoder.manifest.encoder?.tokensPerImage = 9
        let error = try #require(throws: BundleError.self) { try RuntimeRegistry.craftDefault.loadEncoder(encoder) }
        #expect(error.entry == "encoder.tokens_per_image")
    }

    @Test("an encoder whose declared codebook hash is not its tensor's is refused, naming the codebook file")
    func tamperedCodebookHashRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try TinyBundles.encoderDirectory(at: scratch.path("enc"))
        var encoder = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        encoder.manifest.codebook.hash = try TinyBundles.hash(TinyBundles.codebook(seed: 3))
        let error = try #require(throws: BundleError.self) { try RuntimeRegistry.craftDefault.loadEncoder(encoder) }
        #expect(error.code == .codebookHashMismatch)
        #expect(error.entry == "codebook.safetensors")
    }

    @Test("prompt templates place the visual tokens at <image> and the prompt at {prompt}")
    func templateSegments() throws {
        #expect(throws: BundleError.self) { try PromptTemplate("no image here {prompt}") }
        #expect(throws: BundleError.self) { try PromptTemplate("<image><image>") }
        let template = try PromptTemplate("Q: {prompt}\n<image>\nA:")
        let tokens = try VisualTokens(codebookHash: "sha256:00", grid: (1, 1), codes: IndexTensor([0], shape: [1, 1]),
                                      positions: [GridPosition(row: 0, column: 0)], residualNorms: [0])
        let segments = template.segments(visual: tokens, prompt: "a <image> b")
        #expect(segments.count == 3)
        if case .text(let head) = segments[0] { #expect(head == "Q: a <image> b\n") } else { Issue.record("expected text first") }
        if case .visual = segments[1] {} else { Issue.record("expected visual second") }
        if case .text(let tail) = segments[2] { #expect(tail == "\nA:") } else { Issue.record("expected text last") }
        let plain = PromptTemplate.default.segments(visual: tokens, prompt: "hi")
        #expect(plain.count == 2)
    }
}

@Suite("Runtimes Craft ships")
struct ShippedRuntimeTests {
    @Test("every decoder of the model-type table is a backend runtime of craftDefault, and siglip-vq an encoder one")
    func decodersOfTheTableAreRegistered() throws {
        let runtimes = RuntimeRegistry.craftDefault
        let version = try SemanticVersion(parsing: "1.0.0")
        for architecture in ModelArchitecture.decoders {
            #expect(runtimes.contains(architecture.name, version: version, kind: .backend), "\(architecture.name)")
            #expect(!runtimes.contains(architecture.name, version: version, kind: .encoder))
        }
        #expect(runtimes.contains(ModelRuntimes.siglipVQ, version: version, kind: .encoder))
        #expect(runtimes.knownRuntimes.first { $0.id == "llama" }?.summary == ModelArchitecture.llama.summary)
    }
}
