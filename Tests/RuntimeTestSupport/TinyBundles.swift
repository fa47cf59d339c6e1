// Builds tiny siglip-vq encoder and llama/gpt2 backend bundles from the CraftModels fixture checkpoints.
// Shared by CraftRuntimesTests and CraftCLITests (the `craft run` / `craft tokens` tests).
import CraftBundles
import CraftCore
import CraftImaging
import Foundation
import SafeTensors

/// A temporary directory removed by `remove()`.
public struct Scratch {
    public let url: URL
    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("craft-runtimes-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    public func remove() { try? FileManager.default.removeItem(at: url) }
    public func path(_ relative: String) -> URL { url.appendingPathComponent(relative) }
}

/// Tiny bundles over the fixture models of `Tests/CraftModelsTests/Fixtures/models`.
public enum TinyBundles {
    public static let models = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("CraftModelsTests/Fixtures/models")
    /// The SigLIP fixture is 32 wide: the codebook dimension.
    public static let dimension = 32
    public static let entries = 16
    public static let template = "<image> question : {prompt} answer :"

    /// Deterministic codebook values `[K][D]`, distinct entries of a scale similar to the tower's output.
    public static func codebook(seed: Float = 0) -> [Float] {
        (0..<(entries * dimension)).map { index in
            let k = Float(index / dimension), d = Float(index % dimension)
            return sin(k * 1.7 + d * 0.31 + seed) * (1 + 0.05 * k)
        }
    }

    public static func hash(_ values: [Float]) throws -> String {
        try CodebookHash.compute(values: values, entries: entries, dimension: dimension, depth: 1, metric: .l2)
    }

    /// A deterministic projector `[hidden, D]`.
    public static func projector(hidden: Int) -> [Float] {
        (0..<(hidden * dimension)).map { index in cos(Float(index) * 0.37) * 0.2 }
    }

    /// A word-level tokenizer of 128 entries (the fixture decoders' vocabulary): specials, a few words, `w<i>`.
    public static func tokenizerJSON() throws -> Data {
        var vocab: [String: Int] = ["[UNK]": 0, "<s>": 1, "</s>": 2, "question": 3, ":": 4, "answer": 5, "what": 6, "is": 7, "this": 8, "?": 9]
        for id in vocab.count..<128 { vocab["w\(id)"] = id }
        let json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": [
                ["id": 0, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true],
                ["id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true],
                ["id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true],
            ],
            "normalizer": NSNull(), "pre_tokenizer": ["type": "Whitespace"], "post_processor": NSNull(), "decoder": NSNull(),
            "model": ["type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"],
        ]
        return try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
    }

    public static let preprocessorJSON = """
        {"do_resize": true, "size": {"height": 32, "width": 32}, "resample": 3, "do_rescale": true,
         "rescale_factor": 0.00392156862745098, "do_normalize": true, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
        """

    public static func copy(_ model: String, into directory: URL) throws {
        for file in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: models.appendingPathComponent(model).appendingPathComponent(file),
                                             to: directory.appendingPathComponent(file))
        }
    }

    public static func writeManifest(_ json: [String: Any], to directory: URL) throws {
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
            .write(to: directory.appendingPathComponent("craft.json"))
    }

    /// An encoder bundle directory over `siglip_no_head`, quantized after layer `layer`.
    public static func encoderDirectory(at directory: URL, name: String = "tiny-vq", codebook: [Float] = codebook(), layer: Int = 1) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try copy("siglip_no_head", into: directory)
        try Data(preprocessorJSON.utf8).write(to: directory.appendingPathComponent("preprocessor_config.json"))
        var writer = SafeTensorsWriter()
        try writer.add("codebook", floats: codebook, shape: [entries, dimension])
        try writer.write(to: directory.appendingPathComponent("codebook.safetensors"))
        try writeManifest([
            "schema": "craft.bundle/v1", "kind": "encoder", "name": name, "version": "1.0.0", "summary": "tiny SigLIP VQ encoder",
            "domains": ["test"], "license": "MIT", "runtime": ["id": "siglip-vq", "version": "1.0.0"],
            "codebook": ["hash": try hash(codebook), "entries": entries, "dim": dimension, "depth": 1, "metric": "l2",
                         "tensor": ["file": "codebook.safetensors", "name": "codebook"]],
            "encoder": ["image_size": 32, "tokens_per_image": 16, "quantization_layer": layer],
            "files": [["path": "config.json"], ["path": "model.safetensors"], ["path": "preprocessor_config.json"], ["path": "codebook.safetensors"]],
        ], to: directory)
    }

    /// A backend bundle directory over a fixture decoder (`llama_tied` or `gpt2`), 32 wide.
    public static func backendDirectory(at directory: URL, name: String = "tiny-llm", model: String = "llama_tied", runtime: String = "llama",
                                 codebookHash: String, projectorFile: String = "projector.safetensors") throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try copy(model, into: directory)
        try tokenizerJSON().write(to: directory.appendingPathComponent("tokenizer.json"))
        var writer = SafeTensorsWriter()
        try writer.add("projector.weight", floats: projector(hidden: 32), shape: [32, dimension])
        try writer.add("projector.bias", floats: (0..<32).map { Float($0) * 0.01 }, shape: [32])
        try writer.write(to: directory.appendingPathComponent("projector.safetensors"))
        try writeManifest([
            "schema": "craft.bundle/v1", "kind": "backend", "name": name, "version": "1.0.0", "summary": "tiny decoder backend",
            "domains": ["test"], "license": "MIT", "runtime": ["id": runtime, "version": "1.0.0"],
            "codebook": ["hash": codebookHash, "entries": entries, "dim": dimension, "depth": 1, "metric": "l2"],
            "backend": ["context_length": 64, "tokenizer": "tokenizer.json", "prompt_template": template,
                        "projector": ["file": projectorFile, "name": "projector.weight"]],
            "files": [["path": "config.json"], ["path": "model.safetensors"], ["path": "tokenizer.json"], ["path": "projector.safetensors"]],
        ], to: directory)
    }

    /// A 40×40 RGB PNG with a gradient and a square (so it is resized, and patches differ).
    public static func writeImage(to url: URL) throws {
        var bytes: [UInt8] = []
        for y in 0..<40 {
            for x in 0..<40 {
                let inside = (10..<25).contains(x) && (5..<20).contains(y)
                bytes += [UInt8(x * 6), UInt8(y * 6), inside ? 230 : UInt8((x + y) * 3)]
            }
        }
        try Image(width: 40, height: 40, colorModel: .rgb, bytes: bytes).writePNG(to: url)
    }

    /// Packs both, unpacks both: the bundles as a user gets them.
    public static func packAndUnpack(_ directory: URL, in scratch: Scratch, as role: String) throws -> UnpackedBundle {
        let packed = try BundleArchive.pack(directory: directory, to: scratch.path("\(role).craft"))
        return try BundleArchive.unpack(packed.url, into: scratch.path("\(role)-unpacked"))
    }

    /// Packs a matching encoder and backend, a backend of another codebook, and writes an image at
    /// `imagePath` (relative to `scratch`); returns the paths. Used by the `craft run` / `craft eval` tests.
    public static func packedPair(
        in scratch: Scratch, imagePath: String = "image.png"
    ) throws -> (encoder: String, backend: String, other: String, image: String) {
        let values = codebook()
        try encoderDirectory(at: scratch.path("enc"), codebook: values)
        try backendDirectory(at: scratch.path("llm"), codebookHash: try hash(values))
        try backendDirectory(at: scratch.path("other"), name: "other-llm", codebookHash: try hash(codebook(seed: 2)))
        let encoder = try BundleArchive.pack(directory: scratch.path("enc"), to: scratch.path("tiny-vq-1.0.0.craft"))
        let backend = try BundleArchive.pack(directory: scratch.path("llm"), to: scratch.path("tiny-llm-1.0.0.craft"))
        let other = try BundleArchive.pack(directory: scratch.path("other"), to: scratch.path("other-llm-1.0.0.craft"))
        let image = scratch.path(imagePath)
        try FileManager.default.createDirectory(at: image.deletingLastPathComponent(), withIntermediateDirectories: true)
        try writeImage(to: image)
        return (encoder.url.path, backend.url.path, other.url.path, image.path)
    }
}

// MARK: - Tiny labelled datasets (craft train / craft stats tests)

extension TinyBundles {
    /// The answer of class `index % 2` in ``writeDataset(in:file:count:offset:)``: words of the tiny tokenizer.
    public static func datasetAnswer(_ index: Int) -> String { index % 2 == 0 ? "w20" : "w21" }

    /// A 40×40 RGB PNG of class `index % 2` (a bright square top-left, or a dark one bottom-right) on a
    /// background that varies with `index`, so images differ within a class.
    public static func writeDatasetImage(index: Int, to url: URL) throws {
        var bytes: [UInt8] = []
        let left = index % 2 == 0
        for y in 0..<40 {
            for x in 0..<40 {
                let inside = left ? (4..<20).contains(x) && (4..<20).contains(y) : (20..<36).contains(x) && (20..<36).contains(y)
                let base = UInt8((x * 3 + y * 2 + index * 17) % 120 + 40)
                bytes += inside ? (left ? [250, 240, 230] : [10, 20, 30]) : [base, UInt8((Int(base) + index * 29) % 256), UInt8(255 - Int(base))]
            }
        }
        try Image(width: 40, height: 40, colorModel: .rgb, bytes: bytes).writePNG(to: url)
    }

    /// Writes `count` images `images/<offset+i>.png` under `directory` and a JSONL file naming them
    /// (`{"image", "prompt": "what is this ?", "answer": w20|w21, "label"}`); returns the file.
    @discardableResult
    public static func writeDataset(in directory: URL, file: String = "train.jsonl", count: Int, offset: Int = 0) throws -> URL {
        let images = directory.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        var lines: [String] = []
        for index in offset..<(offset + count) {
            try writeDatasetImage(index: index, to: images.appendingPathComponent("\(index).png"))
            let object = ["image": "images/\(index).png", "prompt": "what is this ?", "answer": datasetAnswer(index), "label": datasetAnswer(index)]
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
        let url = directory.appendingPathComponent(file)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: url)
        return url
    }
}

// MARK: - An encoder bundle with an attention-pooling head and a text tower (L_con)

extension TinyBundles {
    /// A word-level tokenizer within the `siglip_text` fixture's 100-token vocabulary.
    public static func textTokenizerJSON() throws -> Data {
        let vocab: [String: Int] = ["[UNK]": 0, "<pad>": 1, "a": 2, "photo": 3, "of": 4, "w20": 5, "w21": 6]
        let json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": [],
            "normalizer": NSNull(), "pre_tokenizer": ["type": "Whitespace"], "post_processor": NSNull(), "decoder": NSNull(),
            "model": ["type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"],
        ]
        return try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
    }

    /// An encoder bundle directory over `siglip_head_prefixed` (tensor names with the `vision_model.`
    /// prefix, an attention-pooling head, quantized after the post-layernorm) with a SigLIP text tower
    /// in `text/`: the `siglip_text` fixture with its head widened to 32 (deterministic values) so
    /// text and pooled image features share a space.
    public static func encoderWithTextTowerDirectory(at directory: URL, name: String = "tiny-vq-text", codebook: [Float] = codebook()) throws {
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("text"), withIntermediateDirectories: true)
        try copy("siglip_head_prefixed", into: directory)
        try Data(preprocessorJSON.utf8).write(to: directory.appendingPathComponent("preprocessor_config.json"))
        var writer = SafeTensorsWriter()
        try writer.add("codebook", floats: codebook, shape: [entries, dimension])
        try writer.write(to: directory.appendingPathComponent("codebook.safetensors"))

        let textSource = models.appendingPathComponent("siglip_text")
        guard var config = try JSONSerialization.jsonObject(with: Data(contentsOf: textSource.appendingPathComponent("config.json"))) as? [String: Any] else {
            throw CocoaError(.fileReadCorruptFile)
        }
        config["projection_size"] = dimension
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: directory.appendingPathComponent("text/config.json"))
        let source = try SafeTensorsFile(contentsOf: textSource.appendingPathComponent("model.safetensors"))
        var text = SafeTensorsWriter()
        for tensor in source.names {
            switch tensor {
            case "text_model.head.weight":
                try text.add(tensor, floats: (0..<(dimension * 32)).map { sin(Float($0) * 0.13) * 0.2 }, shape: [dimension, 32])
            case "text_model.head.bias":
                try text.add(tensor, floats: (0..<dimension).map { Float($0) * 0.001 }, shape: [dimension])
            default:
                try text.add(tensor, floats: try source.floats(tensor), shape: try source.info(tensor).shape)
            }
        }
        try text.write(to: directory.appendingPathComponent("text/model.safetensors"))
        try textTokenizerJSON().write(to: directory.appendingPathComponent("text/tokenizer.json"))

        try writeManifest([
            "schema": "craft.bundle/v1", "kind": "encoder", "name": name, "version": "1.0.0", "summary": "tiny SigLIP VQ encoder with a text tower",
            "domains": ["test"], "license": "MIT", "runtime": ["id": "siglip-vq", "version": "1.0.0"],
            "codebook": ["hash": try hash(codebook), "entries": entries, "dim": dimension, "depth": 1, "metric": "l2",
                         "tensor": ["file": "codebook.safetensors", "name": "codebook"]],
            "encoder": ["image_size": 32, "tokens_per_image": 16],
            "config": ["logit_scale": 2.0, "logit_bias": -5.0],
            "files": [["path": "config.json"], ["path": "model.safetensors"], ["path": "preprocessor_config.json"], ["path": "codebook.safetensors"],
                      ["path": "text/config.json"], ["path": "text/model.safetensors"], ["path": "text/tokenizer.json"]],
        ], to: directory)
    }
}
