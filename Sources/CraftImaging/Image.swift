// CraftImaging: decoding PNG (libpng) and JPEG (libjpeg-turbo) into `Image`, converting, resizing
// (Pillow's resampling, ported in Image+Resize.swift) and SigLIP-style preprocessing.
import CraftFiles
import Foundation

/// A decoded raster image: `width × height` pixels of `channels` interleaved samples each.
///
/// Samples are stored row-major, channel-interleaved (HWC), as integers exactly as decoded: 8-bit
/// images hold `UInt8` samples (0...255), 16-bit PNGs hold `UInt16` samples (0...65535). Nothing is
/// gamma-corrected or premultiplied. ``floatSamples`` gives them as `Float` in [0, 1]
/// (`value / 255` or `value / 65535`).
///
/// ```swift
/// let image = try Image(contentsOf: URL(fileURLWithPath: "cat.jpg"))
/// let rgb = image.convertedToRGB()                       // Pillow's convert("RGB")
/// let small = try rgb.resized(width: 224, height: 224, filter: .bilinear)
/// let pixels = try image.pixelValues(.siglip)            // shape [3, 224, 224]
/// ```
public struct Image: Sendable, Equatable {
    /// How the samples of one pixel are to be read.
    public enum ColorModel: Sendable, Equatable, CaseIterable {
        /// One gray sample.
        case gray
        /// A gray sample, then alpha (straight, not premultiplied).
        case grayAlpha
        /// Red, green, blue.
        case rgb
        /// Red, green, blue, then alpha (straight, not premultiplied).
        case rgba

        /// The number of samples per pixel: 1, 2, 3 or 4.
        public var channels: Int {
            switch self {
            case .gray: 1
            case .grayAlpha: 2
            case .rgb: 3
            case .rgba: 4
            }
        }

        /// Whether the last sample of each pixel is alpha.
        public var hasAlpha: Bool { self == .grayAlpha || self == .rgba }

        /// Whether the pixels carry colour (three colour samples) rather than gray.
        public var isColor: Bool { self == .rgb || self == .rgba }
    }

    /// The sample storage: 8-bit or 16-bit integers, row-major and channel-interleaved.
    public enum Samples: Sendable, Equatable {
        /// 8-bit samples, 0...255.
        case uint8([UInt8])
        /// 16-bit samples, 0...65535.
        case uint16([UInt16])

        /// The number of samples held.
        public var count: Int {
            switch self {
            case .uint8(let values): values.count
            case .uint16(let values): values.count
            }
        }
    }

    /// The width in pixels.
    public let width: Int
    /// The height in pixels.
    public let height: Int
    /// What each pixel's samples mean.
    public let colorModel: ColorModel
    /// The samples, `height * width * channels` of them.
    public let samples: Samples

    /// The number of samples per pixel (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
    public var channels: Int { colorModel.channels }

    /// Bits per sample: 8 or 16.
    public var bitDepth: Int {
        switch samples {
        case .uint8: 8
        case .uint16: 16
        }
    }

    /// Creates an image from samples, checking that their count is `width * height * channels`.
    ///
    /// - Parameters:
    ///   - width: The width in pixels (at least 1).
    ///   - height: The height in pixels (at least 1).
    ///   - colorModel: What each pixel's samples mean.
    ///   - samples: Row-major, channel-interleaved samples.
    /// - Throws: ``ImageError/Code/invalidArgument`` when a size is not positive or the count is wrong.
    public init(width: Int, height: Int, colorModel: ColorModel, samples: Samples) throws {
        guard width > 0, height > 0 else {
            throw ImageError(.invalidArgument, "An image must be at least 1x1 pixels, not \(width)x\(height).")
        }
        let expected = width.multipliedReportingOverflow(by: height)
        let total = expected.partialValue.multipliedReportingOverflow(by: colorModel.channels)
        guard !expected.overflow, !total.overflow, total.partialValue == samples.count else {
            throw ImageError(
                .invalidArgument,
                "A \(width)x\(height) \(colorModel) image needs \(width)*\(height)*\(colorModel.channels) samples, "
                    + "but \(samples.count) were given.")
        }
        self.width = width
        self.height = height
        self.colorModel = colorModel
        self.samples = samples
    }

    /// Creates an 8-bit image from samples. See ``init(width:height:colorModel:samples:)``.
    public init(width: Int, height: Int, colorModel: ColorModel, bytes: [UInt8]) throws {
        try self.init(width: width, height: height, colorModel: colorModel, samples: .uint8(bytes))
    }

    /// Internal unchecked initialiser for decoders and transforms that computed the count themselves.
    init(uncheckedWidth width: Int, height: Int, colorModel: ColorModel, samples: Samples) {
        self.width = width
        self.height = height
        self.colorModel = colorModel
        self.samples = samples
    }

    /// The samples as `Float` in [0, 1], in storage order (HWC).
    public var floatSamples: [Float] {
        switch samples {
        case .uint8(let values): values.map { Float($0) / 255 }
        case .uint16(let values): values.map { Float($0) / 65535 }
        }
    }

    /// One sample as `Float` in [0, 1].
    ///
    /// - Precondition: `x`, `y` and `channel` are in range (a programming error otherwise).
    public func sample(x: Int, y: Int, channel: Int) -> Float {
        precondition(x >= 0 && x < width && y >= 0 && y < height && channel >= 0 && channel < channels,
                     "sample(x: \(x), y: \(y), channel: \(channel)) is outside a \(width)x\(height)x\(channels) image")
        let index = (y * width + x) * channels + channel
        switch samples {
        case .uint8(let values): return Float(values[index]) / 255
        case .uint16(let values): return Float(values[index]) / 65535
        }
    }

    /// The samples at 8 bits: 8-bit images as they are, 16-bit ones rounded (`(v * 255 + 32767) / 65535`).
    public var bytes: [UInt8] {
        switch samples {
        case .uint8(let values): values
        case .uint16(let values): values.map(Image.eightBit)
        }
    }

    /// Rounds a 16-bit sample to 8 bits, the way libpng's `png_set_scale_16` does.
    static func eightBit(_ value: UInt16) -> UInt8 {
        UInt8((UInt32(value) * 255 + 32767) / 65535)
    }
}

// MARK: - Decoding

extension Image {
    /// Decodes a PNG or JPEG file, recognised by its first bytes (not its extension).
    ///
    /// PNG: gray, gray+alpha, RGB, RGBA and palette images, 1 to 16 bits, interlaced or not. JPEG:
    /// baseline and progressive, grayscale and colour (YCbCr or RGB); CMYK/YCCK JPEG is rejected with
    /// ``ImageError/Code/unsupportedFormat``. See `docs/images.md` for exactly how each kind maps to
    /// ``ColorModel`` and bit depth.
    ///
    /// - Parameters:
    ///   - url: A file URL.
    ///   - limits: Size caps checked before pixel memory is allocated.
    /// - Throws: ``ImageError`` naming the file: `notFound`, `io`, `unsupportedFormat`, `corrupt`,
    ///   `truncated` or `tooLarge`.
    public init(contentsOf url: URL, limits: ImageLimits = .default) throws {
        let path = url.path
        let data = try ImageFile.read(path: path, limits: limits)
        try self.init(data: data, name: path, limits: limits)
    }

    /// Decodes PNG or JPEG bytes held in memory, recognised by their first bytes.
    ///
    /// - Parameters:
    ///   - data: The encoded image.
    ///   - name: How error messages refer to the data (a file name or URL, say).
    ///   - limits: Size caps checked before pixel memory is allocated.
    /// - Throws: ``ImageError`` (see ``init(contentsOf:limits:)``).
    public init(data: Data, name: String = "image data", limits: ImageLimits = .default) throws {
        guard data.count <= limits.maxFileBytes else {
            throw ImageError(
                .tooLarge,
                "\(name): \(data.count) bytes is over the limit of \(limits.maxFileBytes) bytes; raise ImageLimits.maxFileBytes to read it.",
                source: name)
        }
        switch ImageFormat.sniff(data) {
        case .png:
            self = try PNGCodec.decode(data, name: name, limits: limits)
        case .jpeg:
            self = try JPEGCodec.decode(data, name: name, limits: limits)
        case .other(let description):
            throw ImageError(
                .unsupportedFormat,
                "\(name) is \(description), not PNG or JPEG; convert it to PNG or JPEG first.",
                source: name)
        }
    }
}

// MARK: - Encoding

extension Image {
    /// Encodes this image as PNG (8-bit gray, gray+alpha, RGB or RGBA; sRGB chunk included).
    ///
    /// The corresponding C function is `png_image_write_to_memory`.
    /// - Throws: ``ImageError/Code/invalidArgument`` for a 16-bit image (convert with
    ///   ``convertedTo8Bit()`` first), `io` if libpng fails.
    public func pngData() throws -> Data {
        try PNGCodec.encode(self)
    }

    /// Writes this image as a PNG file, atomically (a temporary file renamed into place).
    ///
    /// - Parameter url: The destination file URL.
    /// - Throws: See ``pngData()``; ``ImageError/Code/io`` when the file cannot be written.
    public func writePNG(to url: URL) throws {
        let data = try pngData()
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw ImageError(
                .io, "Could not write the PNG file \(url.path): \(error.localizedDescription); check the directory exists and is writable.",
                source: url.path, cause: error)
        }
    }
}

/// Reading encoded files with the size cap applied before the bytes are loaded.
enum ImageFile {
    static func read(path: String, limits: ImageLimits) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ImageError(.notFound, "The image file \(path) does not exist; check the path.", source: path)
        }
        guard !isDirectory.boolValue else {
            throw ImageError(.io, "\(path) is a directory, not an image file; pass a PNG or JPEG file.", source: path)
        }
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = attributes[.size] as? NSNumber, size.int64Value > Int64(limits.maxFileBytes)
        {
            throw ImageError(
                .tooLarge,
                "\(path) is \(size.int64Value) bytes, over the limit of \(limits.maxFileBytes) bytes; raise ImageLimits.maxFileBytes to read it.",
                source: path)
        }
        do {
            // Read, not mapped: a file truncated by someone else while mapped would fault (SIGBUS).
            return try BoundedFile.read(URL(fileURLWithPath: path), limit: limits.maxFileBytes)
        } catch {
            throw ImageError(
                .io, "Could not read the image file \(path): \(error.localizedDescription); check its permissions.",
                source: path, cause: error)
        }
    }
}
