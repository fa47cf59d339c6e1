// Llama-family decoder, ported from transformers' `modeling_llama.py` (LlamaForCausalLM): RMSNorm,
// rotary position embedding, grouped-query attention, SwiGLU MLP, tied or untied `lm_head`. Qwen2
// (`modeling_qwen2.py`, Qwen2ForCausalLM) is the same network with biases on the query, key and value
// projections only, so it is read by this file too (`model_type: qwen2`, see Qwen2/Qwen2.swift).
import Foundation
import TensorCore

// MARK: - Configuration

/// The `config.json` of a `LlamaForCausalLM` or `Qwen2ForCausalLM` checkpoint.
///
/// `model_type` `qwen2` sets Qwen2's projection biases (query, key and value, not output) and refuses
/// `use_sliding_window: true` (the sliding-window attention is not implemented).
///
/// RoPE theta comes from `rope_parameters.rope_theta` (transformers 5) or the top-level `rope_theta`
/// (transformers 4), default 10000. The RoPE type comes from `rope_parameters` (or transformers 4's
/// `rope_scaling`): `default`, `linear` (`factor`) and `llama3` (`factor`, `low_freq_factor`,
/// `high_freq_factor`, `original_max_position_embeddings`) are computed as transformers does; other
/// types (`yarn`, `dynamic`, `longrope`, …) are refused rather than run wrongly.
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
    /// The RoPE variant (`rope_type`) and its parameters.
    public var ropeScaling: RopeScaling = .none
    public var tieWordEmbeddings = false
    /// Which attention projections carry a bias (Llama: all or none, `attention_bias`; Qwen2: query,
    /// key and value).
    public var attentionBiases = AttentionBiases()
    public var mlpBias = false
    /// `llama` or `qwen2`: the family whose `config.json` this is.
    public var modelType = "llama"
    public var maxPositionEmbeddings = 2048
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int] = []

    /// The `config.json` keys.
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
        case ropeParameters = "rope_parameters"
        case ropeScaling = "rope_scaling"
        case tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias"
        case mlpBias = "mlp_bias"
        case maxPositionEmbeddings = "max_position_embeddings"
        case bosTokenID = "bos_token_id"
        case eosTokenIDs = "eos_token_id"
        case hiddenActivation = "hidden_act"
        case modelType = "model_type"
        case useSlidingWindow = "use_sliding_window"
    }

    /// Which of the four attention projections carry a bias.
    public struct AttentionBiases: Sendable, Equatable {
        public var query = false, key = false, value = false, output = false
        public init(query: Bool = false, key: Bool = false, value: Bool = false, output: Bool = false) {
            (self.query, self.key, self.value, self.output) = (query, key, value, output)
        }
        /// All four (Llama's `attention_bias: true`) or none.
        public static func all(_ on: Bool) -> AttentionBiases { AttentionBiases(query: on, key: on, value: on, output: on) }
        /// Qwen2's: query, key and value.
        public static let qwen2 = AttentionBiases(query: true, key: true, value: true, output: false)
    }

    /// Llama's single `attention_bias` flag: whether every projection carries a bias.
    public var attentionBias: Bool {
        get { attentionBiases == .all(true) }
        set { attentionBiases = .all(newValue) }
    }

    struct RopeParameters: Decodable, Equatable {
        var ropeTheta: Float?
        var ropeType: String?
        var factor: Float?
        var lowFrequencyFactor: Float?
        var highFrequencyFactor: Float?
        var originalMaxPositions: Int?
        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta"
            case ropeType = "rope_type"
            case type
            case factor
            case lowFrequencyFactor = "low_freq_factor"
            case highFrequencyFactor = "high_freq_factor"
            case originalMaxPositions = "original_max_position_embeddings"
        }
        init(from decoder: Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            ropeTheta = try c.decodeIfPresent(Float.self, forKey: .ropeTheta)
            ropeType = try c.decodeIfPresent(String.self, forKey: .ropeType) ?? c.decodeIfPresent(String.self, forKey: .type)
            factor = try c.decodeIfPresent(Float.self, forKey: .factor)
            lowFrequencyFactor = try c.decodeIfPresent(Float.self, forKey: .lowFrequencyFactor)
            highFrequencyFactor = try c.decodeIfPresent(Float.self, forKey: .highFrequencyFactor)
            originalMaxPositions = try c.decodeIfPresent(Int.self, forKey: .originalMaxPositions)
        }

        /// The scaling these parameters describe, checked; `codingPath` names them in errors.
        func scaling(codingPath: [any CodingKey]) throws -> RopeScaling {
            func invalid(_ text: String) -> DecodingError {
                .dataCorrupted(.init(codingPath: codingPath, debugDescription: text))
            }
            func positive(_ value: Float?, _ key: String, _ type: String) throws -> Float {
                guard let value else { throw invalid("RoPE type '\(type)' needs \(key)") }
                guard value > 0, value.isFinite else { throw invalid("RoPE \(key) \(value) must be positive and finite") }
                return value
            }
            switch ropeType ?? "default" {
            case "default":
                return .none
            case "linear":
                return .linear(factor: try positive(factor, "factor", "linear"))
            case "llama3":
                let factor = try positive(factor, "factor", "llama3")
                let low = try positive(lowFrequencyFactor, "low_freq_factor", "llama3")
                let high = try positive(highFrequencyFactor, "high_freq_factor", "llama3")
                guard high > low else { throw invalid("RoPE high_freq_factor \(high) must be larger than low_freq_factor \(low)") }
                guard let original = originalMaxPositions, original > 0 else {
                    throw invalid("RoPE type 'llama3' needs a positive original_max_position_embeddings")
                }
                return .llama3(factor: factor, lowFrequencyFactor: low, highFrequencyFactor: high, originalMaxPositions: original)
            case let other:
                throw invalid("RoPE type '\(other)' is not supported (default, linear and llama3 are)")
            }
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
        let parameters = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
        let scaling = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeScaling)
        // transformers 5 keeps the type in rope_parameters, transformers 4 in rope_scaling.
        let scaled = [(parameters, CodingKeys.ropeParameters), (scaling, CodingKeys.ropeScaling)]
            .first { $0.0.map { ($0.ropeType ?? "default") != "default" } ?? false }
        ropeScaling = try scaled.map { try $0.0!.scaling(codingPath: [$0.1]) } ?? .none
        ropeTheta = try parameters?.ropeTheta ?? c.decodeIfPresent(Float.self, forKey: .ropeTheta) ?? 10000
        guard ropeTheta > 0, ropeTheta.isFinite else {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.ropeTheta], debugDescription: "rope_theta \(ropeTheta) must be positive"))
        }
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "llama"
        switch modelType {
        case "qwen2":
            if try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) == true {
                throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.useSlidingWindow], debugDescription: "use_sliding_window true is not supported (Qwen2's sliding-window attention is not implemented); set it to false for full attention"))
            }
            attentionBiases = .qwen2
            mlpBias = false
        case "llama":
            attentionBiases = .all(try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false)
            mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? false
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.modelType], debugDescription: "model_type '\(modelType)' is not a Llama-family decoder (llama, qwen2)"))
        }
        maxPositionEmbeddings = try limits.check(
            c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048, CodingKeys.maxPositionEmbeddings,
            in: c, maximum: limits.maximumPositions)
        bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID)
        eosTokenIDs = try decodeTokenIDs(c, .eosTokenIDs)
        if let activation = try c.decodeIfPresent(String.self, forKey: .hiddenActivation), activation != "silu" {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.hiddenActivation], debugDescription: "hidden_act '\(activation)' is not supported (Llama uses silu)"))
        }
    }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let sizes: [(CodingKeys, Int)] = [
            (.hiddenSize, hiddenSize), (.intermediateSize, intermediateSize), (.hiddenLayers, hiddenLayers),
            (.attentionHeads, attentionHeads), (.kvHeads, kvHeads), (.headDimension, headDimension),
            (.vocabularySize, vocabularySize), (.maxPositionEmbeddings, maxPositionEmbeddings),
        ]
        for (key, value) in sizes { try c.encode(value, forKey: key) }
        for (key, value) in [(CodingKeys.rmsNormEpsilon, rmsNormEpsilon), (.ropeTheta, ropeTheta)] { try c.encode(value, forKey: key) }
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(modelType, forKey: .modelType)
        // Qwen2's biases are implied by its model_type; Llama states them.
        if modelType == "qwen2" {
            try c.encode(false, forKey: .useSlidingWindow)
        } else {
            try c.encode(attentionBias, forKey: .attentionBias)
            try c.encode(mlpBias, forKey: .mlpBias)
        }
        try c.encodeIfPresent(bosTokenID, forKey: .bosTokenID)
        try c.encode(eosTokenIDs, forKey: .eosTokenIDs)
        try c.encode("silu", forKey: .hiddenActivation)
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
        let bias = configuration.attentionBiases
        query = try Linear(&weights, prefix + ".q_proj", input: hidden, output: heads * depth, bias: bias.query)
        key = try Linear(&weights, prefix + ".k_proj", input: hidden, output: kvHeads * depth, bias: bias.key)
        value = try Linear(&weights, prefix + ".v_proj", input: hidden, output: kvHeads * depth, bias: bias.value)
        output = try Linear(&weights, prefix + ".o_proj", input: heads * depth, output: hidden, bias: bias.output)
    }

    /// `x` is `[1, T, H]`: the rows of `segments[i]` belong to the sequence whose cache is `caches[i]`.
    func callAsFunction(_ x: Tensor, rotary: RotaryEmbedding, layer: Int, caches: inout [KVCache], segments: [Range<Int>]) -> Tensor {
        let q = query(x).splittingHeads(configuration.attentionHeads).applyingRotaryEmbedding(rotary)
        let k = key(x).splittingHeads(configuration.kvHeads).applyingRotaryEmbedding(rotary)
        let v = value(x).splittingHeads(configuration.kvHeads)
        let attended = KVCache.attention(query: q, key: k, value: v, layer: layer, caches: &caches, segments: segments)
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

    func callAsFunction(_ x: Tensor, rotary: RotaryEmbedding, layer: Int, caches: inout [KVCache], segments: [Range<Int>]) -> Tensor {
        let h = x + attention(attentionNorm(x), rotary: rotary, layer: layer, caches: &caches, segments: segments)
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
public struct LlamaModel: CausalLanguageModel, HiddenStateDecoder {
    /// The configuration the model was built from.
    public let configuration: LlamaConfiguration
    /// The model's weights by checkpoint name, as kept in memory (shared storage with the model).
    public let weights: [String: WeightMatrix]
    let embedTokens: WeightMatrix
    let layers: [LlamaBlock]
    let norm: RMSNorm
    public let lmHead: WeightMatrix
    /// The RoPE inverse frequencies, scaled as the configuration says.
    let inverseFrequencies: [Float]

    /// Builds the model from tensors named as in the checkpoint, checking every name and shape.
    ///
    /// - Throws: ``ModelError`` naming a missing, unexpected or wrongly shaped tensor.
    public init(configuration: LlamaConfiguration, weights: [String: Tensor], origin: String = "the given weights") throws(ModelError) {
        try self.init(configuration: configuration, store: WeightStore(weights, origin: origin))
    }

    init(configuration: LlamaConfiguration, store: consuming WeightStore) throws(ModelError) {
        self.configuration = configuration
        var store = store
        let (hidden, vocabulary) = (configuration.hiddenSize, configuration.vocabularySize)
        embedTokens = try store.takeMatrix("model.embed_tokens.weight", shape: [vocabulary, hidden])
        var blocks: [LlamaBlock] = []
        for index in 0..<configuration.hiddenLayers {
            blocks.append(try LlamaBlock(&store, "model.layers.\(index)", configuration))
        }
        layers = blocks
        norm = try RMSNorm(&store, "model.norm", dimension: hidden, epsilon: configuration.rmsNormEpsilon)
        lmHead = configuration.tieWordEmbeddings ? embedTokens : try store.takeMatrix("lm_head.weight", shape: [vocabulary, hidden])
        inverseFrequencies = configuration.ropeScaling.inverseFrequencies(headDimension: configuration.headDimension, theta: configuration.ropeTheta)
        try store.checkAllUsed()
        weights = store.takenWeights
    }

    /// Loads `config.json` and the safetensors weights of a Hugging Face model directory.
    ///
    /// - Parameter precision: `.stored` (the default) keeps F16/BF16 matrices in half precision and
    ///   maps F32 ones in place; `.float32` converts everything to float32 buffers.
    public init(directory: URL, precision: WeightPrecision = .stored) throws(ModelError) {
        let configuration = try ModelDirectory.configuration(LlamaConfiguration.self, in: directory)
        let (weights, origin) = try ModelDirectory.weights(in: directory, precision: precision) { Self.sanitize($0, configuration: configuration) }
        try self.init(configuration: configuration, store: WeightStore(loaded: weights, origin: origin))
    }

    /// The model's weights as float32 tensors by checkpoint name (half-precision ones converted, in
    /// new buffers: for a model kept in half precision this doubles its memory while held).
    public var parameters: [String: Tensor] { weights.mapValues(\.floats) }

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

    public func embed(tokens: [Int]) throws(ModelError) -> Tensor { try embedRows(embedTokens, tokens) }

    /// The normalised last hidden states `[ΣT, H]` of several sequences' new rows (``HiddenStateDecoder``).
    public func finalHiddenStates(_ embeddings: [Tensor], positionIDs: [[Int]?], caches: inout [KVCache]) throws(ModelError) -> Tensor {
        let positions = try checkedPositions(
            embeddings, positionIDs: positionIDs, caches: caches, layers: layers.count, positions: configuration.maxPositionEmbeddings,
            limit: "this \(configuration.modelType) model was configured for \(configuration.maxPositionEmbeddings) (max_position_embeddings)")
        let segments = KVCache.segments(embeddings)
        let rotary = RotaryEmbedding(inverseFrequencies: inverseFrequencies, positions: positions)
        var h = (embeddings.count == 1 ? embeddings[0] : Tensor.concatenated(embeddings, along: 0)).unsqueezed(0)
        for (index, layer) in layers.enumerated() {
            h = layer(h, rotary: rotary, layer: index, caches: &caches, segments: segments)
        }
        KVCache.advance(&caches, segments: segments, positions: positions)
        return norm(h).squeezed(0)
    }
}
