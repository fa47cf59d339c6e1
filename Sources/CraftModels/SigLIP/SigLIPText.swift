// SigLIP text tower, ported from transformers' `modeling_siglip.py` (SiglipTextModel): token and learned
// position embeddings, the bidirectional pre-LN encoder shared with the vision tower, a final
// layernorm, and a linear head on the last position (SigLIP pads to max_length, so that is the pad).
import Foundation
import TensorCore

// MARK: - Configuration

/// The text configuration of a SigLIP checkpoint: the `config.json` of a `SiglipTextModel`, or the
/// `text_config` object of a full `SiglipModel` (defaults as transformers' `SiglipTextConfig`).
public struct SiglipTextConfiguration: Codable, Sendable, Equatable {
    public var vocabularySize = 32000
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var hiddenLayers = 12
    public var attentionHeads = 12
    public var maxPositionEmbeddings = 64
    public var layerNormEpsilon: Float = 1e-6
    /// `gelu_pytorch_tanh` (tanh approximation) or `gelu` (exact).
    public var activation = "gelu_pytorch_tanh"
    /// The width of the pooled text embedding (the head's output), by default the hidden size.
    public var projectionSize: Int
    public var padTokenID: Int?

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case hiddenLayers = "num_hidden_layers"
        case attentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings"
        case layerNormEpsilon = "layer_norm_eps"
        case activation = "hidden_act"
        case projectionSize = "projection_size"
        case padTokenID = "pad_token_id"
    }

    /// Creates a configuration; `projectionSize` defaults to `hiddenSize`.
    public init(vocabularySize: Int, hiddenSize: Int, intermediateSize: Int, hiddenLayers: Int, attentionHeads: Int,
                maxPositionEmbeddings: Int, projectionSize: Int? = nil, padTokenID: Int? = nil) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.hiddenLayers = hiddenLayers
        self.attentionHeads = attentionHeads
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.projectionSize = projectionSize ?? hiddenSize
        self.padTokenID = padTokenID
    }

    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let limits = ModelConfigurationLimits.self
        vocabularySize = try limits.decode(.vocabularySize, in: c, default: 32000, maximum: limits.maximumVocabularySize)
        hiddenSize = try limits.decode(.hiddenSize, in: c, default: 768, maximum: limits.maximumDimension)
        intermediateSize = try limits.decode(.intermediateSize, in: c, default: 3072, maximum: limits.maximumDimension)
        hiddenLayers = try limits.decode(.hiddenLayers, in: c, default: 12, maximum: limits.maximumLayers)
        attentionHeads = try limits.decode(.attentionHeads, in: c, default: 12, maximum: limits.maximumHeads)
        maxPositionEmbeddings = try limits.decode(.maxPositionEmbeddings, in: c, default: 64, maximum: limits.maximumPositions)
        layerNormEpsilon = try c.decodeIfPresent(Float.self, forKey: .layerNormEpsilon) ?? 1e-6
        activation = try c.decodeIfPresent(String.self, forKey: .activation) ?? "gelu_pytorch_tanh"
        projectionSize = try limits.decode(.projectionSize, in: c, default: hiddenSize, maximum: limits.maximumDimension)
        padTokenID = try c.decodeIfPresent(Int.self, forKey: .padTokenID)
        try limits.checkElements([vocabularySize, hiddenSize], of: "token embedding (vocab_size × hidden_size)", CodingKeys.vocabularySize, in: c)
        try limits.checkElements([maxPositionEmbeddings, hiddenSize], of: "position embedding (max_position_embeddings × hidden_size)", CodingKeys.maxPositionEmbeddings, in: c)
        try limits.checkElements([intermediateSize, hiddenSize], of: "MLP projection (intermediate_size × hidden_size)", CodingKeys.intermediateSize, in: c)
        guard vocabularySize > 0, hiddenSize > 0, intermediateSize > 0, hiddenLayers > 0, attentionHeads > 0,
              maxPositionEmbeddings > 0, projectionSize > 0, hiddenSize % attentionHeads == 0 else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "sizes must be positive and hidden_size must divide by num_attention_heads"))
        }
        guard ["gelu_pytorch_tanh", "gelu_new", "gelu"].contains(activation) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.activation], debugDescription: "hidden_act '\(activation)' is not supported (gelu_pytorch_tanh or gelu)"))
        }
    }

    var layerShape: SiglipLayerShape {
        SiglipLayerShape(hiddenSize: hiddenSize, intermediateSize: intermediateSize, attentionHeads: attentionHeads,
                         layerNormEpsilon: layerNormEpsilon, exactGELU: activation == "gelu")
    }
}

// MARK: - Model

/// The outputs of ``SiglipTextModel``.
public struct SiglipTextOutput: Sendable {
    /// `[B, T, H]` after the final layernorm.
    public var lastHiddenState: Tensor
    /// `[B, projectionSize]`: the head applied to the last position.
    public var poolerOutput: Tensor
}

/// A SigLIP text tower (`SiglipTextModel`) in Hugging Face layout: the frozen text side of CRAFT's
/// contrastive loss.
///
/// Feed token ids padded to `max_position_embeddings` with the pad id, as SigLIP was trained
/// (`padding="max_length"`); the pooled embedding is the head on the last position. Tensor names are
/// canonicalised without the `text_model.` prefix of published checkpoints (transformers 5 saves
/// `SiglipTextModel` without it); a full `SiglipModel` directory contributes only its `text_model.`
/// tensors.
public struct SiglipTextModel: Sendable {
    /// The configuration the model was built from.
    public let configuration: SiglipTextConfiguration
    /// The model's tensors by canonical name.
    public let parameters: [String: Tensor]
    let tokenEmbedding: Tensor
    let positionEmbedding: Tensor
    let layers: [SiglipEncoderLayer]
    let finalNorm: LayerNorm
    let head: Linear

    /// Builds the model from tensors with canonical names, checking every name and shape.
    public init(configuration: SiglipTextConfiguration, weights: [String: Tensor], origin: String = "the given weights") throws(ModelError) {
        self.configuration = configuration
        var store = WeightStore(weights, origin: origin)
        let hidden = configuration.hiddenSize
        tokenEmbedding = try store.take("embeddings.token_embedding.weight", shape: [configuration.vocabularySize, hidden])
        positionEmbedding = try store.take("embeddings.position_embedding.weight", shape: [configuration.maxPositionEmbeddings, hidden])
        var layers: [SiglipEncoderLayer] = []
        for index in 0..<configuration.hiddenLayers {
            layers.append(try SiglipEncoderLayer(&store, "encoder.layers.\(index)", configuration.layerShape))
        }
        self.layers = layers
        finalNorm = try LayerNorm(&store, "final_layer_norm", dimension: hidden, epsilon: configuration.layerNormEpsilon)
        head = try Linear(&store, "head", input: hidden, output: configuration.projectionSize)
        try store.checkAllUsed()
        parameters = store.takenTensors
    }

    /// Loads `config.json` (a `SiglipTextModel` config, or a `SiglipModel` config's `text_config`) and the
    /// safetensors weights of a Hugging Face model directory.
    public init(directory: URL) throws(ModelError) {
        let (configuration, fullModel) = try ModelDirectory.towerConfiguration(SiglipTextConfiguration.self, in: directory, compositeKey: "text_config")
        let (tensors, origin) = try ModelDirectory.weights(in: directory) { name in
            if name.hasSuffix("position_ids") { return nil }
            if name.hasPrefix("text_model.") { return String(name.dropFirst("text_model.".count)) }
            return fullModel ? nil : name
        }
        try self.init(configuration: configuration, weights: tensors.mapValues(\.floats), origin: origin)
    }

    /// Runs the tower on a batch of token id rows of equal length (at most `max_position_embeddings`).
    ///
    /// - Throws: ``ModelError`` with code `invalidInput` for an empty batch, rows of different lengths,
    ///   too many positions or an id outside the vocabulary.
    public func callAsFunction(tokens: [[Int]]) throws(ModelError) -> SiglipTextOutput {
        guard let length = tokens.first?.count, length > 0, tokens.allSatisfy({ $0.count == length }) else {
            throw ModelError(.invalidInput, "the text batch is empty or its rows differ in length; pad every row to the same length (SigLIP uses max_length \(configuration.maxPositionEmbeddings))")
        }
        guard length <= configuration.maxPositionEmbeddings else {
            throw ModelError(.invalidInput, "text rows have \(length) tokens but this SigLIP text tower has \(configuration.maxPositionEmbeddings) positions; truncate them")
        }
        let flat = tokens.flatMap { $0 }
        if let bad = flat.first(where: { $0 < 0 || $0 >= configuration.vocabularySize }) {
            throw ModelError(.invalidInput, "token id \(bad) is outside the text vocabulary of \(configuration.vocabularySize); check the tokenizer matches the model")
        }
        let embedded: Tensor
        do {
            embedded = try tokenEmbedding.rows(at: IndexTensor(flat).reshaped([tokens.count, length]))
        } catch {
            throw ModelError(.invalidInput, error.message)
        }
        var h = embedded + positionEmbedding.sliced(along: 0, 0..<length)
        for layer in layers { h = layer(h) }
        let last = finalNorm(h)
        let pooled = head(last.sliced(along: 1, (length - 1)..<length).squeezed(1))
        return SiglipTextOutput(lastHiddenState: last, poolerOutput: pooled)
    }
}
