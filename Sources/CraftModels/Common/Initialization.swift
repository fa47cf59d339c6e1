// Seeded random initial weights for the four built-in architectures, following the `_init_weights` of
// transformers' modeling_llama.py (LlamaPreTrainedModel), modeling_gpt2.py (GPT2PreTrainedModel) and
// modeling_siglip.py (SiglipPreTrainedModel), with the tensor names the model initialisers accept.
import Foundation
import TensorCore

/// Seeded random weights for a fresh model, named as ``LlamaModel``, ``GPT2Model``,
/// ``SiglipVisionModel`` and ``SiglipTextModel`` accept them in `init(configuration:weights:)`.
///
/// The schemes follow transformers' `_init_weights`:
/// - **Llama**: every linear weight and the token embedding `N(0, σ)` with `σ = initializerRange`
///   (0.02), biases zero, RMSNorm weights one.
/// - **GPT-2**: `Conv1D` weights and both embeddings `N(0, σ)`, except the residual projections
///   (`attn.c_proj.weight`, `mlp.c_proj.weight`), which get `N(0, σ/√(2·n_layer))` as GPT-2 does;
///   biases zero, LayerNorm weights one and biases zero.
/// - **SigLIP** (both towers): attention and MLP weights and the pooling head's probe and `in_proj`
///   Xavier-uniform (`U(±√(6/(fan_in+fan_out)))`), MLP biases `N(0, 1e-6)`, other biases zero; the
///   patch convolution, the text head and the pooling head's `out_proj` LeCun-normal
///   (`N(0, 1/√fan_in)`; transformers truncates this normal at two standard deviations, which is not
///   reproduced here); position and token embeddings `N(0, 1/√hidden)`; LayerNorms one and zero.
///
/// The same configuration and seed always give the same tensors (one ``SplitMix64`` stream, tensors
/// drawn in a fixed order), on every platform.
///
/// ```swift
/// let configuration = LlamaConfiguration(hiddenSize: 32, intermediateSize: 64, hiddenLayers: 2,
///                                        attentionHeads: 4, vocabularySize: 100)
/// let model = try LlamaModel(configuration: configuration,
///                            weights: ModelInitialization.llama(configuration, seed: 1))
/// ```
public enum ModelInitialization {
    /// transformers' default `initializer_range`.
    public static let defaultInitializerRange: Float = 0.02

    // MARK: - Llama

    /// Initial weights of a `LlamaForCausalLM` (`lm_head.weight` only when the embeddings are untied).
    ///
    /// - Parameters:
    ///   - configuration: the model's configuration.
    ///   - seed: the seed of the random stream.
    ///   - initializerRange: the standard deviation of linear weights and embeddings.
    public static func llama(
        _ configuration: LlamaConfiguration, seed: UInt64, initializerRange: Float = defaultInitializerRange
    ) -> [String: Tensor] {
        var drawing = Drawing(seed: seed)
        let c = configuration
        let (hidden, inner, depth) = (c.hiddenSize, c.intermediateSize, c.headDimension)
        drawing.normal("model.embed_tokens.weight", [c.vocabularySize, hidden], initializerRange)
        for layer in 0..<c.hiddenLayers {
            let prefix = "model.layers.\(layer)"
            drawing.ones(prefix + ".input_layernorm.weight", [hidden])
            drawing.ones(prefix + ".post_attention_layernorm.weight", [hidden])
            let projections = [("q_proj", c.attentionHeads * depth, hidden), ("k_proj", c.kvHeads * depth, hidden),
                               ("v_proj", c.kvHeads * depth, hidden), ("o_proj", hidden, c.attentionHeads * depth)]
            let biases = c.attentionBiases
            for ((name, output, input), bias) in zip(projections, [biases.query, biases.key, biases.value, biases.output]) {
                drawing.normal("\(prefix).self_attn.\(name).weight", [output, input], initializerRange)
                if bias { drawing.zeros("\(prefix).self_attn.\(name).bias", [output]) }
            }
            for (name, output, input) in [("gate_proj", inner, hidden), ("up_proj", inner, hidden), ("down_proj", hidden, inner)] {
                drawing.normal("\(prefix).mlp.\(name).weight", [output, input], initializerRange)
                if c.mlpBias { drawing.zeros("\(prefix).mlp.\(name).bias", [output]) }
            }
        }
        drawing.ones("model.norm.weight", [hidden])
        if !c.tieWordEmbeddings { drawing.normal("lm_head.weight", [c.vocabularySize, hidden], initializerRange) }
        return drawing.tensors
    }

    // MARK: - GPT-2

    /// Initial weights of a `GPT2LMHeadModel`, with the canonical names ``GPT2Model`` uses (no
    /// `transformer.` prefix; `lm_head.weight` only when the embeddings are untied).
    ///
    /// - Parameters:
    ///   - configuration: the model's configuration.
    ///   - seed: the seed of the random stream.
    ///   - initializerRange: the standard deviation of weights and embeddings.
    public static func gpt2(
        _ configuration: GPT2Configuration, seed: UInt64, initializerRange: Float = defaultInitializerRange
    ) -> [String: Tensor] {
        var drawing = Drawing(seed: seed)
        let c = configuration
        let (hidden, inner) = (c.hiddenSize, c.innerSize)
        let residual = initializerRange / Float(2 * c.layers).squareRoot()
        drawing.normal("wte.weight", [c.vocabularySize, hidden], initializerRange)
        drawing.normal("wpe.weight", [c.positions, hidden], initializerRange)
        for layer in 0..<c.layers {
            let prefix = "h.\(layer)"
            drawing.ones(prefix + ".ln_1.weight", [hidden])
            drawing.zeros(prefix + ".ln_1.bias", [hidden])
            drawing.normal(prefix + ".attn.c_attn.weight", [hidden, 3 * hidden], initializerRange)
            drawing.zeros(prefix + ".attn.c_attn.bias", [3 * hidden])
            drawing.normal(prefix + ".attn.c_proj.weight", [hidden, hidden], residual)
            drawing.zeros(prefix + ".attn.c_proj.bias", [hidden])
            drawing.ones(prefix + ".ln_2.weight", [hidden])
            drawing.zeros(prefix + ".ln_2.bias", [hidden])
            drawing.normal(prefix + ".mlp.c_fc.weight", [hidden, inner], initializerRange)
            drawing.zeros(prefix + ".mlp.c_fc.bias", [inner])
            drawing.normal(prefix + ".mlp.c_proj.weight", [inner, hidden], residual)
            drawing.zeros(prefix + ".mlp.c_proj.bias", [hidden])
        }
        drawing.ones("ln_f.weight", [hidden])
        drawing.zeros("ln_f.bias", [hidden])
        if !c.tieWordEmbeddings { drawing.normal("lm_head.weight", [c.vocabularySize, hidden], initializerRange) }
        return drawing.tensors
    }

    // MARK: - SigLIP

    /// Initial weights of a `SiglipVisionModel`, with the canonical names ``SiglipVisionModel`` uses
    /// (no `vision_model.` prefix); the attention-pooling head is included when
    /// ``SiglipVisionConfiguration/useHead`` is true.
    ///
    /// - Parameters:
    ///   - configuration: the tower's configuration.
    ///   - seed: the seed of the random stream.
    public static func siglipVision(_ configuration: SiglipVisionConfiguration, seed: UInt64) -> [String: Tensor] {
        var drawing = Drawing(seed: seed)
        let c = configuration
        let (hidden, patch) = (c.hiddenSize, c.patchSize)
        let patchFanIn = c.channels * patch * patch
        drawing.normal("embeddings.patch_embedding.weight", [hidden, c.channels, patch, patch], 1 / Float(patchFanIn).squareRoot())
        drawing.zeros("embeddings.patch_embedding.bias", [hidden])
        drawing.normal("embeddings.position_embedding.weight", [c.patchCount, hidden], 1 / Float(hidden).squareRoot())
        for layer in 0..<c.hiddenLayers {
            drawing.siglipEncoderLayer("encoder.layers.\(layer)", hidden: hidden, inner: c.intermediateSize)
        }
        drawing.ones("post_layernorm.weight", [hidden])
        drawing.zeros("post_layernorm.bias", [hidden])
        if c.useHead {
            drawing.xavierUniform("head.probe", [1, 1, hidden], fanIn: hidden, fanOut: hidden)
            drawing.xavierUniform("head.attention.in_proj_weight", [3 * hidden, hidden], fanIn: hidden, fanOut: 3 * hidden)
            drawing.zeros("head.attention.in_proj_bias", [3 * hidden])
            // nn.MultiheadAttention's out_proj is an nn.Linear: LeCun-normal like every other linear.
            drawing.normal("head.attention.out_proj.weight", [hidden, hidden], 1 / Float(hidden).squareRoot())
            drawing.zeros("head.attention.out_proj.bias", [hidden])
            drawing.ones("head.layernorm.weight", [hidden])
            drawing.zeros("head.layernorm.bias", [hidden])
            drawing.siglipMLP("head.mlp", hidden: hidden, inner: c.intermediateSize)
        }
        return drawing.tensors
    }

    /// Initial weights of a `SiglipTextModel`, with the canonical names ``SiglipTextModel`` uses (no
    /// `text_model.` prefix).
    ///
    /// - Parameters:
    ///   - configuration: the tower's configuration.
    ///   - seed: the seed of the random stream.
    public static func siglipText(_ configuration: SiglipTextConfiguration, seed: UInt64) -> [String: Tensor] {
        var drawing = Drawing(seed: seed)
        let c = configuration
        let hidden = c.hiddenSize
        let embeddingStandardDeviation = 1 / Float(hidden).squareRoot()
        drawing.normal("embeddings.token_embedding.weight", [c.vocabularySize, hidden], embeddingStandardDeviation)
        drawing.normal("embeddings.position_embedding.weight", [c.maxPositionEmbeddings, hidden], embeddingStandardDeviation)
        for layer in 0..<c.hiddenLayers {
            drawing.siglipEncoderLayer("encoder.layers.\(layer)", hidden: hidden, inner: c.intermediateSize)
        }
        drawing.ones("final_layer_norm.weight", [hidden])
        drawing.zeros("final_layer_norm.bias", [hidden])
        drawing.normal("head.weight", [c.projectionSize, hidden], 1 / Float(hidden).squareRoot())
        drawing.zeros("head.bias", [c.projectionSize])
        return drawing.tensors
    }
}

/// Tensors drawn one after another from one seeded stream.
private struct Drawing {
    var generator: SplitMix64
    var tensors: [String: Tensor] = [:]

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    mutating func normal(_ name: String, _ shape: [Int], _ standardDeviation: Float) {
        tensors[name] = Tensor(randomNormal: shape, standardDeviation: standardDeviation, generator: &generator)
    }

    mutating func xavierUniform(_ name: String, _ shape: [Int], fanIn: Int, fanOut: Int) {
        let bound = (6 / Float(fanIn + fanOut)).squareRoot()
        tensors[name] = Tensor(randomUniform: shape, in: -bound..<bound, generator: &generator)
    }

    mutating func zeros(_ name: String, _ shape: [Int]) { tensors[name] = Tensor.zeros(shape) }
    mutating func ones(_ name: String, _ shape: [Int]) { tensors[name] = Tensor.ones(shape) }

    mutating func siglipMLP(_ prefix: String, hidden: Int, inner: Int) {
        xavierUniform(prefix + ".fc1.weight", [inner, hidden], fanIn: hidden, fanOut: inner)
        normal(prefix + ".fc1.bias", [inner], 1e-6)
        xavierUniform(prefix + ".fc2.weight", [hidden, inner], fanIn: inner, fanOut: hidden)
        normal(prefix + ".fc2.bias", [hidden], 1e-6)
    }

    mutating func siglipEncoderLayer(_ prefix: String, hidden: Int, inner: Int) {
        ones(prefix + ".layer_norm1.weight", [hidden])
        zeros(prefix + ".layer_norm1.bias", [hidden])
        for name in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            xavierUniform("\(prefix).self_attn.\(name).weight", [hidden, hidden], fanIn: hidden, fanOut: hidden)
            zeros("\(prefix).self_attn.\(name).bias", [hidden])
        }
        ones(prefix + ".layer_norm2.weight", [hidden])
        zeros(prefix + ".layer_norm2.bias", [hidden])
        siglipMLP(prefix + ".mlp", hidden: hidden, inner: inner)
    }
}
