// SigLIP image preprocessing, ported from Hugging Face transformers 5.24
// (`SiglipImageProcessorPil` / `PilBackend._preprocess`: convert_rgb, PIL resize, rescale, normalize).

/// How an image becomes a vision encoder's `pixel_values`: RGB, resized, rescaled, normalised.
///
/// The defaults are SigLIP's (`SiglipImageProcessor` in transformers): 224×224, bicubic (Pillow code
/// 3, the transformers default and what published SigLIP checkpoints configure), rescale 1/255, mean
/// and std 0.5 per channel. It decodes from a Hugging Face `preprocessor_config.json`:
///
/// ```swift
/// let config = try JSONDecoder().decode(ImagePreprocessing.self, from: preprocessorJSON)
/// let pixels = try image.pixelValues(config)   // PixelValues(shape: [3, 224, 224], ...)
/// ```
public struct ImagePreprocessing: Sendable, Equatable {
    /// Output width in pixels.
    public var width: Int = 224
    /// Output height in pixels.
    public var height: Int = 224
    /// Whether to resize at all (`do_resize`); when false the image keeps its size.
    public var resize: Bool = true
    /// The resampling filter (`resample`).
    public var resampling: ResamplingFilter = .bicubic
    /// Whether to multiply by ``rescaleFactor`` (`do_rescale`).
    public var rescale: Bool = true
    /// The factor applied to 0...255 samples (`rescale_factor`), kept in double precision as numpy does.
    public var rescaleFactor: Double = 1.0 / 255.0
    /// Whether to subtract ``mean`` and divide by ``std`` (`do_normalize`).
    public var normalize: Bool = true
    /// Per-channel mean (`image_mean`), three values.
    public var mean: [Float] = [0.5, 0.5, 0.5]
    /// Per-channel standard deviation (`image_std`), three values.
    public var std: [Float] = [0.5, 0.5, 0.5]

    /// SigLIP's preprocessing: 224×224 bicubic, rescale 1/255, mean 0.5, std 0.5.
    public static let siglip = ImagePreprocessing()

    /// Creates a preprocessing recipe; every value defaults to SigLIP's.
    public init(
        width: Int = 224, height: Int = 224, resampling: ResamplingFilter = .bicubic,
        mean: [Float] = [0.5, 0.5, 0.5], std: [Float] = [0.5, 0.5, 0.5],
        rescaleFactor: Double = 1.0 / 255.0, resize: Bool = true, rescale: Bool = true, normalize: Bool = true
    ) {
        self.width = width
        self.height = height
        self.resampling = resampling
        self.mean = mean
        self.std = std
        self.rescaleFactor = rescaleFactor
        self.resize = resize
        self.rescale = rescale
        self.normalize = normalize
    }

    func validate() throws {
        guard width > 0, height > 0, width <= 65536, height <= 65536 else {
            throw ImageError(.invalidArgument, "The preprocessing size \(width)x\(height) is invalid; both sides must be between 1 and 65536.")
        }
        guard !normalize || (mean.count == 3 && std.count == 3) else {
            throw ImageError(
                .invalidArgument,
                "Normalisation needs three mean and three std values (one per RGB channel), but got \(mean.count) and \(std.count).")
        }
        guard !normalize || std.allSatisfy({ $0 != 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
            throw ImageError(.invalidArgument, "Normalisation std values must be finite and non-zero and means finite; got mean \(mean), std \(std).")
        }
    }
}

extension ImagePreprocessing: Codable {
    private enum CodingKeys: String, CodingKey {
        case size, resample
        case resize = "do_resize"
        case rescale = "do_rescale"
        case rescaleFactor = "rescale_factor"
        case normalize = "do_normalize"
        case mean = "image_mean"
        case std = "image_std"
    }

    private struct Size: Codable {
        var height: Int?
        var width: Int?
        var shortestEdge: Int?
        enum CodingKeys: String, CodingKey {
            case height, width
            case shortestEdge = "shortest_edge"
        }
    }

    /// Reads the keys of a Hugging Face `preprocessor_config.json`; absent keys keep SigLIP's defaults.
    ///
    /// `size` must be `{"height": H, "width": W}` (a `shortest_edge` size is rejected, since it needs
    /// cropping SigLIP does not use); `resample` must be 1 to 5 (NEAREST is not supported).
    public init(from decoder: any Decoder) throws {
        self.init()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let size = try container.decodeIfPresent(Size.self, forKey: .size) {
            guard let height = size.height, let width = size.width, height > 0, width > 0 else {
                throw DecodingError.dataCorruptedError(
                    forKey: .size, in: container,
                    debugDescription: "size must hold positive \"height\" and \"width\"; other size forms are not supported")
            }
            self.height = height
            self.width = width
        }
        if let code = try container.decodeIfPresent(Int.self, forKey: .resample) {
            guard let filter = ResamplingFilter(pillowCode: code) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .resample, in: container,
                    debugDescription: "resample \(code) is not supported; use 1 (lanczos), 2 (bilinear), 3 (bicubic), 4 (box) or 5 (hamming)")
            }
            resampling = filter
        }
        resize = try container.decodeIfPresent(Bool.self, forKey: .resize) ?? resize
        rescale = try container.decodeIfPresent(Bool.self, forKey: .rescale) ?? rescale
        rescaleFactor = try container.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? rescaleFactor
        normalize = try container.decodeIfPresent(Bool.self, forKey: .normalize) ?? normalize
        mean = try Self.channelValues(container, .mean) ?? mean
        std = try Self.channelValues(container, .std) ?? std
        if normalize {
            guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 != 0 }) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .std, in: container,
                    debugDescription: "image_mean and image_std need three values each (std non-zero); got \(mean) and \(std)")
            }
        }
    }

    /// A single number means the same value for all three channels, as transformers accepts.
    private static func channelValues(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [Float]? {
        if let single = try? container.decodeIfPresent(Float.self, forKey: key) { return [single, single, single] }
        return try container.decodeIfPresent([Float].self, forKey: key)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Size(height: height, width: width), forKey: .size)
        try container.encode(resampling.pillowCode, forKey: .resample)
        try container.encode(resize, forKey: .resize)
        try container.encode(rescale, forKey: .rescale)
        try container.encode(rescaleFactor, forKey: .rescaleFactor)
        try container.encode(normalize, forKey: .normalize)
        try container.encode(mean, forKey: .mean)
        try container.encode(std, forKey: .std)
    }
}

/// A channel-first float tensor: `shape` is `[3, height, width]`, `values` row-major.
public struct PixelValues: Sendable, Equatable {
    /// `[channels, height, width]`.
    public let shape: [Int]
    /// `shape[0] * shape[1] * shape[2]` values, channel-first.
    public let values: [Float]
}

extension Image {
    /// The encoder input for this image: `[3, H, W]` Float32, as transformers' SigLIP processor makes it.
    ///
    /// Steps: ``composited(red:green:blue:)`` over white (transformers' `convert_to_rgb`; images
    /// without alpha are just ``convertedToRGB()``, gray replicated), ``resized(width:height:filter:)``
    /// with Pillow's arithmetic, then `Float(Double(v) * rescaleFactor)` and `(x - mean) / std` per
    /// channel in Float32, as numpy does in transformers' `PilBackend`.
    ///
    /// - Parameter preprocessing: The recipe; ``ImagePreprocessing/siglip`` by default.
    /// - Throws: ``ImageError/Code/invalidArgument`` for an invalid recipe.
    public func pixelValues(_ preprocessing: ImagePreprocessing = .siglip) throws -> PixelValues {
        try preprocessing.validate()
        var rgb = composited()
        if preprocessing.resize {
            rgb = try rgb.resized(width: preprocessing.width, height: preprocessing.height, filter: preprocessing.resampling)
        }
        let (outWidth, outHeight) = (rgb.width, rgb.height)
        let plane = outWidth * outHeight
        let source = rgb.bytes
        var values = [Float](repeating: 0, count: 3 * plane)
        let scale = preprocessing.rescale ? preprocessing.rescaleFactor : 1
        for channel in 0..<3 {
            let mean = preprocessing.normalize ? preprocessing.mean[channel] : 0
            let std = preprocessing.normalize ? preprocessing.std[channel] : 1
            for index in 0..<plane {
                var x = Float(Double(source[index * 3 + channel]) * scale)
                if preprocessing.normalize { x = (x - mean) / std }
                values[channel * plane + index] = x
            }
        }
        return PixelValues(shape: [3, outHeight, outWidth], values: values)
    }

    /// The encoder input at a given size with explicit normalisation (see ``pixelValues(_:)``).
    ///
    /// - Parameters:
    ///   - width: Output width.
    ///   - height: Output height.
    ///   - mean: Three per-channel means (applied after rescaling by 1/255).
    ///   - std: Three per-channel standard deviations.
    ///   - filter: The resampling filter, bilinear unless given.
    public func pixelValues(
        width: Int, height: Int, mean: [Float], std: [Float], filter: ResamplingFilter = .bilinear
    ) throws -> PixelValues {
        try pixelValues(ImagePreprocessing(width: width, height: height, resampling: filter, mean: mean, std: std))
    }
}
