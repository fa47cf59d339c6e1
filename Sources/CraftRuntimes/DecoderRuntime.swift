// The `llama` and `gpt2` runtimes: a Hugging Face decoder, its tokenizer and a frozen projector from
// codebook space to the decoder's hidden size, as a CraftModels DecoderBackend. Layout: docs/runtimes.md.
import CraftBundles
import CraftCore
import CraftModels
import Foundation
import GGUF
import TensorCore

/// Loads `llama` and `gpt2` backend bundles.
///
/// Files: `config.json` and `model.safetensors` (the decoder), or `model.gguf` (a llama.cpp GGUF file
/// holding a Llama or Qwen2 decoder: Q8_0 kept as blocks, other types dequantized to float32; docs/gguf.md), the tokenizer named by
/// `backend.tokenizer` (default `tokenizer.json`; `model.gguf` builds the one the GGUF file's
/// metadata describes), and the projector named by `backend.projector`
/// (`{"file", "name"}`, a `[hidden_size, codebook dim]` weight; a tensor of the same name ending in
/// `bias` instead of `weight`, when present, is its `[hidden_size]` bias). `config.prefix_tokens` and
/// `config.eos_token_ids` override the ids put before every prompt (default: Llama's `bos_token_id`
/// from config.json, none for GPT-2) and the ids that end generation (default: `eos_token_id`).
public enum DecoderRuntime {
    /// The decoder file of a backend bundle that holds a llama.cpp GGUF file (a Llama or Qwen2
    /// decoder) instead of `config.json` and `model.safetensors`.
    public static let ggufFile = "model.gguf"

    /// Builds the live backend from an unpacked backend bundle.
    ///
    /// - Throws: ``BundleError`` naming the bundle and the file when a file is missing, the projector
    ///   has the wrong shape, or the context length exceeds what the decoder can hold.
    /// The bias next to a `….weight` tensor (`….bias`), checked to be `[size]`; `nil` when absent.
    static func optionalBias(of weightName: String, file: String, size: Int, in bundle: UnpackedBundle, purpose: String) throws -> Tensor? {
        guard weightName.hasSuffix("weight") else { return nil }
        let biasName = String(weightName.dropLast("weight".count)) + "bias"
        guard BundleFiles.contains(biasName, file: file, in: bundle) else { return nil }
        let loaded = try BundleFiles.tensor(biasName, file: file, in: bundle, purpose: purpose)
        guard loaded.shape == [size] else {
            throw BundleError(.invalidManifest, "\(purpose) \"\(biasName)\" in \(file) of \(bundle.manifest.reference) has shape \(loaded.shape) but must be [\(size)]", entry: file)
        }
        return loaded
    }

    public static func load(_ bundle: UnpackedBundle, architecture: ModelArchitecture) throws -> DecoderBackend {
        let manifest = bundle.manifest
        guard manifest.kind == .backend else {
            throw BundleError(.runtimeFailed, "\(manifest.reference) is an encoder bundle; the \(architecture.name) runtime loads backend bundles")
        }
        guard let specifics = manifest.backend else {
            throw BundleError(.invalidManifest, "\(manifest.reference) has no backend section (context_length, tokenizer, prompt_template, projector); add one to craft.json", entry: "backend")
        }
        let model: any CausalLanguageModel
        var config: [String: Any] = [:]
        var gguf: GGUFFile?
        if manifest.file(at: ggufFile) != nil {
            // A llama.cpp GGUF file instead of config.json + model.safetensors (docs/gguf.md).
            let url = try BundleFiles.require(ggufFile, in: bundle, purpose: "the decoder")
            let file: GGUFFile
            do {
                file = try GGUFFile(contentsOf: url)
            } catch {
                throw BundleError(.runtimeFailed, "cannot load the decoder from \(ggufFile) of \(manifest.reference): \(error.message)", entry: ggufFile, cause: error)
            }
            gguf = file
            let llama: LlamaModel
            do {
                llama = try LlamaModel(gguf: file)
            } catch {
                throw BundleError(.runtimeFailed, "cannot load the decoder from \(ggufFile) of \(manifest.reference): \(error.message)", entry: ggufFile, cause: error)
            }
            guard llama.configuration.modelType == architecture.name else {
                throw BundleError(.invalidManifest, "\(manifest.reference) uses runtime \(manifest.runtime.id) but its \(ggufFile) holds a \(llama.configuration.modelType) model; set runtime.id to \(llama.configuration.modelType)", entry: ggufFile)
            }
            model = llama
            config["bos_token_id"] = llama.configuration.bosTokenID
            config["eos_token_id"] = llama.configuration.eosTokenIDs
        } else {
            config = try BundleFiles.jsonObject("config.json", in: bundle, purpose: "the decoder config")
            _ = try BundleFiles.require("model.safetensors", in: bundle, purpose: "the decoder weights")
            let detected: ModelArchitecture
            do {
                detected = try ModelArchitecture.detect(configuration: config, source: "config.json of \(manifest.reference)")
            } catch {
                throw BundleError(.invalidManifest, "config.json of \(manifest.reference) names no supported decoder: \(error.message)", entry: "config.json", cause: error)
            }
            guard detected == architecture, let loadDecoder = architecture.loadDecoder else {
                throw BundleError(.invalidManifest, "\(manifest.reference) uses runtime \(manifest.runtime.id) but its config.json describes a \(detected.name) model; set runtime.id to \(detected.name)", entry: "config.json")
            }
            do {
                model = try loadDecoder(bundle.directory)
            } catch {
                throw BundleError(.runtimeFailed, "cannot load the \(architecture.name) decoder from config.json and model.safetensors of \(manifest.reference): \(error.message)", entry: "model.safetensors", cause: error)
            }
        }
        let maximumPositions = model.maximumPositions
        guard specifics.contextLength <= maximumPositions else {
            throw BundleError(.invalidManifest, "\(manifest.reference) declares backend.context_length \(specifics.contextLength) but its decoder (config.json) holds at most \(maximumPositions) positions; lower context_length", entry: "backend.context_length")
        }

        let tokenizerPath = specifics.tokenizer ?? "tokenizer.json"
        let tokenizer: Tokenizer
        do {
            if tokenizerPath == ggufFile {
                // The tokenizer the GGUF file describes in its metadata (docs/gguf.md).
                guard let gguf else {
                    throw BundleError(.invalidManifest, "\(manifest.reference) names \(ggufFile) as its tokenizer but holds no \(ggufFile) decoder", entry: "backend.tokenizer")
                }
                tokenizer = try Tokenizer(gguf: gguf)
            } else {
                tokenizer = try Tokenizer(contentsOf: try BundleFiles.require(tokenizerPath, in: bundle, purpose: "the tokenizer"))
            }
        } catch let error as BundleError {
            throw error
        } catch {
            throw BundleError(.invalidManifest, "cannot read the tokenizer \(tokenizerPath) of \(manifest.reference): \(BundleFiles.describe(error))", entry: tokenizerPath, cause: error)
        }

        guard let projector = specifics.projector else {
            throw BundleError(.invalidManifest, "\(manifest.reference) has no backend.projector {\"file\", \"name\"}; a backend carries its projector from codebook space to the decoder", entry: "backend.projector")
        }
        switch specifics.projectorType ?? "linear" {
        case "linear":
            break
        case "mlp2x_gelu":
            guard projector.name.hasSuffix(".0.weight") else {
                throw BundleError(.invalidManifest, "\(manifest.reference) declares an mlp2x_gelu projector, so backend.projector must name its first layer's weight NAME.0.weight (the second is NAME.2.weight), not \"\(projector.name)\"", entry: "backend.projector")
            }
        case let other:
            throw BundleError(.invalidManifest, "\(manifest.reference) declares backend.projector_type \"\(other)\"; Craft reads linear and mlp2x_gelu projectors", entry: "backend.projector_type")
        }
        let weight = try BundleFiles.tensor(projector.name, file: projector.file, in: bundle, purpose: "the projector weight")
        let expected = [model.hiddenSize, manifest.codebook.dimension]
        guard weight.shape == expected else {
            throw BundleError(.invalidManifest, "the projector \"\(projector.name)\" in \(projector.file) of \(manifest.reference) has shape \(weight.shape) but must be \(expected) (decoder hidden size, codebook dim)", entry: projector.file)
        }
        let bias = try optionalBias(of: projector.name, file: projector.file, size: model.hiddenSize, in: bundle, purpose: "the projector bias")
        var mlpOutput: ProjectorLayer?
        switch specifics.projectorType ?? "linear" {
        case "linear":
            break
        case "mlp2x_gelu":
            // LLaVA/VILA's mm_projector: Sequential(Linear, GELU, Linear), tensors NAME.0.* and NAME.2.*.
            let second = String(projector.name.dropLast(".0.weight".count)) + ".2.weight"
            let weight = try BundleFiles.tensor(second, file: projector.file, in: bundle, purpose: "the projector's second layer")
            guard weight.shape == [model.hiddenSize, model.hiddenSize] else {
                throw BundleError(.invalidManifest, "the projector's second layer \"\(second)\" in \(projector.file) of \(manifest.reference) has shape \(weight.shape) but must be [\(model.hiddenSize), \(model.hiddenSize)]", entry: projector.file)
            }
            mlpOutput = ProjectorLayer(
                weight: weight, bias: try optionalBias(of: second, file: projector.file, size: model.hiddenSize, in: bundle, purpose: "the projector's second bias"))
        default:
            break  // refused before the weights were read
        }

        // A GGUF file says whether its tokenizer puts BOS first (tokenizer.ggml.add_bos_token).
        let addsBeginning = gguf?.metadata["tokenizer.ggml.add_bos_token"]?.boolValue ?? architecture.prefixesBeginningOfSequence
        let prefix = try ids("prefix_tokens", in: manifest)
            ?? (addsBeginning ? (config["bos_token_id"] as? Int).map { [$0] } ?? [] : [])
        let endings = try ids("eos_token_ids", in: manifest) ?? idList(config["eos_token_id"])
        do {
            return try DecoderBackend(
                model: model, tokenizer: tokenizer, codebook: DeclaredCodebook(manifest.codebook, owner: manifest.reference),
                projectorWeight: weight, projectorBias: bias, mlpOutput: mlpOutput, contextLength: specifics.contextLength,
                prefixTokens: prefix, endOfSequenceTokens: Set(endings))
        } catch {
            throw BundleError(.invalidManifest, "\(manifest.reference) cannot wire its decoder: \(error.message)", cause: error)
        }
    }

    /// An integer list from `config.KEY`, `nil` when absent.
    static func ids(_ key: String, in manifest: BundleManifest) throws -> [Int]? {
        guard let value = manifest.config?[key] else { return nil }
        guard let items = value.arrayValue, let ids = Optional(items.compactMap { $0.integerValue.map { Int($0) } }), ids.count == items.count else {
            throw BundleError(.invalidManifest, "config.\(key) of \(manifest.reference) must be a list of token ids", entry: "config.\(key)")
        }
        return ids
    }

    /// `eos_token_id` of a Hugging Face config: an id, a list of ids, or absent.
    static func idList(_ value: Any?) -> [Int] {
        if let id = value as? Int { return [id] }
        if let list = value as? [Int] { return list }
        return []
    }
}
