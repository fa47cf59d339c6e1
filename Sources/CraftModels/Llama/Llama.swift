// Llama-family decoder, ported from transformers' `modeling_llama.py` (LlamaForCausalLM): RMSNorm,
// rotary position embedding, grouped-query attention, SwiGLU MLP, tied or untied `lm_head`.
import Foundation
import TensorCore

// MARK: - Configuration

/// The `config.json` of a `LlamaForCausalLM` checkpoint.
///
/// RoPE theta comes from `rope_parameters.rope_theta` (transformers 5) or the top-level `rope_theta`
/// (transformers 4), default 10000. Only the default RoPE type is supported; scaled variants (`llama3`,
/// `linear`, `yarn`, …) are rejected rather than run wrongly.
public struct LlamaConfiguration: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var hiddenLayers: Int
    public var attentionHeads: Int
    public var kvHeads: Int
    public var headDimension: Int
    public var vocabularySize: Int
    public var rmsNormEpsilon: Float = 1e-6
    public var ropeTheta: Float = 10000
    public var tieWordEmbeddings = false
    public var attentionBias = false
    public var mlpBias = false
    public var maxPositionEmbeddings = 2048
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int] = []
    /// Written as `hidden_act`: Craft's Llama runs SiLU only (decoding refuses any other).
    private let hiddenActivation = "silu"

    /// The `config.json` keys; `encode(to:)` is synthesised and writes them in this order
    /// (`bos_token_id` only when set).
    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case hiddenLayers = "num_hidden_layers"
        case attentionHeads = "num_attention_heads"
        case kvHeads = "num_key_value_heads"
        case headDimension = "head_dim"
        case vocabularySize = "vocab_size"
        case rmsNormEpsilon = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias"
        case mlpBias = "mlp_bias"
        case maxPositionEmbeddings = "max_position_embeddings"
        case bosTokenID = "bos_token_id"
        case eosTokenIDs = "eos_token_id"
        case hiddenActivation = "hidden_act"
    }

    /// The RoPE objects, read (to find the theta and refuse scaled variants) but not written.
    enum RopeKeys: String, CodingKey {
        case ropeParameters = "rope_parameters"
        case ropeScaling = "rope_scaling"
    }

    struct RopeParameters: Codable, Equatable {
        var ropeTheta: Float?
        var ropeType: String?
        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta"
            case ropeType = "rope_type"
            case type
        }
        init(from decoder: Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            ropeTheta = try c.decodeIfPresent(Float.self, forKey: .ropeTheta)
            ropeType = try c.decodeIfPresent(String.self, forKey: .ropeType) ?? c.decodeIfPresent(String.self, forKey: .type)
        }
        func encode(to encoder: Swift.Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(ropeTheta, forKey: .ropeTheta)
            try c.encodeIfPresent(ropeType, forKey: .ropeType)
        }
    }

    /// Creates a configuration; `headDimension` defaults to `hiddenSize / attentionHeads`.
    public init(hiddenSize: Int, intermediateSize: Int, hiddenLayers: Int, attentionHeads: Int, kvHeads: Int? = nil,
                headDimension: Int? = nil, vocabularySize: Int, ropeTheta: Float = 10000, tieWordEmbeddings: Bool = false) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.hiddenLayers = hiddenLayers
        self.attentionHeads = attentionHeads
        self.kvHeads = kvHeads ?? attentionHeads
        self.headDimension = headDimension ?? hiddenSize / max(attentionHeads, 1)
        self.vocabularySize = vocabularySize
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings
    }

    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let limits = ModelConfigurationLimits.self
        hiddenSize = try limits.decode(.hiddenSize, in: c, maximum: limits.maximumDimension)
        intermediateSize = try limits.decode(.intermediateSize, in: c, maximum: limits.maximumDimension)
        hiddenLayers = try limits.decode(.hiddenLayers, in: c, maximum: limits.maximumLayers)
        attentionHeads = try limits.decode(.attentionHeads, in: c, maximum: limits.maximumHeads)
        kvHeads = try limits.decode(.kvHeads, in: c, default: attentionHeads, maximum: limits.maximumHeads)
        vocabularySize = try limits.decode(.vocabularySize, in: c, maximum: limits.maximumVocabularySize)
        guard hiddenSize > 0, intermediateSize > 0, hiddenLayers > 0, attentionHeads > 0, kvHeads > 0, vocabularySize > 0 else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads and vocab_size must be positive"))
        }
        guard attentionHeads % kvHeads == 0 else {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.kvHeads], debugDescription: "num_attention_heads \(attentionHeads) is not a multiple of num_key_value_heads \(kvHeads)"))
        }
        headDimension = try c.decodeIfPresent(Int.self, forKey: .headDimension) ?? hiddenSize / attentionHeads
        if c.contains(.headDimension) {
            _ = try limits.check(headDimension, CodingKeys.headDimension, in: c, maximum: limits.maximumDimension)
        }
        try limits.checkElements([vocabularySize, hiddenSize], of: "token embedding (vocab_size × hidden_size)", CodingKeys.vocabularySize, in: c)
        try limits.checkElements([attentionHeads * headDimension, hiddenSize], of: "query projection (num_attention_heads × head_dim × hidden_size)", CodingKeys.attentionHeads, in: c)
        try limits.checkElements([intermediateSize, hiddenSize], of: "MLP projection (intermediate_size × hidden_size)", CodingKeys.intermediateSize, in: c)
        guard headDimension > 0, headDimension % 2 == 0,
              c.contains(.headDimension) || hiddenSize % attentionHeads == 0 else {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.headDimension], debugDescription: "the head dimension \(headDimension) must be positive and even (RoPE), and hidden_size must divide by num_attention_heads when head_dim is absent"))
        }
        rmsNormEpsilon = try c.decodeIfPresent(Float.self, forKey: .rmsNormEpsilon) ?? 1e-6
        let rope = try decoder.container(keyedBy: RopeKeys.self)
        let parameters = try rope.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
        let scaling = try rope.decodeIfPresent(RopeParameters.self, forKey: .ropeScaling)
        for rope in [parameters, scaling].compactMap({ $0 }) {
            if let type = rope.ropeType, type != "default" {
                throw DecodingError.dataCorrupted(.init(codingPath: [RopeKeys.ropeParameters], debugDescription: "RoPE type '\(type)' is not supported (only the default rotary embedding is)"))
            }
        }
        ropeTheta = try parameters?.ropeTheta ?? c.decodeIfPresent(Float.self, forKey: .ropeTheta) ?? 10000
        guard ropeTheta > 0, ropeTheta.isFinite else {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.ropeTheta], debugDescription: "rope_theta \(ropeTheta) must be positive"))
        }
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? false
        maxPositionEmbeddings = try limits.check(
            c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048, CodingKeys.maxPositionEmbeddings,
            in: c, maximum: limits.maximumPositions)
        bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID)
        eosTokenIDs = try decodeTokenIDs(c, .eosTokenIDs)
        if let activation = try c.decodeIfPresent(String.self, forKey: .hiddenActivation), activation != "silu" {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.hiddenActivation], debugDescription: "hidden_act '\(activation)' is not supported (Llama uses silu)"))
        }
    }
}

/// `eos_token_id` is an integer, a list of integers, or null.
func decodeTokenIDs<K: CodingKey>(_ container: KeyedDecodingContainer<K>, _ key: K) throws -> [Int] {
    if let single = try? container.decodeIfPresent(Int.self, forKey: key) { return [single] }
    return try container.decodeIfPresent([Int].self, forKey: key) ?? []
}

// MARK: - Attention

struct LlamaAttention: Sendable {
    let configuration: LlamaConfiguration
    let query, key, value, output: Linear

    init(_ weights: inout WeightStore, _ prefix: String, _ configuration: LlamaConfiguration) throws(ModelError) {
        self.configuration = configuration
        let (hidden, heads, kvHeads, depth) = (configuration.hiddenSize, configuration.attentionHeads,
                                               configuration.kvHeads, configuration.headDimension)
        let bias = configuration.attentionBias
        query = try Linear(&weights, prefix + ".q_proj", input: hidden, output: heads * depth, bias: bias)
        key = try Linear(&weights, prefix + ".k_proj", input: hidden, output: kvHeads * depth, bias: bias)
        value = try Linear(&weights, prefix + ".v_proj", input: hidden, output: kvHeads * depth, bias: bias)
        output = try Linear(&weights, prefix + ".o_proj", input: heads * depth, output: hidden, bias: bias)
    }

    func callAsFunction(_ x: Tensor, rotary: RotaryEmbedding, layer: Int, cache: inout KVCache) -> Tensor {
        let q = query(x).splittingHeads(configuration.attentionHeads).applyingRotaryEmbedding(rotary)
        let k = key(x).splittingHeads(configuration.kvHeads).applyingRotaryEmbedding(rotary)
        let v = value(x).splittingHeads(configuration.kvHeads)
        let (keys, values) = cache.update(layer: layer, keys: k, values: v)
        let length = x.shape[1]
        let mask = length > 1 ? Tensor.causalMask(queryLength: length, keyLength: keys.shape[2]) : nil
        let attended = Tensor.scaledDotProductAttention(query: q, key: keys, value: values, mask: mask)
        return output(attended.mergingHeads())
    }
}

// MARK: - MLP

struct LlamaMLP: Sendable {
    let gate, up, down: Linear

    init(_ weights: inout WeightStore, _ prefix: String, _ configuration: LlamaConfiguration) throws(ModelError) {
        let (hidden, inner, bias) = (configuration.hiddenSize, configuration.intermediateSize, configuration.mlpBias)
        gate = try Linear(&weights, prefix + ".gate_proj", input: hidden, output: inner, bias: bias)
        up = try Linear(&weights, prefix + ".up_proj", input: hidden, output: inner, bias: bias)
        down = try Linear(&weights, prefix + ".down_proj", input: inner, output: hidden, bias: bias)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { down(gate(x).silu() * up(x)) }
}

// MARK: - Block

struct LlamaBlock: Sendable {
    let attentionNorm: RMSNorm
    let attention: LlamaAttention
    let mlpNorm: RMSNorm
    let mlp: LlamaMLP

    init(_ weights: inout WeightStore, _ prefix: String, _ configuration: LlamaConfiguration) throws(ModelError) {
        let (hidden, epsilon) = (configuration.hiddenSize, configuration.rmsNormEpsilon)
        attentionNorm = try RMSNorm(&weights, prefix + ".input_layernorm", dimension: hidden, epsilon: epsilon)
        attention = try LlamaAttention(&weights, prefix + ".self_attn", configuration)
        mlpNorm = try RMSNorm(&weights, prefix + ".post_attention_layernorm", dimension: hidden, epsilon: epsilon)
        mlp = try LlamaMLP(&weights, prefix + ".mlp", configuration)
    }

    func callAsFunction(_ x: Tensor, rotary: RotaryEmbedding, layer: Int, cache: inout KVCache) -> Tensor {
        let h = x + attention(attentionNorm(x), rotary: rotary, layer: layer, cache: &cache)
        return h + mlp(mlpNorm(h))
    }
}

// MARK: - Model

/// A Llama-family causal language model (`LlamaForCausalLM`) in Hugging Face layout.
///
/// ```swift
/// let model = try LlamaModel(directory: URL(fileURLWithPath: "TinyLlama"))
/// let logits = try model.logits(tokens: [1, 15043, 3186])           // [3, vocab]
/// let ids = try generate(model, prompt: [1, 15043], parameters: .init(maxNewTokens: 8))
/// ```
/// Tensor names are the checkpoint's (`model.layers.0.self_attn.q_proj.weight`, `lm_head.weight`);
/// `rotary_emb.inv_freq` buffers are dropped, and a `lm_head.weight` in a tied checkpoint is ignored.
public struct LlamaModel: CausalLanguageModel {
    /// The configuration the model was built from.
    public let configuration: LlamaConfiguration
    /// The model's tensors by checkpoint name (shared storage with the model).
    public let parameters: [String: Tensor]
    let embedTokens: Tensor
    let layers: [LlamaBlock]
    let norm: RMSNorm
    let lmHead: Tensor

    /// Builds the model from tensors named as in the checkpoint, checking every name and shape.
    ///
    /// - Throws: ``ModelError`` naming a missing, unexpected or wrongly shaped tensor.
    public init(configuration: LlamaConfiguration, weights: [String: Tensor], origin: String = "the given weights") throws(ModelError) {
        self.configuration = configuration
        var store = WeightStore(weights, origin: origin)
        let (hidden, vocabulary) = (configuration.hiddenSize, configuration.vocabularySize)
        embedTokens = try store.take("model.embed_tokens.weight", shape: [vocabulary, hidden])
        var blocks: [LlamaBlock] = []
        for index in 0..<configuration.hiddenLayers {
            blocks.append(try LlamaBlock(&store, "model.layers.\(index)", configuration))
        }
        layers = blocks
        norm = try RMSNorm(&store, "model.norm", dimension: hidden, epsilon: configuration.rmsNormEpsilon)
        lmHead = configuration.tieWordEmbeddings ? embedTokens : try store.take("lm_head.weight", shape: [vocabulary, hidden])
        try store.checkAllUsed()
        parameters = store.takenTensors
    }

    /// Loads `config.json` and the safetensors weights of a Hugging Face model directory.
    public init(directory: URL) throws(ModelError) {
        let configuration = try ModelDirectory.configuration(LlamaConfiguration.self, in: directory)
        let (tensors, origin) = try ModelDirectory.weights(in: directory) { Self.sanitize($0, configuration: configuration) }
        try self.init(configuration: configuration, weights: tensors, origin: origin)
    }

    /// The canonical name of a checkpoint tensor, or `nil` to drop it.
    static func sanitize(_ name: String, configuration: LlamaConfiguration) -> String? {
        if name.hasSuffix("rotary_emb.inv_freq") { return nil }
        if configuration.tieWordEmbeddings && name == "lm_head.weight" { return nil }
        return name
    }

    public var vocabularySize: Int { configuration.vocabularySize }
    public var hiddenSize: Int { configuration.hiddenSize }
    public var maximumPositions: Int { configuration.maxPositionEmbeddings }
    public func makeCache() -> KVCache { KVCache(layers: configuration.hiddenLayers) }

    public func embed(tokens: [Int]) throws(ModelError) -> Tensor {
        try checkTokens(tokens)
        do {
            return try embedTokens.rows(at: IndexTensor(tokens))
        } catch {
            throw ModelError(.invalidInput, error.message)
        }
    }

    public func logits(embeddings: Tensor, cache: inout KVCache) throws(ModelError) -> Tensor {
        try checkEmbeddings(embeddings)
        guard cache.layerCount == layers.count else {
            throw ModelError(.invalidInput, "the cache was made for \(cache.layerCount) layers but this model has \(layers.count); use model.makeCache()")
        }
        let length = embeddings.shape[0]
        guard cache.length + length <= configuration.maxPositionEmbeddings else {
            throw ModelError(.invalidInput, "the sequence reaches \(cache.length + length) positions but this Llama model was configured for \(configuration.maxPositionEmbeddings) (max_position_embeddings); shorten the input")
        }
        let rotary = RotaryEmbedding(headDimension: configuration.headDimension, theta: configuration.ropeTheta,
                                     positions: Array(cache.length..<(cache.length + length)))
        var h = embeddings.unsqueezed(0)
        for (index, layer) in layers.enumerated() {
            h = layer(h, rotary: rotary, layer: index, cache: &cache)
        }
        cache.advance(by: length)
        return norm(h).squeezed(0).linear(weight: lmHead)
    }
}
