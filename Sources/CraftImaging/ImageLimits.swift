/// Caps that protect decoding from hostile or accidental huge inputs.
///
/// Checked from the header, before any pixel memory is allocated; exceeding one is an
/// ``ImageError/Code/tooLarge`` error that names the file and the limit.
///
/// ```swift
/// var limits = ImageLimits.default
/// limits.maxPixels = 20_000_000
/// let image = try Image(contentsOf: url, limits: limits)
/// ```
public struct ImageLimits: Sendable, Equatable {
    /// The widest image accepted, in pixels.
    public var maxWidth: Int = 16_384
    /// The tallest image accepted, in pixels.
    public var maxHeight: Int = 16_384
    /// The largest `width * height` accepted.
    public var maxPixels: Int = 100_000_000
    /// The largest encoded file accepted, in bytes.
    public var maxFileBytes: Int = 1 << 30

    /// Limits of 16384 pixels per side, 100 million pixels and 1 GiB per file.
    public static let `default` = ImageLimits()

    /// Creates limits; every value defaults to the corresponding value of ``default``.
    public init(
        maxWidth: Int = 16_384, maxHeight: Int = 16_384, maxPixels: Int = 100_000_000,
        maxFileBytes: Int = 1 << 30
    ) {
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
        self.maxPixels = maxPixels
        self.maxFileBytes = maxFileBytes
    }

    /// Throws ``ImageError/Code/tooLarge`` (or `corrupt` for a zero size) when a decoded size is not acceptable.
    func check(width: Int, height: Int, format: String, source: String) throws {
        guard width > 0, height > 0 else {
            throw ImageError(
                .corrupt, "\(source): the \(format) header declares an empty \(width)x\(height) image; the file is damaged.",
                source: source)
        }
        let pixels = width.multipliedReportingOverflow(by: height)
        if width > maxWidth || height > maxHeight || pixels.overflow || pixels.partialValue > maxPixels {
            throw ImageError(
                .tooLarge,
                "\(source): the \(format) image is \(width)x\(height) pixels, over the limit of \(maxWidth)x\(maxHeight) "
                    + "and \(maxPixels) pixels; shrink it first or raise ImageLimits.",
                source: source)
        }
    }
}
