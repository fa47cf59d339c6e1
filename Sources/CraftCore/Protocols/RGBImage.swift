/// An 8-bit RGB image in memory: the input a ``VisionEncoder`` preprocesses.
///
/// Pixels are interleaved `[height][width][3]` (R, G, B), top row first, the layout image decoders
/// produce. Decoding files (PNG, JPEG) is not part of CraftCore; whatever decodes them builds this.
public struct RGBImage: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// `height·width·3` bytes, row-major, interleaved R, G, B.
    public let pixels: [UInt8]

    /// Creates an image, checking that `pixels` holds `height·width·3` bytes.
    ///
    /// - Throws: ``CraftCoreError`` (`shapeMismatch`) when a size is not positive or the byte count
    ///   does not match.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        let (area, overflow) = width.multipliedReportingOverflow(by: height)
        guard width > 0, height > 0, !overflow, area <= Int.max / 3, pixels.count == area * 3 else {
            throw CraftCoreError(
                .shapeMismatch,
                "an RGB image of \(width)×\(height) needs \(width)×\(height)×3 bytes, but got \(pixels.count)")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The (R, G, B) bytes of the pixel at `row`, `column`.
    ///
    /// - Precondition: the coordinates are inside the image.
    public subscript(row: Int, column: Int) -> (red: UInt8, green: UInt8, blue: UInt8) {
        precondition((0..<height).contains(row) && (0..<width).contains(column), "pixel (\(row), \(column)) is outside the image")
        let start = (row * width + column) * 3
        return (pixels[start], pixels[start + 1], pixels[start + 2])
    }
}
