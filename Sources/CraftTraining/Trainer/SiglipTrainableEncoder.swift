// A SigLIP vision tower (CraftModels' SiglipVisionModel, ported from transformers' modeling_siglip.py)
// quantized on a frozen codebook, as a TrainableEncoder for CRAFT: every tower tensor is trainable,
// the codebook is not.
import CraftCore
import CraftModels
import TensorCore

/// A SigLIP vision tower whose patch tokens are quantized on a frozen codebook, trainable with CRAFT.
///
/// The quantization point is the tower's output after the post-layernorm (`lastHiddenState`), or the
/// output of encoder layer `quantizeAfterLayer` when given (then without post-layernorm or head, as
/// ``SiglipVisionModel/callAsFunction(pixelValues:hiddenStatesAfter:stopAfterLayer:)`` does).
///
/// The pooled features for the contrastive term come from the *quantized* path, as in the paper:
/// the straight-through `z_q_hat` continues through the layers after the quantization point, the
/// post-layernorm and the attention-pooling head
/// (``SiglipVisionModel/pooledOutput(continuingFrom:afterLayer:)``), so `L_con` works wherever the
/// tower quantizes and its gradient reaches the layers below the quantization point through the
/// estimator. With ``pooling`` `.continuous` (the continuous baseline) the head pools `z_e` instead.
/// A tower without a head has no pooled features, and `L_con` is off.
///
/// Each forward rebuilds the tower from the parameters it is given (differentiable leaves during a
/// training step), so the stored model is never mutated mid-step.
public struct SiglipTrainableEncoder: TrainableEncoder {
    /// The tower's configuration.
    public let configuration: SiglipVisionConfiguration
    /// The frozen codebook.
    public let codebook: Codebook
    /// The encoder layer whose output is quantized; `nil` for the tower's final output.
    public let quantizeAfterLayer: Int?
    /// The tower's tensors by canonical name.
    public private(set) var parameters: ParameterSet
    /// The number of codebook entries.
    public var codebookEntries: Int { codebook.entries }

    /// Which tokens the attention-pooling head pools for the contrastive term.
    public enum Pooling: String, Sendable, Codable {
        /// The straight-through `z_q_hat` (CRAFT).
        case quantized
        /// The continuous `z_e` (the continuous baseline, whose backends read `z_e`).
        case continuous
        /// No pooled features (`L_con` off): the layers after the quantization point do not run.
        case none
    }

    /// What the forward pass pools (``Pooling/quantized`` by default).
    public var pooling = Pooling.quantized

    /// Wraps a tower and a codebook.
    ///
    /// - Throws: ``TrainingError`` (`invalidConfiguration`) when the codebook's dimension differs from
    ///   the tower's hidden size, or `quantizeAfterLayer` is outside `1...hiddenLayers`.
    public init(tower: SiglipVisionModel, codebook: Codebook, quantizeAfterLayer: Int? = nil) throws {
        let configuration = tower.configuration
        guard codebook.dimension == configuration.hiddenSize else {
            throw TrainingError(.invalidConfiguration, "the codebook has dimension \(codebook.dimension) but the SigLIP tower's hidden size is \(configuration.hiddenSize); use a codebook of dimension \(configuration.hiddenSize)")
        }
        if let layer = quantizeAfterLayer, !(1...configuration.hiddenLayers).contains(layer) {
            throw TrainingError(.invalidConfiguration, "quantization layer \(layer) is outside 1...\(configuration.hiddenLayers), the tower's layers")
        }
        self.configuration = configuration
        self.codebook = codebook
        self.quantizeAfterLayer = quantizeAfterLayer
        parameters = ParameterSet(tower.parameters)
    }

    /// Replaces the tower's tensors.
    ///
    /// - Throws: ``TrainingError`` (`parameterMismatch`) when a name or shape differs.
    public mutating func setParameters(_ parameters: ParameterSet) throws {
        try self.parameters.checkMatches(parameters, what: "the new SigLIP parameters")
        self.parameters = parameters
    }

    /// Runs the tower built from `parameters` on pixels `[batch, channels, size, size]` and quantizes
    /// the tokens with the straight-through estimator.
    public func forward(_ inputs: Tensor, parameters: ParameterSet) throws -> EncoderForward {
        let tower = try SiglipVisionModel(configuration: configuration, weights: parameters.tensors, origin: "the trained SigLIP parameters")
        let output = try tower(pixelValues: inputs, stopAfterLayer: quantizeAfterLayer)
        let quantization = try codebook.straightThrough(output.lastHiddenState)
        let pooled: Tensor?
        switch pooling {
        case .quantized: pooled = try tower.pooledOutput(continuingFrom: quantization.quantized, afterLayer: quantizeAfterLayer)
        case .continuous: pooled = try tower.pooledOutput(continuingFrom: quantization.encoderOutput, afterLayer: quantizeAfterLayer)
        case .none: pooled = nil
        }
        return EncoderForward(quantization: quantization, pooledFeatures: pooled)
    }
}

extension SiglipTrainableEncoder {
    /// `L_commit` on the frozen codebook: the depth-1 loss, or for a residual codebook the mean over
    /// levels of each cumulative partial sum's loss (VILA-U's convention, `Codebook.commitmentLoss(_:)`).
    public func commitmentLoss(_ quantization: StraightThroughQuantization) -> Tensor {
        codebook.commitmentLoss(quantization)
    }
}

/// A frozen SigLIP text tower as the contrastive term's text embedder: tokenizes each text, pads to
/// the tower's `max_position_embeddings` with the pad token (as SigLIP's processor with
/// `padding="max_length"`), and returns the pooled output.
public struct SiglipTextEmbedder: TextEmbedder {
    /// The frozen tower.
    public let tower: SiglipTextModel
    /// Turns text into token ids (for example a CraftModels `Tokenizer`'s encoding).
    public let tokenize: @Sendable (String) throws -> [Int]
    /// The id padding each text up to the tower's length.
    public let padToken: Int

    /// Creates an embedder.
    public init(tower: SiglipTextModel, padToken: Int, tokenize: @escaping @Sendable (String) throws -> [Int]) {
        self.tower = tower
        self.padToken = padToken
        self.tokenize = tokenize
    }

    /// The pooled embeddings `[texts.count, hidden]`, without gradients.
    public func embed(_ texts: [String]) throws -> Tensor {
        let length = tower.configuration.maxPositionEmbeddings
        let batch = try texts.map { text -> [Int] in
            let tokens = Array(try tokenize(text).prefix(length))
            return tokens + Array(repeating: padToken, count: length - tokens.count)
        }
        return try withoutGradients { try tower(tokens: batch).poolerOutput }.detached()
    }
}
