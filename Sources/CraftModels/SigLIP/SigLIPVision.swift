// SigLIP vision tower, ported from transformers' `modeling_siglip.py` (SiglipVisionModel): patch
// embedding (the stride-`patch` convolution as unfold + matmul), learned positions, pre-LN encoder with
// `gelu_pytorch_tanh`, post-layernorm, and the attention-pooling head (`MultiheadAttention` on a probe).
import Foundation
import TensorCore

// MARK: - Configuration

/// The vision configuration of a SigLIP checkpoint: the `config.json` of a `SiglipVisionModel`, or the
/// `vision_config` object of a full `SiglipModel` (defaults as transformers' `SiglipVisionConfig`).
public struct SiglipVisionConfiguration: Codable, Sendable, Equatable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var hiddenLayers = 12
    public var attentionHeads = 12
    public var channels = 3
    public var imageSize = 224
    public var patchSize = 16
    public var layerNormEpsilon: Float = 1e-6
    /// `gelu_pytorch_tanh` (tanh approximation) or `gelu` (exact).
    public var activation = "gelu_pytorch_tanh"
    /// Whether the checkpoint has the attention-pooling head (`pooler_output`).
    public var useHead = true

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case hiddenLayers = "num_hidden_layers"
        case attentionHeads = "num_attention_heads"
        case channels = "num_channels"
        case imageSize = "image_size"
        case patchSize = "patch_size"
        case layerNormEpsilon = "layer_norm_eps"
        case activation = "hidden_act"
        case useHead = "vision_use_head"
    }

    /// Creates a configuration.
    public init(hiddenSize: Int, intermediateSize: Int, hiddenLayers: Int, attentionHeads: Int, imageSize: Int, patchSize: Int,
                useHead: Bool = true) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.hiddenLayers = hiddenLayers
        self.attentionHeads = attentionHeads
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.useHead = useHead
    }

    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let limits = ModelConfigurationLimits.self
        hiddenSize = try limits.decode(.hiddenSize, in: c, default: 768, maximum: limits.maximumDimension)
        intermediateSize = try limits.decode(.intermediateSize, in: c, default: 3072, maximum: limits.maximumDimension)
        hiddenLayers = try limits.decode(.hiddenLayers, in: c, default: 12, maximum: limits.maximumLayers)
        attentionHeads = try limits.decode(.attentionHeads, in: c, default: 12, maximum: limits.maximumHeads)
        channels = try limits.decode(.channels, in: c, default: 3, maximum: limits.maximumChannels)
        imageSize = try limits.decode(.imageSize, in: c, default: 224, maximum: limits.maximumImageSize)
        patchSize = try limits.decode(.patchSize, in: c, default: 16, maximum: limits.maximumImageSize)
        try limits.checkElements([hiddenSize, channels, patchSize, patchSize], of: "patch embedding (hidden_size × num_channels × patch_size²)", CodingKeys.patchSize, in: c)
        try limits.checkElements([(imageSize / patchSize) * (imageSize / patchSize), hiddenSize], of: "position embedding ((image_size / patch_size)² × hidden_size)", CodingKeys.imageSize, in: c)
        try limits.checkElements([intermediateSize, hiddenSize], of: "MLP projection (intermediate_size × hidden_size)", CodingKeys.intermediateSize, in: c)
        layerNormEpsilon = try c.decodeIfPresent(Float.self, forKey: .layerNormEpsilon) ?? 1e-6
        activation = try c.decodeIfPresent(String.self, forKey: .activation) ?? "gelu_pytorch_tanh"
        useHead = try c.decodeIfPresent(Bool.self, forKey: .useHead) ?? true
        guard hiddenSize > 0, intermediateSize > 0, hiddenLayers > 0, attentionHeads > 0, channels > 0, patchSize > 0,
              imageSize >= patchSize, hiddenSize % attentionHeads == 0 else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "sizes must be positive, image_size at least patch_size, and hidden_size must divide by num_attention_heads"))
        }
        guard ["gelu_pytorch_tanh", "gelu_new", "gelu"].contains(activation) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.activation], debugDescription: "hidden_act '\(activation)' is not supported (gelu_pytorch_tanh or gelu)"))
        }
    }

    /// The number of patches per side.
    public var gridSize: Int { imageSize / patchSize }
    /// The number of patch tokens per image.
    public var patchCount: Int { gridSize * gridSize }
}

/// The sizes the encoder layers of both SigLIP towers share.
struct SiglipLayerShape: Sendable {
    var hiddenSize: Int
    var intermediateSize: Int
    var attentionHeads: Int
    var layerNormEpsilon: Float
    var exactGELU: Bool
}

extension SiglipVisionConfiguration {
    var layerShape: SiglipLayerShape {
        SiglipLayerShape(hiddenSize: hiddenSize, intermediateSize: intermediateSize, attentionHeads: attentionHeads,
                         layerNormEpsilon: layerNormEpsilon, exactGELU: activation == "gelu")
    }
}

// MARK: - Attention

struct SiglipAttention: Sendable {
    let heads: Int
    let query, key, value, output: Linear

    init(_ weights: inout WeightStore, _ prefix: String, _ configuration: SiglipLayerShape) throws(ModelError) {
        let hidden = configuration.hiddenSize
        heads = configuration.attentionHeads
        query = try Linear(&weights, prefix + ".q_proj", input: hidden, output: hidden)
        key = try Linear(&weights, prefix + ".k_proj", input: hidden, output: hidden)
        value = try Linear(&weights, prefix + ".v_proj", input: hidden, output: hidden)
        output = try Linear(&weights, prefix + ".out_proj", input: hidden, output: hidden)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let attended = Tensor.scaledDotProductAttention(
            query: query(x).splittingHeads(heads), key: key(x).splittingHeads(heads), value: value(x).splittingHeads(heads))
        return output(attended.mergingHeads())
    }
}

// MARK: - MLP

struct SiglipMLP: Sendable {
    let up, down: Linear
    let exactGELU: Bool

    init(_ weights: inout WeightStore, _ prefix: String, _ configuration: SiglipLayerShape) throws(ModelError) {
        up = try Linear(&weights, prefix + ".fc1", input: configuration.hiddenSize, output: configuration.intermediateSize)
        down = try Linear(&weights, prefix + ".fc2", input: configuration.intermediateSize, output: configuration.hiddenSize)
        exactGELU = configuration.exactGELU
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let h = up(x)
        return down(exactGELU ? h.gelu() : h.geluTanh())
    }
}

// MARK: - Block

struct SiglipEncoderLayer: Sendable {
    let attentionNorm: LayerNorm
    let attention: SiglipAttention
    let mlpNorm: LayerNorm
    let mlp: SiglipMLP

    init(_ weights: inout WeightStore, _ prefix: String, _ configuration: SiglipLayerShape) throws(ModelError) {
        let (hidden, epsilon) = (configuration.hiddenSize, configuration.layerNormEpsilon)
        attentionNorm = try LayerNorm(&weights, prefix + ".layer_norm1", dimension: hidden, epsilon: epsilon)
        attention = try SiglipAttention(&weights, prefix + ".self_attn", configuration)
        mlpNorm = try LayerNorm(&weights, prefix + ".layer_norm2", dimension: hidden, epsilon: epsilon)
        mlp = try SiglipMLP(&weights, prefix + ".mlp", configuration)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let h = x + attention(attentionNorm(x))
        return h + mlp(mlpNorm(h))
    }
}

/// The attention-pooling head (`SiglipMultiheadAttentionPoolingHead`): a learned probe attends over the
/// tokens through `nn.MultiheadAttention`, then a residual MLP.
struct SiglipPoolingHead: Sendable {
    let heads: Int
    let probe: Tensor
    let inputWeight, inputBias: Tensor
    let output: Linear
    let norm: LayerNorm
    let mlp: SiglipMLP

    init(_ weights: inout WeightStore, _ prefix: String, _ configuration: SiglipVisionConfiguration) throws(ModelError) {
        let hidden = configuration.hiddenSize
        heads = configuration.attentionHeads
        probe = try weights.take(prefix + ".probe", shape: [1, 1, hidden])
        inputWeight = try weights.take(prefix + ".attention.in_proj_weight", shape: [3 * hidden, hidden])
        inputBias = try weights.take(prefix + ".attention.in_proj_bias", shape: [3 * hidden])
        output = try Linear(&weights, prefix + ".attention.out_proj", input: hidden, output: hidden)
        norm = try LayerNorm(&weights, prefix + ".layernorm", dimension: hidden, epsilon: configuration.layerNormEpsilon)
        mlp = try SiglipMLP(&weights, prefix + ".mlp", configuration.layerShape)
    }

    /// `[B, N, H]` → `[B, H]`.
    func callAsFunction(_ x: Tensor) -> Tensor {
        let (batch, hidden) = (x.shape[0], x.shape[2])
        let weights = inputWeight.chunked(3, along: 0), biases = inputBias.chunked(3, along: 0)
        let q = probe.expanded(to: [batch, 1, hidden]).linear(weight: weights[0], bias: biases[0])
        let k = x.linear(weight: weights[1], bias: biases[1])
        let v = x.linear(weight: weights[2], bias: biases[2])
        let attended = Tensor.scaledDotProductAttention(
            query: q.splittingHeads(heads), key: k.splittingHeads(heads), value: v.splittingHeads(heads))
        let h = output(attended.mergingHeads())
        return (h + mlp(norm(h))).squeezed(1)
    }
}

// MARK: - Model

/// The outputs of ``SiglipVisionModel``.
public struct SiglipVisionOutput: Sendable {
    /// `[B, N, H]`: the tokens after the post-layernorm.
    public var lastHiddenState: Tensor
    /// `[B, H]`: the attention-pooled image feature, when the model has a head.
    public var poolerOutput: Tensor?
    /// `[B, N, H]` hidden states after the requested layers (1-based, as transformers' `hidden_states[L]`;
    /// 0 is the embeddings), before any post-layernorm.
    public var hiddenStates: [Int: Tensor]
}

/// A SigLIP vision tower (`SiglipVisionModel`) in Hugging Face layout.
///
/// ```swift
/// let tower = try SiglipVisionModel(directory: URL(fileURLWithPath: "siglip-base-patch16-224"))
/// let out = try tower(pixelValues: pixels)          // pixels [B, 3, 224, 224]
/// out.lastHiddenState                               // [B, 196, 768]
/// ```
/// Tensor names are canonicalised without the `vision_model.` prefix that published checkpoints carry
/// (transformers 5 saves without it); `position_ids` buffers are dropped; a full `SiglipModel`
/// checkpoint contributes only its `vision_model.` tensors. Differentiable with respect to the pixels and
/// to parameters marked with `requiringGradient()` (build the model from ``parameters``).
public struct SiglipVisionModel: Sendable {
    /// The configuration the model was built from.
    public let configuration: SiglipVisionConfiguration
    /// The model's tensors by canonical name.
    public let parameters: [String: Tensor]
    let patchWeight: Tensor
    let patchBias: Tensor
    let positionEmbedding: Tensor
    let layers: [SiglipEncoderLayer]
    let postNorm: LayerNorm
    let head: SiglipPoolingHead?

    /// Builds the model from tensors with canonical names, checking every name and shape.
    public init(configuration: SiglipVisionConfiguration, weights: [String: Tensor], origin: String = "the given weights") throws(ModelError) {
        self.configuration = configuration
        var store = WeightStore(weights, origin: origin)
        let (hidden, patch, channels) = (configuration.hiddenSize, configuration.patchSize, configuration.channels)
        patchWeight = try store.take("embeddings.patch_embedding.weight", shape: [hidden, channels, patch, patch])
            .reshaped([hidden, channels * patch * patch])
        patchBias = try store.take("embeddings.patch_embedding.bias", shape: [hidden])
        positionEmbedding = try store.take("embeddings.position_embedding.weight", shape: [configuration.patchCount, hidden])
        var layers: [SiglipEncoderLayer] = []
        for index in 0..<configuration.hiddenLayers {
            layers.append(try SiglipEncoderLayer(&store, "encoder.layers.\(index)", configuration.layerShape))
        }
        self.layers = layers
        postNorm = try LayerNorm(&store, "post_layernorm", dimension: hidden, epsilon: configuration.layerNormEpsilon)
        head = configuration.useHead ? try SiglipPoolingHead(&store, "head", configuration) : nil
        try store.checkAllUsed()
        parameters = store.takenTensors
    }

    /// Loads `config.json` (a `SiglipVisionModel` config, or a `SiglipModel` config's `vision_config`) and
    /// the safetensors weights of a Hugging Face model directory.
    public init(directory: URL) throws(ModelError) {
        let (configuration, fullModel) = try ModelDirectory.towerConfiguration(SiglipVisionConfiguration.self, in: directory, compositeKey: "vision_config")
        let (tensors, origin) = try ModelDirectory.weights(in: directory) { Self.sanitize($0, fullModel: fullModel) }
        try self.init(configuration: configuration, weights: tensors.mapValues(\.floats), origin: origin)
    }

    static func sanitize(_ name: String, fullModel: Bool) -> String? {
        if name.hasSuffix("position_ids") { return nil }
        if name.hasPrefix("vision_model.") { return String(name.dropFirst("vision_model.".count)) }
        return fullModel ? nil : name
    }

    /// Whether the model has the attention-pooling head.
    public var hasHead: Bool { head != nil }

    /// Runs the tower on `[B, C, imageSize, imageSize]` pixels (already normalised as the checkpoint's
    /// processor does).
    ///
    /// - Parameters:
    ///   - pixelValues: `[B, C, H, W]` with `H = W = imageSize`.
    ///   - hiddenStatesAfter: layers (1-based; 0 = embeddings) whose outputs to return in
    ///     ``SiglipVisionOutput/hiddenStates``.
    ///   - stopAfterLayer: when set, run only that many encoder layers and return their output as
    ///     `lastHiddenState` without the post-layernorm or head (the quantisation point of a VQ tower).
    /// - Throws: ``ModelError`` with code `invalidInput` for a wrong pixel shape or layer index.
    public func callAsFunction(pixelValues: Tensor, hiddenStatesAfter: Set<Int> = [], stopAfterLayer: Int? = nil) throws(ModelError) -> SiglipVisionOutput {
        let c = configuration
        guard pixelValues.rank == 4, pixelValues.shape[0] > 0, pixelValues.shape[1] == c.channels,
              pixelValues.shape[2] == c.imageSize, pixelValues.shape[3] == c.imageSize else {
            throw ModelError(.invalidInput, "pixel values have shape \(pixelValues.shape) but this SigLIP tower takes [batch, \(c.channels), \(c.imageSize), \(c.imageSize)]; resize the images to \(c.imageSize)×\(c.imageSize)")
        }
        if let bad = hiddenStatesAfter.first(where: { $0 < 0 || $0 > c.hiddenLayers }) {
            throw ModelError(.invalidInput, "hidden state \(bad) was asked for but the tower has layers 0...\(c.hiddenLayers)")
        }
        if let stop = stopAfterLayer, stop < 0 || stop > c.hiddenLayers {
            throw ModelError(.invalidInput, "stopAfterLayer \(stop) is outside 0...\(c.hiddenLayers)")
        }
        var h = embed(pixelValues)
        var states: [Int: Tensor] = [:]
        if hiddenStatesAfter.contains(0) { states[0] = h }
        let depth = stopAfterLayer ?? layers.count
        for (index, layer) in layers.prefix(depth).enumerated() {
            h = layer(h)
            if hiddenStatesAfter.contains(index + 1) { states[index + 1] = h }
        }
        if stopAfterLayer != nil { return SiglipVisionOutput(lastHiddenState: h, poolerOutput: nil, hiddenStates: states) }
        let last = postNorm(h)
        return SiglipVisionOutput(lastHiddenState: last, poolerOutput: head.map { $0(last) }, hiddenStates: states)
    }

    /// The pooled image feature `[B, H]` of tokens taken at a quantization point: the layers after
    /// `layer`, the post-layernorm and the attention-pooling head run on `hidden`; `nil` when the
    /// tower has no head.
    ///
    /// CRAFT's contrastive term pools the *quantized* tokens this way (`z_q_hat` through the rest of
    /// the tower), so it applies to towers that quantize before their last layer as well.
    ///
    /// - Parameters:
    ///   - hidden: `[B, N, H]` tokens at the quantization point.
    ///   - layer: the encoder layer (1-based) whose output `hidden` replaces; `nil` when `hidden` is
    ///     the tower's final output after the post-layernorm (only the head runs then).
    /// - Throws: ``ModelError`` (`invalidInput`) for a layer outside `0...hiddenLayers` or tokens of
    ///   another shape than the tower's.
    public func pooledOutput(continuingFrom hidden: Tensor, afterLayer layer: Int?) throws(ModelError) -> Tensor? {
        let c = configuration
        guard hidden.rank == 3, hidden.shape[1] == c.patchCount, hidden.shape[2] == c.hiddenSize else {
            throw ModelError(.invalidInput, "tokens shaped \(hidden.shape) cannot continue through this SigLIP tower, which takes [batch, \(c.patchCount), \(c.hiddenSize)]")
        }
        if let layer, layer < 0 || layer > c.hiddenLayers {
            throw ModelError(.invalidInput, "layer \(layer) is outside 0...\(c.hiddenLayers)")
        }
        guard let head else { return nil }
        guard let layer else { return head(hidden) }
        var h = hidden
        for encoderLayer in layers.dropFirst(layer) { h = encoderLayer(h) }
        return head(postNorm(h))
    }

    /// Patch and position embeddings: `[B, C, S, S]` → `[B, N, H]`.
    func embed(_ pixels: Tensor) -> Tensor {
        let (batch, channels, patch, grid) = (pixels.shape[0], configuration.channels, configuration.patchSize, configuration.gridSize)
        // Unfold: [B, C, g, p, g, p] → [B, g, g, C, p, p] → [B, N, C·p·p], the order of the conv weight.
        let side = grid * patch
        let cropped = side == pixels.shape[2] ? pixels : pixels.sliced(along: 2, 0..<side).sliced(along: 3, 0..<side)
        let patches = cropped.reshaped([batch, channels, grid, patch, grid, patch])
            .permuted([0, 2, 4, 1, 3, 5])
            .reshaped([batch, grid * grid, channels * patch * patch])
        return patches.linear(weight: patchWeight, bias: patchBias) + positionEmbedding
    }
}
