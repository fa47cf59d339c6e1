import CraftCore
import TensorCore

/// Any CraftCore ``TrainableVisionEncoder`` as a ``TrainableEncoder`` for the ``Trainer``.
///
/// The forward is the encoder's `encodeDifferentiably(_:parameters:)`. Pooled features for the
/// contrastive term are, when `poolsEncoderOutput` is on, the mean over tokens of the encoder output
/// `z_e` (in codebook space, so the text embeddings must have the codebook's dimension); otherwise
/// there are none and `L_con` is off.
public struct VisionEncoderTrainingAdapter<Encoder: TrainableVisionEncoder>: TrainableEncoder {
    /// The wrapped encoder (its parameters follow training).
    public private(set) var encoder: Encoder
    /// Whether the mean of `z_e` over tokens serves as the pooled image feature.
    public let poolsEncoderOutput: Bool

    /// Wraps an encoder.
    public init(_ encoder: Encoder, poolsEncoderOutput: Bool = false) {
        self.encoder = encoder
        self.poolsEncoderOutput = poolsEncoderOutput
    }

    /// The encoder's parameters.
    public var parameters: ParameterSet { ParameterSet(encoder.parameters) }
    /// The encoder's codebook size.
    public var codebookEntries: Int { encoder.codebook.entries }

    /// Sets the encoder's parameters.
    public mutating func setParameters(_ parameters: ParameterSet) throws {
        try self.parameters.checkMatches(parameters, what: "the new encoder parameters")
        try encoder.setParameters(parameters.tensors)
    }

    /// The encoder's differentiable forward.
    public func forward(_ inputs: Tensor, parameters: ParameterSet) throws -> EncoderForward {
        let encoding = try encoder.encodeDifferentiably(inputs, parameters: parameters.tensors)
        let quantization = encoding.quantization
        guard quantization.quantized.rank == 3 else {
            throw TrainingError(.invalidLossInput, "the encoder's quantization is shaped \(quantization.quantized.shape); the trainer needs [batch, tokens, D]")
        }
        return EncoderForward(
            quantization: quantization,
            pooledFeatures: poolsEncoderOutput ? quantization.encoderOutput.mean(along: 1) : nil)
    }
}
