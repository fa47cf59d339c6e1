import CraftBundles
import CraftCore
import CraftRuntimes
import Foundation
import RuntimeTestSupport
import SafeTensors
import TensorCore
import TestSupport
import Testing

@testable import CraftCLI

/// `craft convert`: Hugging Face directories (the repository's tiny fixtures) become bundles that pack,
/// pair and answer, with nothing half-written on failure.
@Suite("craft convert")
struct ConvertCommandTests {
    /// A SigLIP tower directory (with a preprocessor config), a Qwen2 directory saved in bfloat16 with
    /// its tokenizer, a codebook file and an mlp2x_gelu projector file as LLaVA stores it.
    func sources(_ scratch: Scratch) throws -> (tower: URL, decoder: URL, codebook: URL, projector: URL) {
        let tower = scratch.path("hf/siglip"), decoder = scratch.path("hf/qwen2")
        for directory in [tower, decoder] { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        try TinyBundles.copy("siglip_no_head", into: tower)
        try Data(TinyBundles.preprocessorJSON.utf8).write(to: tower.appendingPathComponent("preprocessor_config.json"))
        try TinyBundles.copy("qwen2_tied_bf16", into: decoder)
        try TinyBundles.tokenizerJSON().write(to: decoder.appendingPathComponent("tokenizer.json"))
        var codebook = SafeTensorsWriter()
        try codebook.add("codes", floats: TinyBundles.codebook(), shape: [TinyBundles.entries, TinyBundles.dimension])
        try codebook.write(to: scratch.path("hf/codebook.safetensors"))
        try FileManager.default.copyItem(
            at: TinyBundles.models.appendingPathComponent("mlp2x_gelu_projector.safetensors"), to: scratch.path("hf/mm_projector.safetensors"))
        return (tower, decoder, scratch.path("hf/codebook.safetensors"), scratch.path("hf/mm_projector.safetensors"))
    }

    @Test("an encoder and a Qwen2 backend with an MLP projector convert, pack, pair and answer")
    func convertedBundlesPackPairAndAnswer() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let source = try sources(scratch)
        let registry = ["--registry", scratch.path("no-registry").path]
        let encoder = try runCraft([
            "convert", "encoder", "--model", source.tower.path, "--codebook", source.codebook.path + ":codes",
            "--quantization-layer", "1", "--name", "conv-vq", "--license", "MIT", "--domain", "test", "--output-directory", scratch.path("out/enc").path,
        ])
        #expect(encoder.status == 0, "\(encoder.standardError)")
        #expect(encoder.standardOutput.contains("conv-vq@1.0.0, encoder for runtime siglip-vq, 4 files"), "\(encoder.standardOutput)")
        #expect(encoder.standardOutput.contains("next: craft-registry pack"), "\(encoder.standardOutput)")
        let backend = try runCraft([
            "convert", "backend", "--model", source.decoder.path, "--codebook", source.codebook.path + ":codes",
            "--projector", source.projector.path, "--projector-type", "mlp2x_gelu", "--name", "conv-qwen", "--license", "Apache-2.0",
            "--prompt-template", TinyBundles.template, "--output-directory", scratch.path("out/qwen").path, "--json",
        ])
        #expect(backend.status == 0, "\(backend.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(backend.standardOutput.utf8)) as? [String: Any])
        #expect(report["runtime"] as? String == "qwen2" && report["kind"] as? String == "backend")
        let manifest = try BundleManifest.load(from: scratch.path("out/qwen/craft.json"))
        #expect(manifest.backend?.projectorType == "mlp2x_gelu" && manifest.backend?.projector?.name == "model.mm_projector.0.weight")
        #expect(manifest.backend?.contextLength == 64, "the decoder's max_position_embeddings")

        // The directories are bundles: pair them as they are, pack them, run the packed pair.
        let pair = try RegistryTool.run(["pair", scratch.path("out/enc").path, scratch.path("out/qwen").path] + registry, in: scratch.url)
        #expect(pair.status == 0, "\(pair.stderr)")
        for side in ["enc", "qwen"] {
            let packed = try RegistryTool.run(["pack", scratch.path("out/\(side)").path, "-o", scratch.path("\(side).craft").path], in: scratch.url)
            #expect(packed.status == 0, "\(packed.stderr)")
        }
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        let run = try runCraft([
            "run", "--encoder", scratch.path("enc.craft").path, "--backend", scratch.path("qwen.craft").path,
            "--image", scratch.path("image.png").path, "--prompt", "what", "--max-tokens", "3",
        ] + registry)
        #expect(run.status == 0, "\(run.standardError)")
    }

    /// VILA-U's layout (`scripts/model_fixtures.py vila_u`): a full SiglipModel with learned logit
    /// scale and bias, and an RQ-VAE codebook `[K + 1, D]` whose last row is padding, shared by 4
    /// levels, quantized before the last of 3 layers. The converted encoder's codes and quantized
    /// vectors equal residual quantization in torch on the output of layer 2.
    /// A llama.cpp GGUF file (docs/gguf.md) plus a projector becomes a backend bundle holding
    /// model.gguf, whose tokenizer is the file's own (or a tokenizer.json given with --tokenizer),
    /// which pairs with an encoder of the codebook and answers; a missing --tokenizer file is
    /// refused and leaves nothing.
    @Test("a Q8_0 Llama GGUF file converts into a backend bundle that pairs and answers")
    func ggufBackendConverts() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let source = try sources(scratch)
        let gguf = TinyBundles.models.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("GGUFTests/Fixtures/models/llama_q8_0.gguf")
        var projector = SafeTensorsWriter()
        try projector.add("projector.weight", floats: TinyBundles.projector(hidden: 64), shape: [64, TinyBundles.dimension])
        try projector.write(to: scratch.path("hf/projector.safetensors"))
        let common = ["convert", "backend", "--model", gguf.path, "--codebook", source.codebook.path + ":codes",
                      "--projector", scratch.path("hf/projector.safetensors").path, "--name", "gguf-llama", "--license", "MIT",
                      "--prompt-template", TinyBundles.template]
        let refused = try runCraft(common + ["--tokenizer", scratch.path("missing.json").path, "--output-directory", scratch.path("out/refused").path])
        #expect(refused.status != 0 && refused.standardError.contains("missing.json does not exist"), "\(refused.standardError)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out/refused").path))
        let own = try runCraft(common + ["--output-directory", scratch.path("out/own").path])
        #expect(own.status == 0, "\(own.standardError)")
        let ownManifest = try BundleManifest.load(from: scratch.path("out/own/craft.json"))
        #expect(ownManifest.backend?.tokenizer == "model.gguf")
        #expect(ownManifest.files.map(\.path).sorted() == ["model.gguf", "projector.safetensors"])
        let backend = try runCraft(common + ["--tokenizer", source.decoder.appendingPathComponent("tokenizer.json").path,
                                             "--output-directory", scratch.path("out/gguf").path])
        #expect(backend.status == 0, "\(backend.standardError)")
        let manifest = try BundleManifest.load(from: scratch.path("out/gguf/craft.json"))
        #expect(manifest.runtime.id == "llama" && manifest.backend?.contextLength == 64)
        #expect(manifest.files.map(\.path).sorted() == ["model.gguf", "projector.safetensors", "tokenizer.json"])
        let encoder = try runCraft(["convert", "encoder", "--model", source.tower.path, "--codebook", source.codebook.path + ":codes",
                                    "--name", "conv-vq", "--license", "MIT", "--output-directory", scratch.path("out/enc").path])
        #expect(encoder.status == 0, "\(encoder.standardError)")
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        let run = try runCraft(["run", "--encoder", scratch.path("out/enc").path, "--backend", scratch.path("out/gguf").path,
                                "--image", scratch.path("image.png").path, "--prompt", "what", "--max-tokens", "3",
                                "--registry", scratch.path("no-registry").path])
        #expect(run.status == 0, "\(run.standardError)")
    }

    @Test("a VILA-U-style checkpoint converts: padding row dropped, shared RVQ, text tower and logit scale kept")
    func vilaULayoutConverts() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let name = "vila_u_layout"
        let model = TinyBundles.models.appendingPathComponent(name)
        let codebook = TinyBundles.models.appendingPathComponent("\(name).rq_codebook.safetensors")
        let result = try runCraft([
            "convert", "encoder", "--model", model.path, "--codebook", codebook.path + ":quantizer.codebooks.0.weight",
            "--drop-padding-row", "--shared-depth", "4", "--quantization-layer", "2", "--text-tower",
            "--name", "vila-u-vq", "--license", "MIT", "--output-directory", scratch.path("vila").path,
        ])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("(4×16×32, l2)"), "\(result.standardOutput)")
        #expect(result.standardError.contains("hashing 6 files ...\nloading the bundle through its runtime (siglip-vq) to prove it works ..."),
                "progress on stderr: \(result.standardError)")
        let bundle = try BundleArchive.open(directory: scratch.path("vila"), verifyFiles: true)
        let manifest = bundle.manifest
        #expect(manifest.codebook.entries == 16 && manifest.codebook.depth == 4, "the padding row is not a code")
        #expect(manifest.encoder?.quantizationLayer == 2)
        for file in ["text/config.json", "text/model.safetensors", "text/tokenizer.json"] {
            #expect(manifest.file(at: file) != nil, "\(file)")
        }
        let reference = try SafeTensorsFile(contentsOf: TinyBundles.models.appendingPathComponent("\(name).reference.safetensors"))
        let scale = try #require(manifest.config?["logit_scale"]?.doubleValue), bias = try #require(manifest.config?["logit_bias"]?.doubleValue)
        let expectedScale = try reference.floats("logit_scale")[0], expectedBias = try reference.floats("logit_bias")[0]
        #expect(Float(scale) == expectedScale && Float(bias) == expectedBias)
        let text = try SafeTensorsFile(contentsOf: scratch.path("vila/text/model.safetensors"))
        #expect(text.names.allSatisfy { $0.hasPrefix("text_model.") } && !text.names.isEmpty)

        let encoder = try RuntimeRegistry.craftDefault.loadEncoder(bundle)
        let pixels = Tensor(try reference.floats("pixel_values"), shape: try reference.info("pixel_values").shape)
        let tokens = try encoder.encode(pixels)
        let codes = try reference.int64s("codes").map(Int.init)  // [2, 16, 4]
        let quantized = try reference.floats("quantized")
        for (image, token) in tokens.enumerated() {
            #expect(token.codebookHash == manifest.codebook.hash)
            let expected = Array(codes[(image * 64)..<((image + 1) * 64)])
            #expect(token.codes.shape == [16, 4] && token.codes.scalars.map(Int.init) == expected, "image \(image) codes")
            let features = try #require(token.features, "the siglip-vq runtime gives the quantized vectors")
            let (close, report) = approximatelyEqual(
                features.scalars, Array(quantized[(image * 512)..<((image + 1) * 512)]), relative: 1e-4, absolute: 1e-4)
            #expect(close, "image \(image) quantized vectors: \(report)")
        }

        // The same codebook without --drop-padding-row is another identity (17 entries): a backend
        // converted for it would not pair.
        let undropped = try runCraft([
            "convert", "encoder", "--model", model.path, "--codebook", codebook.path + ":quantizer.codebooks.0.weight",
            "--shared-depth", "4", "--quantization-layer", "2", "--name", "vila-u-raw", "--license", "MIT",
            "--output-directory", scratch.path("raw").path, "--json",
        ])
        #expect(undropped.status == 0, "\(undropped.standardError)")
        #expect(try BundleManifest.load(from: scratch.path("raw/craft.json")).codebook.hash != manifest.codebook.hash)
        // --text-tower on a vision tower alone names what is missing.
        let alone = try runCraft([
            "convert", "encoder", "--model", TinyBundles.models.appendingPathComponent("siglip_no_head").path,
            "--codebook", codebook.path + ":quantizer.codebooks.0.weight", "--drop-padding-row", "--text-tower",
            "--name", "x", "--license", "MIT", "--output-directory", scratch.path("alone").path,
        ])
        #expect(alone.status != 0 && alone.standardError.contains("--text-tower needs a full SiglipModel directory"), "\(alone.standardError)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("alone").path))
    }

    @Test("bad sources are refused with the reason, and nothing is left at --output-directory")
    func badSourcesLeaveNothing() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let source = try sources(scratch)
        var narrow = SafeTensorsWriter()
        try narrow.add("codebook", floats: [Float](repeating: 0.5, count: 16 * 8).enumerated().map { Float($0.offset) * 0.01 }, shape: [16, 8])
        try narrow.write(to: scratch.path("narrow.safetensors"))
        try FileManager.default.createDirectory(at: scratch.path("out"), withIntermediateDirectories: true)
        let cases: [([String], String)] = [
            (["encoder", "--model", source.tower.path, "--codebook", scratch.path("narrow.safetensors").path],
             "is 8 wide but the tower's hidden size is 32"),
            (["encoder", "--model", source.decoder.path, "--codebook", source.codebook.path + ":codes"], "holds a qwen2 model"),
            (["backend", "--model", source.tower.path, "--codebook", source.codebook.path + ":codes", "--projector", source.projector.path],
             "holds a siglip-vision model"),
            (["backend", "--model", source.decoder.path, "--codebook", source.codebook.path + ":codes", "--projector", source.projector.path],
             "tensors ending in \"weight\""),
            // Written, then refused by the runtime's own load: the staging copy goes too.
            (["backend", "--model", source.decoder.path, "--codebook", scratch.path("narrow.safetensors").path, "--projector", source.projector.path,
              "--projector-type", "mlp2x_gelu"], "but must be [32, 8]"),
        ]
        for (arguments, expected) in cases {
            let output = scratch.path("out/bad")
            let result = try runCraft(["convert"] + arguments + ["--name", "bad", "--license", "MIT", "--output-directory", output.path])
            #expect(result.status != 0, "\(arguments)")
            #expect(result.standardError.contains(expected), "\(result.standardError)")
            #expect(!FileManager.default.fileExists(atPath: output.path))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.path("out").path)
            #expect(leftovers.isEmpty, "\(leftovers)")
        }
        // An existing output is never replaced.
        try FileManager.default.createDirectory(at: scratch.path("out/exists"), withIntermediateDirectories: true)
        let exists = try runCraft(["convert", "encoder", "--model", source.tower.path, "--codebook", source.codebook.path + ":codes",
                                   "--name", "x", "--license", "MIT", "--output-directory", scratch.path("out/exists").path])
        #expect(exists.status != 0 && exists.standardError.contains("already exists"), "\(exists.standardError)")
    }

    /// Residual VQ end to end: an encoder quantizing into `depth` levels (a `[depth, K, D]` codebook)
    /// and a Llama backend reading it, converted, then tokens, run, eval with pruning, stats and a
    /// CRAFT training step through the command line.
    @Test("residual codebooks of depth 2 and 4 work through tokens, run, eval with pruning, stats and train", arguments: [2, 4])
    func residualDepthsWorkEndToEnd(depth: Int) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let source = try sources(scratch)
        let decoder = scratch.path("hf/llama")
        try FileManager.default.createDirectory(at: decoder, withIntermediateDirectories: true)
        try TinyBundles.copy("llama_tied", into: decoder)
        try TinyBundles.tokenizerJSON().write(to: decoder.appendingPathComponent("tokenizer.json"))
        var projector = SafeTensorsWriter()
        try projector.add("projector.weight", floats: TinyBundles.projector(hidden: 32), shape: [32, TinyBundles.dimension])
        try projector.write(to: scratch.path("hf/projector.safetensors"))
        // Level l's codes shrink by 2^-l: each level quantizes what the previous ones left.
        let levels = (0..<depth).flatMap { level in TinyBundles.codebook(seed: Float(level)).map { $0 / Float(1 << level) } }
        var codebook = SafeTensorsWriter()
        try codebook.add("codebook", floats: levels, shape: [depth, TinyBundles.entries, TinyBundles.dimension])
        try codebook.write(to: scratch.path("hf/rvq.safetensors"))
        let common = ["--codebook", scratch.path("hf/rvq.safetensors").path, "--license", "MIT", "--domain", "test"]
        let encoder = try runCraft(["convert", "encoder", "--model", source.tower.path, "--quantization-layer", "1", "--name", "rvq-vq",
                                    "--output-directory", scratch.path("rvq-vq").path] + common)
        #expect(encoder.status == 0, "\(encoder.standardError)")
        let backend = try runCraft(["convert", "backend", "--model", decoder.path, "--projector", scratch.path("hf/projector.safetensors").path,
                                    "--prompt-template", TinyBundles.template, "--name", "rvq-llm", "--output-directory", scratch.path("rvq-llm").path] + common)
        #expect(backend.status == 0, "\(backend.standardError)")
        let registry = ["--registry", scratch.path("no-registry").path]
        let (enc, llm) = (scratch.path("rvq-vq").path, scratch.path("rvq-llm").path)
        try TinyBundles.writeImage(to: scratch.path("image.png"))

        let tokens = try runCraft(["tokens", "--encoder", enc, "--image", scratch.path("image.png").path, "--json"] + registry)
        #expect(tokens.status == 0, "\(tokens.standardError)")
        let grid = try #require(try JSONSerialization.jsonObject(with: Data(tokens.standardOutput.utf8)) as? [String: Any])
        #expect(grid["depth"] as? Int == depth)
        let codes = try #require(grid["codes"] as? [[[Int]]])
        #expect(codes.count == 4 && codes.allSatisfy { $0.count == 4 && $0.allSatisfy { $0.count == depth } })

        let run = try runCraft(["run", "--encoder", enc, "--backend", llm, "--image", scratch.path("image.png").path,
                                "--prompt", "what", "--max-tokens", "2", "--keep-ratio", "0.5"] + registry)
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardError.contains("visual tokens 16 -> 8"), "\(run.standardError)")

        let data = try TinyBundles.writeDataset(in: scratch.path("data"), count: 4)
        let eval = try runCraft(["eval", "--encoder", enc, "--backend", llm, "--data", data.path, "--keep-ratio", "0.5",
                                 "--max-tokens", "2", "--json"] + registry)
        #expect(eval.status == 0, "\(eval.standardError)")
        let stats = try runCraft(["stats", "--encoder", enc, "--data", data.path, "--output-directory", scratch.path("stats").path, "--json"] + registry)
        #expect(stats.status == 0, "\(stats.standardError)")
        let train = try runCraft(["train", "--encoder", enc, "--surrogate", llm, "--data", data.path, "--validation", data.path,
                                  "--batch-size", "2", "--epochs", "1", "--allow-worse", "--output-directory", scratch.path("adapted").path, "--json"] + registry)
        #expect(train.status == 0, "\(train.standardError)")
        let trained = try #require(try JSONSerialization.jsonObject(with: Data(train.standardOutput.utf8)) as? [String: Any])
        #expect(trained["codebook_hash_unchanged"] as? Bool == true, "\(train.standardOutput)")
    }

    /// One `[K, D]` codebook shared by every residual level: stored once, declared with its depth,
    /// and the same identity (hash) as the same values stacked `[depth, K, D]`.
    @Test("a shared codebook is stored once and has the hash of its stacked levels")
    func sharedCodebookIsStoredOnceAndHashedAsItsLevels() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let source = try sources(scratch)
        var stacked = SafeTensorsWriter()
        try stacked.add("codebook", floats: TinyBundles.codebook() + TinyBundles.codebook(), shape: [2, TinyBundles.entries, TinyBundles.dimension])
        try stacked.write(to: scratch.path("stacked.safetensors"))
        let stackedHash = try runCraft(["codebook", scratch.path("stacked.safetensors").path, "--json"])
        let sharedHash = try runCraft(["codebook", source.codebook.path, "--tensor", "codes", "--shared-depth", "2", "--json"])
        #expect(stackedHash.status == 0 && sharedHash.status == 0, "\(stackedHash.standardError) \(sharedHash.standardError)")
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(stackedHash.standardOutput.utf8)) as? [String: Any])
        let shared = try #require(try JSONSerialization.jsonObject(with: Data(sharedHash.standardOutput.utf8)) as? [String: Any])
        #expect(shared["hash"] as? String == expected["hash"] as? String && shared["depth"] as? Int == 2)

        let converted = try runCraft([
            "convert", "encoder", "--model", source.tower.path, "--codebook", source.codebook.path + ":codes", "--shared-depth", "2",
            "--name", "shared-vq", "--license", "MIT", "--output-directory", scratch.path("shared").path,
        ])
        #expect(converted.status == 0, "\(converted.standardError)")
        let manifest = try BundleManifest.load(from: scratch.path("shared/craft.json"))
        #expect(manifest.codebook.depth == 2 && manifest.codebook.hash == expected["hash"] as? String)
        let stored = try SafeTensorsFile(contentsOf: scratch.path("shared/codebook.safetensors"))
        #expect(try stored.info("codebook").shape == [TinyBundles.entries, TinyBundles.dimension], "stored once")
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        let tokens = try runCraft(["tokens", "--encoder", scratch.path("shared").path, "--image", scratch.path("image.png").path, "--json",
                                   "--registry", scratch.path("no-registry").path])
        #expect(tokens.status == 0, "\(tokens.standardError)")
        #expect((try JSONSerialization.jsonObject(with: Data(tokens.standardOutput.utf8)) as? [String: Any])?["depth"] as? Int == 2)
    }
}
