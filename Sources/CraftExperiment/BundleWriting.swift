// Writing the miniature's models as Craft bundles (docs/bundle-format.md, docs/runtimes.md):
// siglip-vq encoders with their codebook, text tower and code frequencies; llama and gpt2 backends
// with their projector and the shared tokenizer. Then packing and publishing into a registry.
import CraftBundles
import CraftCore
import CraftFiles
import CraftModels
import CraftRegistry
import Foundation
import SafeTensors
import TensorCore

/// A trained SigLIP-VQ encoder ready to be written as a bundle.
public struct EncoderArtifacts: Sendable {
    /// The vision tower.
    public var tower: SiglipVisionModel
    /// The frozen codebook `[K, D]`.
    public var codebook: Codebook
    /// The frozen text tower for `L_con`.
    public var textTower: SiglipTextModel
    /// Code frequencies over a domain set, for token pruning.
    public var frequencies: CodeFrequencies?
    /// The encoder layer whose output is quantized (`encoder.quantization_layer`); `nil` after the
    /// post-layernorm.
    public var quantizationLayer: Int?
    /// The logit scale (`log t`) and bias the towers learned, for `L_con`.
    public var logitScale: Float = Foundation.log(10)
    public var logitBias: Float = -10
}

/// A trained decoder backend ready to be written as a bundle.
public struct BackendArtifacts: Sendable {
    /// The decoder (Llama or GPT-2).
    public var model: any CausalLanguageModel
    /// The projector weight `[hidden, D]`.
    public var projectorWeight: Tensor
    /// The projector bias `[hidden]`.
    public var projectorBias: Tensor
}

/// Writes, packs and publishes the miniature's bundles.
public enum BundleWriting {
    /// The prompt template of both backends: the visual tokens, then the question.
    public static let promptTemplate = "<image>{prompt}"
    /// The bundles' licence: the models are trained on CC BY 4.0 data (docs/experiment.md).
    public static let license = "CC-BY-4.0"

    static func writeJSON(_ object: Any, to url: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: url)
    }

    /// The manifest's codebook section for `codebook`.
    static func codebookSection(_ codebook: Codebook, tensor: Bool) -> [String: Any] {
        var section: [String: Any] = [
            "hash": codebook.hash, "entries": codebook.entries, "dim": codebook.dimension, "depth": codebook.depth,
            "metric": codebook.metric == .cosine ? "cosine" : "l2",
        ]
        if tensor { section["tensor"] = ["file": "codebook.safetensors", "name": "codebook"] }
        return section
    }

    /// Writes a siglip-vq encoder bundle directory (replacing it).
    ///
    /// - Parameters:
    ///   - config: extra runtime `config` keys (for example `bypass_quantizer`).
    ///   - provenance: the manifest's `provenance` object.
    public static func writeEncoder(
        _ artifacts: EncoderArtifacts, to directory: URL, name: String, version: String, summary: String, domains: [String],
        tokenizer: URL, packedInto packed: URL, config: [String: Any] = [:], provenance: [String: Any]? = nil
    ) throws -> PackedBundle {
        let final = directory
        let directory = staging(final)
        try step("writing the encoder bundle \(name)@\(version) into \(directory.path)") {
            try? FileManager.default.removeItem(at: directory)
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("text"), withIntermediateDirectories: true)
            try ModelWriting.write(artifacts.tower, to: directory)
            try ModelWriting.write(artifacts.textTower, to: directory.appendingPathComponent("text"))
            try FileManager.default.copyItem(at: tokenizer, to: directory.appendingPathComponent("text/tokenizer.json"))
            var writer = SafeTensorsWriter()
            let book = artifacts.codebook
            try writer.add("codebook", floats: book.values,
                           shape: book.depth == 1 ? [book.entries, book.dimension] : [book.depth, book.entries, book.dimension])
            try writer.write(to: directory.appendingPathComponent("codebook.safetensors"))
            var files = ["config.json", "model.safetensors", "codebook.safetensors", "text/config.json", "text/model.safetensors", "text/tokenizer.json"]
            if let frequencies = artifacts.frequencies {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                try encoder.encode(frequencies).write(to: directory.appendingPathComponent("code_frequencies.json"))
                files.append("code_frequencies.json")
            }
            let configuration = artifacts.tower.configuration
            var runtimeConfig = config
            runtimeConfig["logit_scale"] = Double(artifacts.logitScale)
            runtimeConfig["logit_bias"] = Double(artifacts.logitBias)
            var specifics: [String: Any] = ["image_size": configuration.imageSize, "tokens_per_image": configuration.patchCount,
                                            "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]]
            if let layer = artifacts.quantizationLayer { specifics["quantization_layer"] = layer }
            var manifest: [String: Any] = [
                "schema": "craft.bundle/v1", "kind": "encoder", "name": name, "version": version, "summary": summary,
                "domains": domains, "license": license, "runtime": ["id": "siglip-vq", "version": "1.0.0"],
                "codebook": codebookSection(artifacts.codebook, tensor: true),
                "encoder": specifics,
                "config": runtimeConfig,
                "files": files.map { ["path": $0] },
                "requires": ["craft": ">=0.1.0"],
            ]
            if let provenance { manifest["provenance"] = provenance }
            try writeJSON(manifest, to: directory.appendingPathComponent("craft.json"))
        }
        return try finish(directory, into: final, packedInto: packed)
    }

    /// Writes a llama or gpt2 backend bundle directory (replacing it).
    public static func writeBackend(
        _ artifacts: BackendArtifacts, to directory: URL, name: String, version: String, summary: String, domains: [String],
        codebook: Codebook, tokenizer: URL, contextLength: Int, packedInto packed: URL, provenance: [String: Any]? = nil
    ) throws -> PackedBundle {
        let final = directory
        let directory = staging(final)
        try step("writing the backend bundle \(name)@\(version) into \(directory.path)") {
            try? FileManager.default.removeItem(at: directory)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let runtime: String
            if let llama = artifacts.model as? LlamaModel {
                try ModelWriting.write(llama, to: directory)
                runtime = "llama"
            } else if let gpt2 = artifacts.model as? GPT2Model {
                try ModelWriting.write(gpt2, to: directory)
                runtime = "gpt2"
            } else {
                throw ExperimentError("the backend \(name) is neither a Llama nor a GPT-2 model; only those two have bundle runtimes")
            }
            try FileManager.default.copyItem(at: tokenizer, to: directory.appendingPathComponent("tokenizer.json"))
            var writer = SafeTensorsWriter()
            try writer.add("projector.weight", floats: artifacts.projectorWeight.scalars, shape: artifacts.projectorWeight.shape)
            try writer.add("projector.bias", floats: artifacts.projectorBias.scalars, shape: artifacts.projectorBias.shape)
            try writer.write(to: directory.appendingPathComponent("projector.safetensors"))
            var manifest: [String: Any] = [
                "schema": "craft.bundle/v1", "kind": "backend", "name": name, "version": version, "summary": summary,
                "domains": domains, "license": license, "runtime": ["id": runtime, "version": "1.0.0"],
                "codebook": codebookSection(codebook, tensor: false),
                "backend": ["context_length": contextLength, "tokenizer": "tokenizer.json", "prompt_template": promptTemplate,
                            "projector": ["file": "projector.safetensors", "name": "projector.weight"]],
                "files": ["config.json", "model.safetensors", "tokenizer.json", "projector.safetensors"].map { ["path": $0] },
                "requires": ["craft": ">=0.1.0"],
            ]
            if let provenance { manifest["provenance"] = provenance }
            try writeJSON(manifest, to: directory.appendingPathComponent("craft.json"))
        }
        return try finish(directory, into: final, packedInto: packed)
    }

    /// Where a bundle is written before packing.
    static func staging(_ final: URL) -> URL {
        final.deletingLastPathComponent().appendingPathComponent(".staging-" + final.lastPathComponent)
    }

    /// Packs the written directory, then unpacks the packed bundle into `final` (so the bundle used
    /// afterwards is exactly what a user gets, manifest with sizes and digests included).
    static func finish(_ staging: URL, into final: URL, packedInto packed: URL) throws -> PackedBundle {
        let bundle = try pack(staging, into: packed)
        try step("unpacking \(bundle.url.path) into \(final.path)") {
            try? FileManager.default.removeItem(at: final)
            _ = try BundleArchive.unpack(bundle.url, into: final)
            try? FileManager.default.removeItem(at: staging)
        }
        return bundle
    }

    /// Packs a bundle directory into `NAME-VERSION.craft` inside `output`.
    public static func pack(_ directory: URL, into output: URL) throws -> PackedBundle {
        try step("packing \(directory.path)") {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            let object = try JSONSerialization.jsonObject(with: BoundedFile.read(directory.appendingPathComponent("craft.json"), limit: Int(BundleLimits.default.maxManifestSize))) as? [String: Any]
            guard let name = object?["name"] as? String, let version = object?["version"] as? String else {
                throw ExperimentError("\(directory.path)/craft.json has no name or version")
            }
            return try BundleArchive.pack(directory: directory, to: output.appendingPathComponent("\(name)-\(version).craft"))
        }
    }

    /// Publishes a packed bundle into a registry directory, replacing an earlier publication of the
    /// same name and version (the experiment rebuilds its bundles; a real registry never would).
    public static func publish(_ packed: PackedBundle, into registry: URL) throws {
        try step("publishing \(packed.url.lastPathComponent) into \(registry.path)") {
            let store = Registry(root: registry)
            let name = packed.manifest.name, version = packed.manifest.version.description
            if (try? store.resolve(BundleReference(parsing: "\(name)@\(version)"), includePrerelease: true)) != nil {
                _ = try store.remove(name: name, version: version)
            }
            try store.publish(packed.url)
        }
    }
}
