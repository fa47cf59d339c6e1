import TensorCore

/// A vision encoder that turns images into discrete tokens of a frozen codebook (docs/architecture.md).
///
/// Runtimes (SigLIP-VQ, …) implement it; bundles declare which runtime loads them. An encoder is
/// used in two steps so pixels can be batched and cached:
///
/// ```swift
/// let pixels = try encoder.preprocess(image)                      // [3, H, W]
/// let tokens = try encoder.encode(pixels.unsqueezed(0))[0]        // one VisualTokens per image
/// precondition(tokens.codebookHash == encoder.codebook.hash)
/// ```
public protocol VisionEncoder: Sendable {
    /// The codebook this encoder quantizes into; its hash is what backends must match.
    var codebook: any CodebookSpace { get }
    /// The image size the encoder expects after preprocessing, in pixels.
    var imageSize: (height: Int, width: Int) { get }
    /// The patch grid, and so the number of tokens per image (`rows × columns`).
    var grid: (rows: Int, columns: Int) { get }

    /// Resizes and normalises an image as the encoder's manifest says (image size, mean, std),
    /// giving pixel values shaped `[3, height, width]`.
    func preprocess(_ image: RGBImage) throws -> Tensor

    /// Encodes a batch of preprocessed images `[batch, 3, height, width]` into one ``VisualTokens``
    /// per image (codes, positions, residual norms; `features` holds the quantized vectors).
    func encode(_ pixels: Tensor) throws -> [VisualTokens]
}

/// The differentiable forward of a trainable encoder: what CRAFT's objective needs.
public struct DifferentiableEncoding: Sendable {
    /// One token set per image; each `features` is its slice of `quantization.quantized`
    /// (`z_q_hat`), so a backend fed these tokens back-propagates into the encoder.
    public var tokens: [VisualTokens]
    /// The straight-through quantization of the whole batch, shaped `[batch, tokens, D]`; feed it to
    /// ``Codebook/commitmentLoss(_:)``.
    public var quantization: StraightThroughQuantization

    /// Creates an encoding.
    public init(tokens: [VisualTokens], quantization: StraightThroughQuantization) {
        self.tokens = tokens
        self.quantization = quantization
    }
}

/// A vision encoder whose weights CRAFT fine-tunes (only the encoder is trained; the codebook,
/// projector and surrogate backend stay frozen).
public protocol TrainableVisionEncoder: VisionEncoder {
    /// The trainable tensors by their checkpoint (Hugging Face) names.
    var parameters: [String: Tensor] { get }

    /// Replaces parameters by name (for an optimizer step).
    ///
    /// - Throws: when a name is unknown or a shape differs; nothing is changed then.
    mutating func setParameters(_ updates: [String: Tensor]) throws

    /// The forward pass recorded for differentiation: `parameters` (marked with
    /// `requiringGradient()`) in place of the stored ones, then the straight-through estimator
    /// (``Codebook/straightThrough(_:threads:)``) on the encoder output.
    func encodeDifferentiably(_ pixels: Tensor, parameters: [String: Tensor]) throws -> DifferentiableEncoding
}

/// A ``VisionEncoder`` whose images are the rows of a feature table it carries, addressed by index
/// (the `table-encoder` runtime), rather than pictures: it has no pixels to preprocess, and commands
/// pass it an image index where other encoders take an image file.
///
/// ```swift
/// if let indexed = encoder as? any IndexedImageEncoder {
///     let tokens = try indexed.tokens(forImage: 3)   // 0..<indexed.imageCount
/// }
/// ```
public protocol IndexedImageEncoder: VisionEncoder {
    /// The number of images in the table: their indices are `0..<imageCount`.
    var imageCount: Int { get }
    /// The visual tokens of image `index`.
    ///
    /// - Throws: when `index` is outside `0..<imageCount`.
    func tokens(forImage index: Int) throws -> VisualTokens
}
