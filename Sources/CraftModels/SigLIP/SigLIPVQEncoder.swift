// A SigLIP vision tower quantized into a frozen codebook at a configured layer: the encoder side of
// CRAFT (docs/architecture.md, docs/runtimes.md), trainable through the straight-through estimator.
import CraftCore
import CraftImaging
import Foundation
import TensorCore

/// A ``SiglipVisionModel`` whose patch tokens, taken after a chosen layer, are quantized into a frozen
/// ``Codebook``: a CraftCore `TrainableVisionEncoder`.
///
/// The tower's width must equal the codebook dimension. `quantizeAfterLayer` picks the quantization
/// point (transformers' `hidden_states[L]`, before the post-layernorm); `nil` uses `last_hidden_state`
/// (after the post-layernorm). Only the tower's tensors are trainable; the codebook is frozen.
///
/// ```swift
/// let encoder = try SiglipVQEncoder(tower: tower, codebook: codebook, quantizeAfterLayer: 10)
/// let tokens = try encoder.encode(try encoder.preprocess(image).unsqueezed(0))[0]
/// ```
public struct SiglipVQEncoder: TrainableVisionEncoder {
    /// The vision tower.
    public private(set) var tower: SiglipVisionModel
    /// The frozen codebook (concrete, for the straight-through estimator).
    public let frozenCodebook: Codebook
    /// The layer whose output is quantized, or `nil` for the final (post-layernorm) output.
    public let quantizeAfterLayer: Int?
    /// How images become pixels (size taken from the tower; mean, std and filter from here).
    public let preprocessing: ImagePreprocessing
    /// Worker threads for the nearest-code search.
    public var searchThreads: Int = 1
    /// Whether the tokens' ``VisualTokens/features`` are the continuous encoder output `z_e` instead
    /// of the quantized vectors (default `false`).
    ///
    /// For encoders trained with the continuous fine-tuning baseline (quantizer bypassed): codes,
    /// residual norms and positions are computed as usual (pruning and statistics still work), but a
    /// backend reading the tokens gets `z_e` (after L2 normalisation for a `cosine` codebook, the
    /// vectors the codebook compares against). The `siglip-vq` runtime sets it from the manifest's
    /// `config.bypass_quantizer`.
    public var bypassesQuantizer: Bool = false

    /// Creates an encoder.
    ///
    /// - Parameters:
    ///   - bypassesQuantizer: give tokens the continuous features `z_e` (see ``bypassesQuantizer``).
    /// - Throws: ``ModelError`` (`shapeMismatch`) when the tower width differs from the codebook
    ///   dimension, (`invalidInput`) when the layer is outside `1...layers`.
    public init(tower: SiglipVisionModel, codebook: Codebook, quantizeAfterLayer: Int? = nil,
                preprocessing: ImagePreprocessing = .siglip, bypassesQuantizer: Bool = false) throws(ModelError) {
        guard tower.configuration.hiddenSize == codebook.dimension else {
            throw ModelError(.shapeMismatch, "the SigLIP tower is \(tower.configuration.hiddenSize) wide but the codebook dimension is \(codebook.dimension); use a codebook of the tower's width")
        }
        if let layer = quantizeAfterLayer, !(1...tower.configuration.hiddenLayers).contains(layer) {
            throw ModelError(.invalidInput, "quantizeAfterLayer \(layer) is outside the tower's layers 1...\(tower.configuration.hiddenLayers)")
        }
        self.tower = tower
        self.frozenCodebook = codebook
        self.quantizeAfterLayer = quantizeAfterLayer
        var recipe = preprocessing
        recipe.width = tower.configuration.imageSize
        recipe.height = tower.configuration.imageSize
        self.preprocessing = recipe
        self.bypassesQuantizer = bypassesQuantizer
    }

    public var codebook: any CodebookSpace { frozenCodebook }
    public var imageSize: (height: Int, width: Int) { (tower.configuration.imageSize, tower.configuration.imageSize) }
    public var grid: (rows: Int, columns: Int) { (tower.configuration.gridSize, tower.configuration.gridSize) }
    public var parameters: [String: Tensor] { tower.parameters }

    public func preprocess(_ image: RGBImage) throws -> Tensor {
        let converted = try Image(width: image.width, height: image.height, colorModel: .rgb, bytes: image.pixels)
        let pixels = try converted.pixelValues(preprocessing)
        return Tensor(pixels.values, shape: pixels.shape)
    }

    /// The continuous features `z_e` `[B, N, D]` at the quantization point.
    public func features(_ pixels: Tensor, tower: SiglipVisionModel) throws -> Tensor {
        try tower(pixelValues: pixels, stopAfterLayer: quantizeAfterLayer).lastHiddenState
    }

    public func encode(_ pixels: Tensor) throws -> [VisualTokens] {
        try withoutGradients {
            let features = try features(pixels, tower: tower)
            let quantization = try frozenCodebook.straightThrough(features, threads: searchThreads)
            return try tokens(quantization)
        }
    }

    public mutating func setParameters(_ updates: [String: Tensor]) throws {
        var merged = tower.parameters
        for (name, value) in updates {
            guard merged[name] != nil else {
                throw ModelError(.unexpectedTensor, "parameter '\(name)' is not a tensor of this SigLIP tower; use names from `parameters`")
            }
            merged[name] = value
        }
        tower = try SiglipVisionModel(configuration: tower.configuration, weights: merged, origin: "the parameter update")
    }

    public func encodeDifferentiably(_ pixels: Tensor, parameters: [String: Tensor]) throws -> DifferentiableEncoding {
        let trainable = try SiglipVisionModel(configuration: tower.configuration, weights: parameters, origin: "the trainable parameters")
        let quantization = try frozenCodebook.straightThrough(try features(pixels, tower: trainable), threads: searchThreads)
        return DifferentiableEncoding(tokens: try tokens(quantization), quantization: quantization)
    }

    /// One ``VisualTokens`` per image, each with its slice of `quantized` as features (of the
    /// encoder output `z_e` when ``bypassesQuantizer`` is on).
    func tokens(_ quantization: StraightThroughQuantization) throws -> [VisualTokens] {
        let features = bypassesQuantizer ? quantization.encoderOutput : quantization.quantized
        let (batch, count, depth) = (quantization.quantized.shape[0], quantization.quantized.shape[1], frozenCodebook.depth)
        let columns = tower.configuration.gridSize
        let positions = (0..<count).map { GridPosition(row: $0 / columns, column: $0 % columns) }
        let codes = quantization.codes.scalars
        let norms = quantization.search.residualNorms
        return try (0..<batch).map { image in
            try VisualTokens(
                codebookHash: frozenCodebook.hash, grid: grid,
                codes: IndexTensor(Array(codes[(image * count * depth)..<((image + 1) * count * depth)]), shape: [count, depth]),
                positions: positions, residualNorms: Array(norms[(image * count)..<((image + 1) * count)]),
                features: features.sliced(along: 0, image..<(image + 1)).squeezed(0))
        }
    }
}
