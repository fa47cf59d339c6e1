// Qwen2 and Qwen2.5 decoders (`Qwen2ForCausalLM`, `model_type: qwen2`): the Llama network with biases
// on the query, key and value projections (not the output one), GQA, tied or untied embeddings, RoPE
// theta from `rope_parameters` (transformers 5) or `rope_theta`. `LlamaModel` reads them
// (`LlamaConfiguration.modelType == "qwen2"`); this file is their entry in the model-type table.
// The paper's surrogate (Qwen2-0.5B) and targets (Qwen2-1.5B, Qwen2.5-3B) are of this family.
import Foundation

extension ModelArchitecture {
    /// `Qwen2ForCausalLM` (``LlamaModel`` with Qwen2's projection biases). Its tokenizers add no BOS
    /// token, so prompts are not prefixed with one.
    public static let qwen2 = ModelArchitecture(
        name: "qwen2", role: .decoder, modelTypes: ["qwen2"], classNames: ["Qwen2ForCausalLM"],
        summary: "Qwen2/Qwen2.5 decoder reading visual tokens through a linear projector",
        loadDecoder: { directory throws(ModelError) in try LlamaModel(directory: directory) })
}
