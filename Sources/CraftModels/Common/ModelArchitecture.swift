// Which built-in runtime reads a Hugging Face model directory, from its config.json.
import Foundation

/// The architectures the built-in runtimes implement.
public enum ModelArchitecture: String, Sendable, CaseIterable {
    /// `LlamaForCausalLM` (``LlamaModel``).
    case llama
    /// `GPT2LMHeadModel` (``GPT2Model``).
    case gpt2
    /// `SiglipVisionModel`, or the vision tower of a `SiglipModel` (``SiglipVisionModel``).
    case siglipVision = "siglip-vision"
    /// `SiglipTextModel` (``SiglipTextModel``). A full `SiglipModel` directory detects as
    /// ``siglipVision``; its text tower loads with ``SiglipTextModel/init(directory:)`` too.
    case siglipText = "siglip-text"

    /// Detects the architecture from `config.json`'s `model_type`, then its `architectures`.
    ///
    /// - Throws: ``ModelError`` with code `notFound` when config.json is missing, `invalidConfiguration`
    ///   when it is not a JSON object, `unsupported` for any other architecture (listing the supported ones).
    public static func detect(directory: URL) throws(ModelError) -> ModelArchitecture {
        let url = directory.appendingPathComponent("config.json")
        let data = try ModelDirectory.configurationData(url)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError(.invalidConfiguration, "\(url.path) is not a JSON object; use the model's original config.json")
        }
        let type = object["model_type"] as? String
        let architectures = object["architectures"] as? [String] ?? []
        switch type {
        case "llama": return .llama
        case "gpt2": return .gpt2
        case "siglip_vision_model", "siglip": return .siglipVision
        case "siglip_text_model": return .siglipText
        default: break
        }
        if architectures.contains("LlamaForCausalLM") { return .llama }
        if architectures.contains("GPT2LMHeadModel") || architectures.contains("GPT2Model") { return .gpt2 }
        if architectures.contains("SiglipVisionModel") || architectures.contains("SiglipModel") { return .siglipVision }
        if architectures.contains("SiglipTextModel") { return .siglipText }
        let described = type.map { "model_type '\($0)'" } ?? (architectures.isEmpty ? "no model_type" : "architectures \(architectures)")
        throw ModelError(.unsupported, "\(url.path) names \(described), which no built-in runtime reads; supported: llama (LlamaForCausalLM), gpt2 (GPT2LMHeadModel), siglip_vision_model (SiglipVisionModel), siglip_text_model (SiglipTextModel)")
    }
}
