// The model-type table: which `config.json` (`model_type`, else `architectures`) selects which model,
// and how a decoder is loaded. Adding an architecture is one file defining its `ModelArchitecture`
// and one line in `ModelArchitecture.all`; the `CraftRuntimes` registry gives every decoder of the
// table a backend runtime of the same id.
import Foundation

/// An architecture of Hugging Face model directories that Craft reads.
///
/// ```swift
/// let architecture = try ModelArchitecture.detect(directory: url)   // from config.json
/// if let load = architecture.loadDecoder { let model = try load(url) }
/// ```
public struct ModelArchitecture: Sendable, Hashable, CustomStringConvertible {
    /// What a model of this architecture is.
    public enum Role: Sendable, Hashable {
        /// A causal language model (a backend's decoder).
        case decoder
        /// A SigLIP vision tower (or the vision tower of a full `SiglipModel`).
        case siglipVision
        /// A SigLIP text tower.
        case siglipText
    }

    /// The architecture's name; for decoders also the runtime id of its backends (`llama`, `gpt2`).
    public let name: String
    /// What it is.
    public let role: Role
    /// The `config.json` `model_type` values that select it.
    public let modelTypes: [String]
    /// The `config.json` `architectures` class names that select it when `model_type` is absent.
    public let classNames: [String]
    /// One line for runtime listings.
    public let summary: String
    /// Whether prompts start with the configuration's `bos_token_id` (Llama-family tokenizers do).
    public let prefixesBeginningOfSequence: Bool
    /// Loads the decoder from a model directory (`config.json`, `model.safetensors`); decoders only.
    public let loadDecoder: (@Sendable (URL) throws(ModelError) -> any CausalLanguageModel)?

    /// An architecture; use this to add one (then list it in ``all``).
    public init(
        name: String, role: Role, modelTypes: [String], classNames: [String], summary: String,
        prefixesBeginningOfSequence: Bool = false,
        loadDecoder: (@Sendable (URL) throws(ModelError) -> any CausalLanguageModel)? = nil
    ) {
        self.name = name
        self.role = role
        self.modelTypes = modelTypes
        self.classNames = classNames
        self.summary = summary
        self.prefixesBeginningOfSequence = prefixesBeginningOfSequence
        self.loadDecoder = loadDecoder
    }

    public var description: String { name }
    /// The name (what earlier versions called the raw value).
    public var rawValue: String { name }

    public static func == (lhs: ModelArchitecture, rhs: ModelArchitecture) -> Bool { lhs.name == rhs.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    /// Every architecture Craft reads: the model-type table.
    public static let all: [ModelArchitecture] = [.llama, .qwen2, .gpt2, .siglipVision, .siglipText]

    /// The decoders of the table (each is a backend runtime of the same id).
    public static var decoders: [ModelArchitecture] { all.filter { $0.role == .decoder } }

    /// Detects the architecture of a model directory from its `config.json`.
    ///
    /// - Throws: ``ModelError`` with code `notFound` when config.json is missing, `invalidConfiguration`
    ///   when it is not a JSON object, `unsupported` for any other architecture (listing the known ones).
    public static func detect(directory: URL) throws(ModelError) -> ModelArchitecture {
        let url = directory.appendingPathComponent("config.json")
        let data = try ModelDirectory.configurationData(url)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError(.invalidConfiguration, "\(url.path) is not a JSON object; use the model's original config.json")
        }
        return try detect(configuration: object, source: url.path)
    }

    /// Detects the architecture from a parsed `config.json`: its `model_type`, else its `architectures`.
    public static func detect(configuration object: [String: Any], source: String) throws(ModelError) -> ModelArchitecture {
        let type = object["model_type"] as? String
        let architectures = object["architectures"] as? [String] ?? []
        if let type, let match = all.first(where: { $0.modelTypes.contains(type) }) { return match }
        if let match = all.first(where: { candidate in candidate.classNames.contains { architectures.contains($0) } }) {
            return match
        }
        let described = type.map { "model_type '\($0)'" } ?? (architectures.isEmpty ? "no model_type" : "architectures \(architectures)")
        let known = all.map { "\($0.modelTypes.first ?? $0.name) (\($0.classNames.first ?? $0.name))" }.joined(separator: ", ")
        throw ModelError(.unsupported, "\(source) names \(described), which no built-in runtime reads; supported: \(known)")
    }
}

extension ModelArchitecture {
    /// `LlamaForCausalLM` (``LlamaModel``).
    public static let llama = ModelArchitecture(
        name: "llama", role: .decoder, modelTypes: ["llama"], classNames: ["LlamaForCausalLM"],
        summary: "Llama-family decoder reading visual tokens through a linear projector",
        prefixesBeginningOfSequence: true,
        loadDecoder: { directory throws(ModelError) in try LlamaModel(directory: directory) })

    /// `GPT2LMHeadModel` (``GPT2Model``).
    public static let gpt2 = ModelArchitecture(
        name: "gpt2", role: .decoder, modelTypes: ["gpt2"], classNames: ["GPT2LMHeadModel", "GPT2Model"],
        summary: "GPT-2 decoder reading visual tokens through a linear projector",
        loadDecoder: { directory throws(ModelError) in try GPT2Model(directory: directory) })

    /// `SiglipVisionModel`, or the vision tower of a `SiglipModel` (``SiglipVisionModel``).
    public static let siglipVision = ModelArchitecture(
        name: "siglip-vision", role: .siglipVision, modelTypes: ["siglip_vision_model", "siglip"],
        classNames: ["SiglipVisionModel", "SiglipModel"], summary: "SigLIP vision tower")

    /// `SiglipTextModel` (``SiglipTextModel``). A full `SiglipModel` directory detects as
    /// ``siglipVision``; its text tower loads with ``SiglipTextModel/init(directory:)`` too.
    public static let siglipText = ModelArchitecture(
        name: "siglip-text", role: .siglipText, modelTypes: ["siglip_text_model"], classNames: ["SiglipTextModel"],
        summary: "SigLIP text tower")
}
