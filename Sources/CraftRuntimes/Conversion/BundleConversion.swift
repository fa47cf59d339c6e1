// `craft convert`: a Hugging Face model directory (plus a codebook, and for a backend a projector)
// becomes a bundle directory ready for `craft-registry pack`: the files copied, `craft.json` written
// with every field the runtime reads and every file's size and sha256, then opened and loaded through
// the runtime to prove it works before anything is reported.
import CraftBundles
import CraftCore
import CraftModels
import Foundation
import GGUF
import SafeTensors

/// What every conversion needs: the bundle's identity and where to write it.
public struct ConversionTarget: Sendable {
    /// The bundle name (`[a-z0-9][a-z0-9._-]*`).
    public var name: String
    /// Its version.
    public var version: SemanticVersion
    /// One line for listings.
    public var summary: String
    /// SPDX license of the weights.
    public var license: String
    /// Domains it serves (for `craft-registry search`).
    public var domains: [String]
    /// The directory to create; it must not exist yet.
    public var output: URL
    /// Told each long step as it starts (copying a large file, hashing, loading the result), for a
    /// progress line; the default says nothing.
    public var progress: @Sendable (String) -> Void

    public init(
        name: String, version: SemanticVersion, summary: String, license: String, domains: [String] = [], output: URL,
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.name = name
        self.version = version
        self.summary = summary
        self.license = license
        self.domains = domains
        self.output = output
        self.progress = progress
    }
}

/// A codebook tensor in a safetensors file.
public struct CodebookSource: Sendable {
    public var file: URL
    public var tensor: String
    public var metric: CodebookMetric
    /// With N > 1, a `[K, D]` tensor is one codebook shared by N residual levels: stored once in the
    /// bundle, declared with depth N, hashed as its logical `[N][K][D]` values.
    public var sharedDepth: Int
    /// Drop the last row of every level: RQ-VAE's (VILA-U's) padding embedding, never a code.
    public var dropsPaddingRow: Bool
    public init(file: URL, tensor: String = "codebook", metric: CodebookMetric = .l2, sharedDepth: Int = 1, dropsPaddingRow: Bool = false) {
        self.file = file
        self.tensor = tensor
        self.metric = metric
        self.sharedDepth = sharedDepth
        self.dropsPaddingRow = dropsPaddingRow
    }
}

/// The text tower an encoder bundle carries for CRAFT's contrastive loss `L_con`: taken from a full
/// `SiglipModel` directory (its `text_model.*` tensors, `logit_scale` and `logit_bias`).
public struct TextTowerSource: Sendable {
    /// The text tower's `tokenizer.json`; `nil` reads `tokenizer.json` in the model directory.
    public var tokenizer: URL?
    public init(tokenizer: URL? = nil) {
        self.tokenizer = tokenizer
    }
}

/// Turns Hugging Face directories into bundle directories (`docs/runtimes.md`).
public enum BundleConversion {
    /// The projector forms a backend can declare.
    public enum ProjectorType: String, Sendable, CaseIterable {
        case linear
        case mlp2xGELU = "mlp2x_gelu"
    }

    /// An encoder bundle: a SigLIP vision tower (or full `SiglipModel`) directory quantized into a
    /// codebook at `quantizationLayer` (`nil`: after the post-layernorm), runtime `siglip-vq`.
    ///
    /// With `textTower`, the model must be a full `SiglipModel`: its text tower goes into `text/`
    /// (`text_model.*` tensors in their stored dtype, the config, the tokenizer) and its learned
    /// `logit_scale` and `logit_bias` into the manifest's `config`, for `L_con`.
    ///
    /// - Returns: the loaded bundle (verified, loaded by the runtime once).
    /// - Throws: ``BundleError`` naming what is missing or inconsistent (codebook width against the
    ///   tower's hidden size, the layer range, a text tower or tokenizer that is not there);
    ///   nothing is left at `target.output` on failure.
    public static func encoder(
        model: URL, codebook: CodebookSource, quantizationLayer: Int?, textTower: TextTowerSource? = nil, target: ConversionTarget
    ) throws -> UnpackedBundle {
        let architecture = try architecture(of: model)
        guard architecture.role == .siglipVision else {
            throw BundleError(.invalidManifest, "\(model.path) holds a \(architecture.name) model; an encoder bundle is made from a SigLIP vision tower (SiglipVisionModel or SiglipModel)", entry: "config.json")
        }
        let tower: SiglipVisionConfiguration
        do {
            tower = try SiglipVisionModel(directory: model).configuration
        } catch {
            throw BundleError(.runtimeFailed, "cannot load the SigLIP vision tower in \(model.path): \(error.message)", cause: error)
        }
        let loaded = try loadCodebook(codebook)
        guard loaded.dimension == tower.hiddenSize else {
            throw BundleError(.invalidManifest, "the codebook \(codebook.file.lastPathComponent) is \(loaded.dimension) wide but the tower's hidden size is \(tower.hiddenSize); quantize with a codebook of dimension \(tower.hiddenSize)", entry: "codebook.dim")
        }
        if let layer = quantizationLayer, !(1...tower.hiddenLayers).contains(layer) {
            throw BundleError(.invalidManifest, "--quantization-layer \(layer) is outside the tower's 1...\(tower.hiddenLayers) layers", entry: "encoder.quantization_layer")
        }
        return try write(target) { directory in
            var files = try copyWeights(from: model, to: directory, progress: target.progress)
            if FileManager.default.fileExists(atPath: model.appendingPathComponent("preprocessor_config.json").path) {
                try copy("preprocessor_config.json", from: model, to: directory)
                files.append("preprocessor_config.json")
            }
            var writer = SafeTensorsWriter(metadata: ["made_by": "craft convert"])
            if codebook.sharedDepth > 1 {  // stored once; the manifest's depth says how many levels share it
                try writer.add("codebook", floats: Array(loaded.values.prefix(loaded.entries * loaded.dimension)), shape: [loaded.entries, loaded.dimension])
            } else {
                let shape = loaded.depth == 1 ? [loaded.entries, loaded.dimension] : [loaded.depth, loaded.entries, loaded.dimension]
                try writer.add("codebook", floats: loaded.values, shape: shape)
            }
            try writer.write(to: directory.appendingPathComponent("codebook.safetensors"))
            files.append("codebook.safetensors")
            var config: JSONValue?
            if let textTower {
                let (textFiles, scale, bias) = try writeTextTower(textTower, from: model, into: directory)
                files += textFiles
                config = .object(["logit_scale": .number(scale), "logit_bias": .number(bias)])
            }
            let side = tower.imageSize / tower.patchSize
            return BundleManifest(
                kind: .encoder, name: target.name, version: target.version, summary: target.summary, domains: target.domains,
                license: target.license, runtime: RuntimeReference(id: ModelRuntimes.siglipVQ, version: try SemanticVersion(parsing: "1.0.0")),
                codebook: CodebookDescriptor(
                    hash: loaded.hash, entries: loaded.entries, dimension: loaded.dimension, depth: loaded.depth, metric: loaded.metric,
                    tensor: TensorReference(file: "codebook.safetensors", name: "codebook")),
                files: files.map { BundleFileEntry(path: $0, size: 0, sha256: String(repeating: "0", count: 64)) },
                config: config,
                encoder: EncoderSpecifics(imageSize: tower.imageSize, tokensPerImage: side * side, quantizationLayer: quantizationLayer),
                provenance: ["converted_from": .string(model.lastPathComponent), "codebook_from": .string(codebook.file.lastPathComponent)])
        } check: { bundle in
            _ = try RuntimeRegistry.craftDefault.loadEncoder(bundle)
        }
    }

    /// A backend bundle: a decoder directory of the model-type table (Llama, Qwen2, GPT-2) with its
    /// `tokenizer.json`, a projector from the codebook's space (`projectorTensor`: its weight, or for
    /// `mlp2x_gelu` the first layer's `NAME.0.weight`; `nil` finds the only candidate), reading the
    /// codebook whose identity `codebook` gives (the vectors are not copied: backends declare them).
    public static func backend(
        model: URL, projector: URL, projectorTensor: String?, projectorType: ProjectorType, codebook: CodebookSource,
        contextLength: Int?, promptTemplate: String?, tokenizer: URL? = nil, target: ConversionTarget
    ) throws -> UnpackedBundle {
        // A llama.cpp GGUF file (docs/gguf.md) or a Hugging Face directory.
        let gguf = model.pathExtension.lowercased() == "gguf"
        let runtimeName: String
        let maximum: Int
        var ggufFile: GGUFFile?
        if gguf {
            let configuration: LlamaConfiguration
            do {
                let file = try GGUFFile(contentsOf: model)
                ggufFile = file
                configuration = try LlamaConfiguration(gguf: file)
            } catch let error as GGUFError {
                throw BundleError(error.code == .notFound ? .notFound : .invalidManifest, error.message, entry: DecoderRuntime.ggufFile, cause: error)
            } catch let error as ModelError {
                throw BundleError(.invalidManifest, error.message, entry: DecoderRuntime.ggufFile, cause: error)
            }
            (runtimeName, maximum) = (configuration.modelType, configuration.maxPositionEmbeddings)
        } else {
            let architecture = try architecture(of: model)
            guard architecture.role == .decoder else {
                throw BundleError(.invalidManifest, "\(model.path) holds a \(architecture.name) model; a backend bundle is made from a decoder (\(ModelArchitecture.decoders.map(\.name).joined(separator: ", ")))", entry: "config.json")
            }
            (runtimeName, maximum) = (architecture.name, try decoderPositions(model, architecture: architecture))
        }
        // A GGUF file without --tokenizer brings its own (built from its metadata, checked here).
        let tokenizerFile = tokenizer ?? (gguf ? nil : model.appendingPathComponent("tokenizer.json"))
        if let tokenizerFile {
            guard FileManager.default.fileExists(atPath: tokenizerFile.path) else {
                throw BundleError(.missingEntry, "\(tokenizerFile.path) does not exist; pass --tokenizer FILE, or put the model's Hugging Face tokenizer.json in \(model.path)", entry: "tokenizer.json")
            }
        } else if let ggufFile {
            // Refused before anything is written, with the key at fault (the file is parsed once).
            do {
                _ = try Tokenizer(gguf: ggufFile)
            } catch {
                throw BundleError(.invalidManifest, BundleFiles.describe(error), entry: DecoderRuntime.ggufFile, cause: error)
            }
        }
        let loaded = try loadCodebook(codebook)
        let projectorFile: SafeTensorsFile
        do {
            projectorFile = try SafeTensorsFile(contentsOf: projector)
        } catch {
            throw BundleError(.notFound, "cannot read the projector file \(projector.path): \((error as? LocalizedError)?.errorDescription ?? "\(error)")", cause: error)
        }
        let suffix = projectorType == .linear ? "weight" : ".0.weight"
        let name: String
        if let projectorTensor {
            name = projectorTensor
        } else {
            let candidates = projectorFile.names.filter { $0.hasSuffix(suffix) }
            guard candidates.count == 1, let only = candidates.first else {
                throw BundleError(.invalidManifest, "\(projector.lastPathComponent) holds \(candidates.count) tensors ending in \"\(suffix)\" (\(candidates.prefix(6).joined(separator: ", "))); name the projector with FILE:TENSOR", entry: "backend.projector")
            }
            name = only
        }
        return try write(target) { directory in
            var files: [String]
            if gguf {
                try FileManager.default.copyItem(at: model, to: directory.appendingPathComponent(DecoderRuntime.ggufFile))
                files = [DecoderRuntime.ggufFile]
            } else {
                files = try copyWeights(from: model, to: directory, progress: target.progress)
            }
            if let tokenizerFile {
                try FileManager.default.copyItem(at: tokenizerFile, to: directory.appendingPathComponent("tokenizer.json"))
                files.append("tokenizer.json")
            }
            try FileManager.default.copyItem(at: projector, to: directory.appendingPathComponent("projector.safetensors"))
            files.append("projector.safetensors")
            return BundleManifest(
                kind: .backend, name: target.name, version: target.version, summary: target.summary, domains: target.domains,
                license: target.license, runtime: RuntimeReference(id: runtimeName, version: try SemanticVersion(parsing: "1.0.0")),
                codebook: CodebookDescriptor(hash: loaded.hash, entries: loaded.entries, dimension: loaded.dimension, depth: loaded.depth, metric: loaded.metric),
                files: files.map { BundleFileEntry(path: $0, size: 0, sha256: String(repeating: "0", count: 64)) },
                backend: BackendSpecifics(
                    contextLength: contextLength ?? maximum, tokenizer: tokenizerFile == nil ? DecoderRuntime.ggufFile : "tokenizer.json", promptTemplate: promptTemplate,
                    projector: TensorReference(file: "projector.safetensors", name: name),
                    projectorType: projectorType == .linear ? nil : projectorType.rawValue),
                provenance: ["converted_from": .string(model.lastPathComponent), "codebook_from": .string(codebook.file.lastPathComponent)])
        } check: { bundle in
            _ = try RuntimeRegistry.craftDefault.loadBackend(bundle)
        }
    }

    // MARK: - Pieces

    static func architecture(of model: URL) throws -> ModelArchitecture {
        do {
            return try ModelArchitecture.detect(directory: model)
        } catch {
            throw BundleError(error.code == .notFound ? .notFound : .invalidManifest, "\(model.path): \(error.message)", entry: "config.json", cause: error)
        }
    }

    /// Writes the text tower of the full `SiglipModel` at `model` into `directory/text/`; returns the
    /// files written and the checkpoint's logit scale and bias.
    static func writeTextTower(
        _ source: TextTowerSource, from model: URL, into directory: URL
    ) throws -> (files: [String], scale: Double, bias: Double) {
        let configuration = model.appendingPathComponent("config.json")
        let hasTextConfig: Bool
        do {
            let object = try JSONSerialization.jsonObject(with: ModelDirectory.configurationData(configuration)) as? [String: Any]
            hasTextConfig = object?["text_config"] is [String: Any]
        } catch {
            throw BundleError(.invalidManifest, "cannot read \(configuration.path): \((error as? LocalizedError)?.errorDescription ?? "\(error)")", entry: "config.json", cause: error)
        }
        guard hasTextConfig else {
            throw BundleError(.invalidManifest, "\(model.path) is a vision tower alone (its config.json has no text_config); --text-tower needs a full SiglipModel directory", entry: "text/config.json")
        }
        let tokenizer = source.tokenizer ?? model.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokenizer.path) else {
            throw BundleError(.missingEntry, "the text tower needs a tokenizer.json and \(tokenizer.path) does not exist; pass --text-tokenizer FILE", entry: "text/tokenizer.json")
        }
        let text = directory.appendingPathComponent("text")
        do {
            try FileManager.default.createDirectory(at: text, withIntermediateDirectories: true)
            let weights = try openSafeTensors(directory: model)
            var writer = SafeTensorsWriter(metadata: ["made_by": "craft convert", "from": "text_model.* of \(model.lastPathComponent)"])
            for name in weights.names where name.hasPrefix("text_model.") {
                let info = try weights.info(name)
                try writer.add(name, bytes: try weights.bytes(name), dtype: info.dtype, shape: info.shape)
            }
            guard weights.contains("logit_scale"), weights.contains("logit_bias") else {
                throw BundleError(.missingEntry, "\(model.path) has no logit_scale and logit_bias tensors; a SiglipModel checkpoint holds both", entry: "config.logit_scale")
            }
            let scale = try weights.floats("logit_scale"), bias = try weights.floats("logit_bias")
            guard scale.count == 1, bias.count == 1, scale[0].isFinite, bias[0].isFinite else {
                throw BundleError(.invalidManifest, "logit_scale and logit_bias in \(model.path) must be one finite value each", entry: "config.logit_scale")
            }
            try writer.write(to: text.appendingPathComponent("model.safetensors"))
            try FileManager.default.copyItem(at: configuration, to: text.appendingPathComponent("config.json"))
            try FileManager.default.copyItem(at: tokenizer, to: text.appendingPathComponent("tokenizer.json"))
            // Proven to load before the bundle is written.
            _ = try SiglipTextModel(directory: text)
            return (["text/config.json", "text/model.safetensors", "text/tokenizer.json"], Double(scale[0]), Double(bias[0]))
        } catch let error as BundleError {
            throw error
        } catch {
            throw BundleError(.invalidManifest, "cannot take the text tower from \(model.path): \((error as? LocalizedError)?.errorDescription ?? "\(error)")", entry: "text/model.safetensors", cause: error)
        }
    }

    static func loadCodebook(_ source: CodebookSource) throws -> Codebook {
        do {
            return try Codebook(
                contentsOf: source.file, tensorName: source.tensor, metric: source.metric, sharedDepth: source.sharedDepth,
                droppingPaddingRow: source.dropsPaddingRow)
        } catch {
            let reason = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            throw BundleError(.invalidManifest, "cannot read the codebook \"\(source.tensor)\" from \(source.file.path): \(reason)", entry: "codebook", cause: error)
        }
    }

    /// The decoder's most positions, read from `config.json` alone (`max_position_embeddings`, GPT-2's
    /// `n_positions`), so the weights are not loaded twice: the runtime's check loads them once.
    static func decoderPositions(_ model: URL, architecture: ModelArchitecture) throws -> Int {
        let url = model.appendingPathComponent("config.json")
        let object: [String: Any]?
        do {
            object = try JSONSerialization.jsonObject(with: ModelDirectory.configurationData(url)) as? [String: Any]
        } catch {
            throw BundleError(.invalidManifest, "cannot read \(url.path): \((error as? LocalizedError)?.errorDescription ?? "\(error)")", entry: "config.json", cause: error)
        }
        let config = object?["text_config"] as? [String: Any] ?? object ?? [:]
        return (config["max_position_embeddings"] as? Int) ?? (config["n_positions"] as? Int) ?? 2048
    }

    /// Copies `config.json` and the weights (single file, or the index and every shard it names).
    static func copyWeights(from model: URL, to directory: URL, progress: (String) -> Void) throws -> [String] {
        try copy("config.json", from: model, to: directory)
        let single = "model.safetensors", index = "model.safetensors.index.json"
        if FileManager.default.fileExists(atPath: model.appendingPathComponent(single).path) {
            try copy(single, from: model, to: directory, progress: progress)
            return ["config.json", single]
        }
        guard FileManager.default.fileExists(atPath: model.appendingPathComponent(index).path) else {
            throw BundleError(.missingEntry, "\(model.path) holds neither model.safetensors nor model.safetensors.index.json; save the model with safe_serialization", entry: single)
        }
        let shards = Set(try ShardedSafeTensors(indexAt: model.appendingPathComponent(index)).weightMap.values).sorted()
        for shard in shards {
            guard BundlePath.problem(with: shard) == nil, !shard.contains("/") else {
                throw BundleError(.invalidManifest, "the index of \(model.path) names the shard \"\(shard)\", which is not a file beside it", entry: index)
            }
            try copy(shard, from: model, to: directory, progress: progress)
        }
        try copy(index, from: model, to: directory)
        return ["config.json", index] + shards
    }

    /// Files at least this large are announced before they are copied.
    static let announcedCopyBytes = 64 << 20

    static func copy(_ name: String, from source: URL, to directory: URL, progress: (String) -> Void = { _ in }) throws {
        let size = (try? FileManager.default.attributesOfItem(atPath: source.appendingPathComponent(name).path)[.size] as? Int) ?? 0
        if size >= announcedCopyBytes { progress("copying \(name) (\(size >> 20) MiB)") }
        do {
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: directory.appendingPathComponent(name))
        } catch {
            throw BundleError(.io, "cannot copy \(name) from \(source.path) into \(directory.path): \(error.localizedDescription)", entry: name, cause: error)
        }
    }

    /// Writes the bundle into a staging directory beside `target.output`, fills in every file's size
    /// and digest (as `pack` does), checks it loads, then renames it into place: nothing half-written
    /// is ever at `target.output`.
    static func write(
        _ target: ConversionTarget, _ fill: (URL) throws -> BundleManifest, check: (UnpackedBundle) throws -> Void
    ) throws -> UnpackedBundle {
        let fileManager = FileManager.default
        guard !fileManager.fileExists(atPath: target.output.path) else {
            throw BundleError(.io, "\(target.output.path) already exists; choose a new --output-directory", entry: "")
        }
        let parent = target.output.deletingLastPathComponent()
        try fileManager.createDirectory(at: parent, withIntermediateDirectories: true)
        let staging = parent.appendingPathComponent(ScratchFiles.name(".craft-convert"))
        let tracked = ScratchFiles.track(staging)
        defer { ScratchFiles.remove(tracked) }
        try fileManager.createDirectory(at: staging, withIntermediateDirectories: true)
        var manifest = try fill(staging)
        target.progress("hashing \(manifest.files.count) files")
        for index in manifest.files.indices {
            let (hex, size) = try FileDigest.sha256(of: staging.appendingPathComponent(manifest.files[index].path))
            manifest.files[index].size = size
            manifest.files[index].sha256 = hex
        }
        manifest.files.sort { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
        try manifest.validate()
        try manifest.canonicalJSON().write(to: staging.appendingPathComponent(BundleManifest.fileName))
        let bundle = try BundleArchive.open(directory: staging, verifyFiles: true)
        if manifest.codebook.tensor != nil { try CodebookVerification.verify(manifest, in: staging) }
        target.progress("loading the bundle through its runtime (\(manifest.runtime.id)) to prove it works")
        try check(bundle)
        try fileManager.moveItem(at: staging, to: target.output)
        return try BundleArchive.open(directory: target.output, verifyFiles: false)
    }
}
