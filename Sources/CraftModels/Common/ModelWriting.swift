// Writing Hugging Face-layout model directories (config.json + model.safetensors) that both
// transformers (LlamaForCausalLM, GPT2LMHeadModel, SiglipVisionModel, SiglipTextModel
// `from_pretrained`) and this module's `init(directory:)` load; checked by scripts/check_written_models.py.
import Foundation
import SafeTensors
import TensorCore

/// Writes models as Hugging Face model directories: `config.json` with the checkpoint's keys (plus
/// `model_type` and `architectures`) and `model.safetensors` (F32, `format: pt` metadata).
///
/// Tensor names are those of the published checkpoints: Llama's as they are, GPT-2's under
/// `transformer.` (`lm_head.weight` at the top when untied), the SigLIP towers' under `vision_model.`
/// and `text_model.`. Tied output embeddings are not written twice. Existing files of the same names
/// are replaced; the directory is created when missing.
///
/// ```swift
/// let configuration = GPT2Configuration(hiddenSize: 32, layers: 2, heads: 4, positions: 64, vocabularySize: 100)
/// let model = try GPT2Model(configuration: configuration, weights: ModelInitialization.gpt2(configuration, seed: 1))
/// try ModelWriting.write(model, to: URL(fileURLWithPath: "tiny-gpt2"))
/// // transformers.GPT2LMHeadModel.from_pretrained("tiny-gpt2") and GPT2Model(directory:) both load it.
/// ```
public enum ModelWriting {
    /// Writes a `LlamaForCausalLM` directory (`Qwen2ForCausalLM` for a Qwen2 configuration).
    ///
    /// - Throws: ``ModelError`` (`writeFailed`) when the directory or a file cannot be written.
    public static func write(_ model: LlamaModel, to directory: URL) throws(ModelError) {
        let c = model.configuration
        let extra: [String: Any] = [
            "model_type": c.modelType, "architectures": [c.modelType == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"],
            "rope_parameters": c.ropeScaling.parameters(theta: c.ropeTheta),
        ]
        try write(configuration: c, extra: extra, tensors: model.parameters, to: directory)
    }

    /// Writes a `GPT2LMHeadModel` directory (tensors under `transformer.`).
    ///
    /// - Throws: ``ModelError`` (`writeFailed`) when the directory or a file cannot be written.
    public static func write(_ model: GPT2Model, to directory: URL) throws(ModelError) {
        let extra: [String: Any] = ["model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]]
        let tensors = Dictionary(uniqueKeysWithValues: model.parameters.map { name, tensor in
            (name == "lm_head.weight" ? name : "transformer." + name, tensor)
        })
        try write(configuration: model.configuration, extra: extra, tensors: tensors, to: directory)
    }

    /// Writes a `SiglipVisionModel` directory (tensors under `vision_model.`).
    ///
    /// - Throws: ``ModelError`` (`writeFailed`) when the directory or a file cannot be written.
    public static func write(_ model: SiglipVisionModel, to directory: URL) throws(ModelError) {
        let extra: [String: Any] = ["model_type": "siglip_vision_model", "architectures": ["SiglipVisionModel"]]
        let tensors = Dictionary(uniqueKeysWithValues: model.parameters.map { ("vision_model." + $0.key, $0.value) })
        try write(configuration: model.configuration, extra: extra, tensors: tensors, to: directory)
    }

    /// Writes a `SiglipTextModel` directory (tensors under `text_model.`).
    ///
    /// - Throws: ``ModelError`` (`writeFailed`) when the directory or a file cannot be written.
    public static func write(_ model: SiglipTextModel, to directory: URL) throws(ModelError) {
        let extra: [String: Any] = ["model_type": "siglip_text_model", "architectures": ["SiglipTextModel"]]
        let tensors = Dictionary(uniqueKeysWithValues: model.parameters.map { ("text_model." + $0.key, $0.value) })
        try write(configuration: model.configuration, extra: extra, tensors: tensors, to: directory)
    }

    /// The `config.json` bytes of `configuration` with `extra` keys merged in (sorted keys, pretty
    /// printed). A list of end-of-sequence ids holding one id is written as that id, an empty one not
    /// at all, as transformers writes them.
    static func configurationData<C: Encodable>(_ configuration: C, extra: [String: Any]) throws(ModelError) -> Data {
        do {
            let encoded = try JSONEncoder().encode(configuration)
            guard var object = try JSONSerialization.jsonObject(with: encoded) as? [String: Any] else {
                throw ModelError(.invalidConfiguration, "the configuration did not encode as a JSON object; this is a bug in ModelWriting")
            }
            for (key, value) in extra { object[key] = value }
            if let ids = object["eos_token_id"] as? [Any] {
                if ids.count == 1 {
                    object["eos_token_id"] = ids[0]
                } else if ids.isEmpty {
                    object.removeValue(forKey: "eos_token_id")
                }
            }
            object["torch_dtype"] = "float32"
            return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        } catch let error as ModelError {
            throw error
        } catch {
            throw ModelError(.invalidConfiguration, "the configuration cannot be written as JSON: \(error)", cause: error)
        }
    }

    static func write<C: Encodable>(configuration: C, extra: [String: Any], tensors: [String: Tensor], to directory: URL) throws(ModelError) {
        let data = try configurationData(configuration, extra: extra)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var writer = SafeTensorsWriter(metadata: ["format": "pt"])
            for name in tensors.keys.sorted() {
                let tensor = tensors[name]!
                try writer.add(name, floats: tensor.scalars, shape: tensor.shape)
            }
            try writer.write(to: directory.appendingPathComponent("model.safetensors"))
            try data.write(to: directory.appendingPathComponent("config.json"), options: .atomic)
        } catch {
            throw ModelError(.writeFailed, "cannot write the model directory \(directory.path): \((error as? LocalizedError)?.errorDescription ?? "\(error)"); check the path is writable", cause: error)
        }
    }
}
