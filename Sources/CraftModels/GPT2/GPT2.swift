// GPT-2 decoder, ported from transformers' `modeling_gpt2.py` (GPT2LMHeadModel): learned positions,
// pre-LN blocks with `Conv1D` projections ([in, out] weights), `gelu_new`, tied `lm_head`.
import Foundation
import TensorCore

// MARK: - Configuration

/// The `config.json` of a `GPT2LMHeadModel` checkpoint.
public struct GPT2Configuration: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var positions: Int
    public var vocabularySize: Int
    /// The MLP width (`n_inner`, by default 4 × `n_embd`).
    public var innerSize: Int
    public var layerNormEpsilon: Float = 1e-5
    /// `gelu_new` (tanh approximation, also accepted as `gelu_pytorch_tanh`) or `gelu` (exact).
    public var activation = "gelu_new"
    public var scaleAttentionWeights = true
    public var scaleAttentionByInverseLayerIndex = false
    public var tieWordEmbeddings = true
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int] = []

    /// The `config.json` keys; `encode(to:)` is synthesised and writes them in this order
    /// (`bos_token_id` only when set).
    enum CodingKeys: String, CodingKey {
        case hiddenSize = "n_embd"
        case layers = "n_layer"
        case heads = "n_head"
        case positions = "n_positions"
        case vocabularySize = "vocab_size"
        case innerSize = "n_inner"
        case layerNormEpsilon = "layer_norm_epsilon"
        case activation = "activation_function"
        case scaleAttentionWeights = "scale_attn_weights"
        case scaleAttentionByInverseLayerIndex = "scale_attn_by_inverse_layer_idx"
        case tieWordEmbeddings = "tie_word_embeddings"
        case bosTokenID = "bos_token_id"
        case eosTokenIDs = "eos_token_id"
    }

    /// Creates a configuration.
    public init(hiddenSize: Int, layers: Int, heads: Int, positions: Int, vocabularySize: Int, innerSize: Int? = nil) {
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.positions = positions
        self.vocabularySize = vocabularySize
        self.innerSize = innerSize ?? 4 * hiddenSize
    }

    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let limits = ModelConfigurationLimits.self
        hiddenSize = try limits.decode(.hiddenSize, in: c, default: 768, maximum: limits.maximumDimension)
        layers = try limits.decode(.layers, in: c, default: 12, maximum: limits.maximumLayers)
        heads = try limits.decode(.heads, in: c, default: 12, maximum: limits.maximumHeads)
        positions = try limits.decode(.positions, in: c, default: 1024, maximum: limits.maximumPositions)
        vocabularySize = try limits.decode(.vocabularySize, in: c, default: 50257, maximum: limits.maximumVocabularySize)
        innerSize = try limits.decode(.innerSize, in: c, default: 4 * hiddenSize, maximum: limits.maximumDimension)
        try limits.checkElements([vocabularySize, hiddenSize], of: "token embedding (vocab_size × n_embd)", CodingKeys.vocabularySize, in: c)
        try limits.checkElements([positions, hiddenSize], of: "position embedding (n_positions × n_embd)", CodingKeys.positions, in: c)
        try limits.checkElements([hiddenSize, innerSize], of: "MLP projection (n_embd × n_inner)", CodingKeys.innerSize, in: c)
        guard hiddenSize > 0, layers > 0, heads > 0, positions > 0, vocabularySize > 0, innerSize > 0, hiddenSize % heads == 0 else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "n_embd, n_layer, n_head, n_positions, vocab_size and n_inner must be positive, and n_embd must divide by n_head"))
        }
        layerNormEpsilon = try c.decodeIfPresent(Float.self, forKey: .layerNormEpsilon) ?? 1e-5
        activation = try c.decodeIfPresent(String.self, forKey: .activation) ?? "gelu_new"
        guard ["gelu_new", "gelu_pytorch_tanh", "gelu"].contains(activation) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.activation], debugDescription: "activation_function '\(activation)' is not supported (gelu_new, gelu_pytorch_tanh or gelu)"))
        }
        scaleAttentionWeights = try c.decodeIfPresent(Bool.self, forKey: .scaleAttentionWeights) ?? true
        scaleAttentionByInverseLayerIndex = try c.decodeIfPresent(Bool.self, forKey: .scaleAttentionByInverseLayerIndex) ?? false
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? true
        bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID)
        eosTokenIDs = try decodeTokenIDs(c, .eosTokenIDs)
    }
}

// MARK: - Attention

struct GPT2Attention: Sendable {
    let heads: Int
    let scale: Float
    let qkv, output: Conv1D

    init(_ weights: inout WeightStore, _ prefix: String, _ configuration: GPT2Configuration, layer: Int) throws(ModelError) {
        let hidden = configuration.hiddenSize
        heads = configuration.heads
        var scale: Float = configuration.scaleAttentionWeights ? 1 / Float(hidden / heads).squareRoot() : 1
        if configuration.scaleAttentionByInverseLayerIndex { scale /= Float(layer + 1) }
        self.scale = scale
        qkv = try Conv1D(&weights, prefix + ".c_attn", input: hidden, output: 3 * hidden)
        output = try Conv1D(&weights, prefix + ".c_proj", input: hidden, output: hidden)
    }

    /// `x` is `[1, T, H]`: the rows of `segments[i]` belong to the sequence whose cache is `caches[i]`.
    func callAsFunction(_ x: Tensor, layer: Int, caches: inout [KVCache], segments: [Range<Int>]) -> Tensor {
        let parts = qkv(x).chunked(3, along: -1)
        let attended = KVCache.attention(
            query: parts[0].splittingHeads(heads), key: parts[1].splittingHeads(heads), value: parts[2].splittingHeads(heads),
            layer: layer, caches: &caches, segments: segments, scale: scale)
        return output(attended.mergingHeads())
    }
}

// MARK: - MLP

struct GPT2MLP: Sendable {
    let up, down: Conv1D
    let exactGELU: Bool

    init(_ weights: inout WeightStore, _ prefix: String, _ configuration: GPT2Configuration) throws(ModelError) {
        up = try Conv1D(&weights, prefix + ".c_fc", input: configuration.hiddenSize, output: configuration.innerSize)
        down = try Conv1D(&weights, prefix + ".c_proj", input: configuration.innerSize, output: configuration.hiddenSize)
        exactGELU = configuration.activation == "gelu"
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let h = up(x)
        return down(exactGELU ? h.gelu() : h.geluTanh())
    }
}

// MARK: - Block

struct GPT2Block: Sendable {
    let attentionNorm: LayerNorm
    let attention: GPT2Attention
    let mlpNorm: LayerNorm
    let mlp: GPT2MLP

    init(_ weights: inout WeightStore, _ prefix: String, _ configuration: GPT2Configuration, layer: Int) throws(ModelError) {
        let (hidden, epsilon) = (configuration.hiddenSize, configuration.layerNormEpsilon)
        attentionNorm = try LayerNorm(&weights, prefix + ".ln_1", dimension: hidden, epsilon: epsilon)
        attention = try GPT2Attention(&weights, prefix + ".attn", configuration, layer: layer)
        mlpNorm = try LayerNorm(&weights, prefix + ".ln_2", dimension: hidden, epsilon: epsilon)
        mlp = try GPT2MLP(&weights, prefix + ".mlp", configuration)
    }

    func callAsFunction(_ x: Tensor, layer: Int, caches: inout [KVCache], segments: [Range<Int>]) -> Tensor {
        let h = x + attention(attentionNorm(x), layer: layer, caches: &caches, segments: segments)
        return h + mlp(mlpNorm(h))
    }
}

// MARK: - Model

/// A GPT-2 causal language model (`GPT2LMHeadModel`) in Hugging Face layout.
///
/// ```swift
/// let model = try GPT2Model(directory: URL(fileURLWithPath: "gpt2"))
/// let logits = try model.logits(tokens: [15496, 995])               // [2, 50257]
/// ```
/// Tensor names are canonicalised without the `transformer.` prefix (`h.0.attn.c_attn.weight`,
/// `wte.weight`), so both `GPT2LMHeadModel` and bare `GPT2Model` checkpoints load; the causal-mask
/// buffers `attn.bias` / `attn.masked_bias` are dropped, and `lm_head.weight` of a tied model is ignored.
public struct GPT2Model: CausalLanguageModel, HiddenStateDecoder {
    /// The configuration the model was built from.
    public let configuration: GPT2Configuration
    /// The model's weights by canonical name, as kept in memory (`[in, out]` as in the checkpoint).
    public let weights: [String: WeightMatrix]
    let tokenEmbedding: WeightMatrix
    let positionEmbedding: Tensor
    let blocks: [GPT2Block]
    let finalNorm: LayerNorm
    public let lmHead: WeightMatrix

    /// Builds the model from tensors with canonical names, checking every name and shape.
    public init(configuration: GPT2Configuration, weights: [String: Tensor], origin: String = "the given weights") throws(ModelError) {
        try self.init(configuration: configuration, store: WeightStore(weights, origin: origin))
    }

    init(configuration: GPT2Configuration, store: consuming WeightStore) throws(ModelError) {
        self.configuration = configuration
        var store = store
        let (hidden, vocabulary) = (configuration.hiddenSize, configuration.vocabularySize)
        tokenEmbedding = try store.takeMatrix("wte.weight", shape: [vocabulary, hidden])
        positionEmbedding = try store.take("wpe.weight", shape: [configuration.positions, hidden])
        var blocks: [GPT2Block] = []
        for index in 0..<configuration.layers {
            blocks.append(try GPT2Block(&store, "h.\(index)", configuration, layer: index))
        }
        self.blocks = blocks
        finalNorm = try LayerNorm(&store, "ln_f", dimension: hidden, epsilon: configuration.layerNormEpsilon)
        lmHead = configuration.tieWordEmbeddings ? tokenEmbedding : try store.takeMatrix("lm_head.weight", shape: [vocabulary, hidden])
        try store.checkAllUsed()
        weights = store.takenWeights
    }

    /// Loads `config.json` and the safetensors weights of a Hugging Face model directory.
    ///
    /// - Parameter precision: `.stored` (the default) keeps F16/BF16 matrices in half precision and
    ///   maps F32 ones in place; `.float32` converts everything to float32 buffers.
    public init(directory: URL, precision: WeightPrecision = .stored) throws(ModelError) {
        let configuration = try ModelDirectory.configuration(GPT2Configuration.self, in: directory)
        let (weights, origin) = try ModelDirectory.weights(in: directory, precision: precision) { Self.sanitize($0, configuration: configuration) }
        try self.init(configuration: configuration, store: WeightStore(loaded: weights, origin: origin))
    }

    /// The model's weights as float32 tensors by canonical name (half-precision ones converted, in
    /// new buffers: for a model kept in half precision this doubles its memory while held).
    public var parameters: [String: Tensor] { weights.mapValues(\.floats) }

    static func sanitize(_ name: String, configuration: GPT2Configuration) -> String? {
        if name.hasSuffix(".attn.bias") || name.hasSuffix(".attn.masked_bias") { return nil }
        if configuration.tieWordEmbeddings && name == "lm_head.weight" { return nil }
        return name.hasPrefix("transformer.") ? String(name.dropFirst("transformer.".count)) : name
    }

    public var vocabularySize: Int { configuration.vocabularySize }
    public var hiddenSize: Int { configuration.hiddenSize }
    public var maximumPositions: Int { configuration.positions }
    public func makeCache() -> KVCache { KVCache(layers: configuration.layers) }

    public func embed(tokens: [Int]) throws(ModelError) -> Tensor { try embedRows(tokenEmbedding, tokens) }

    /// The normalised last hidden states `[ΣT, H]` of several sequences' new rows (``HiddenStateDecoder``).
    public func finalHiddenStates(_ embeddings: [Tensor], positionIDs: [[Int]?], caches: inout [KVCache]) throws(ModelError) -> Tensor {
        let positions = try checkedPositions(
            embeddings, positionIDs: positionIDs, caches: caches, layers: blocks.count, positions: configuration.positions,
            limit: "this GPT-2 model has \(configuration.positions) (n_positions)")
        var rows: [Tensor] = []
        var start = 0
        for embedding in embeddings {
            let ids = positions[start..<(start + embedding.shape[0])]
            let first = ids[ids.startIndex]
            if ids.last == first + ids.count - 1 {
                rows.append(embedding + positionEmbedding.sliced(along: 0, first..<(first + ids.count)))
            } else {
                // Explicit ids with gaps (pruned visual tokens keeping their original positions).
                do {
                    rows.append(embedding + (try positionEmbedding.rows(at: IndexTensor(ids.map { Int32($0) }))))
                } catch {
                    throw ModelError(.invalidInput, error.message)
                }
            }
            start += embedding.shape[0]
        }
        let segments = KVCache.segments(embeddings)
        var h = (rows.count == 1 ? rows[0] : Tensor.concatenated(rows, along: 0)).unsqueezed(0)
        for (index, block) in blocks.enumerated() {
            h = block(h, layer: index, caches: &caches, segments: segments)
        }
        KVCache.advance(&caches, segments: segments, positions: positions)
        return finalNorm(h).squeezed(0)
    }
}
