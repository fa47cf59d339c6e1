// Resampling ported from Pillow 13's `src/libImaging/Resample.c` (ImagingResample with the 8-bit
// fixed-point path: precompute_coeffs, normalize_coeffs_8bpc, ImagingResampleHorizontal_8bpc and
// ImagingResampleVertical_8bpc) and from `Image.resize` in `src/PIL/Image.py` (alpha premultiplied
// around the resize). Same arithmetic, so results equal Pillow's exactly.
import Foundation

/// The resampling filter of ``Image/resized(width:height:filter:)``, as in Pillow's `Image.Resampling`.
///
/// Every filter is "support based" as in Pillow: when shrinking, the filter is stretched by the
/// scale factor, so downscaling averages (antialiases) instead of skipping pixels.
public enum ResamplingFilter: String, Sendable, Equatable, CaseIterable, Codable {
    /// Pillow `BOX` (support 0.5).
    case box
    /// Pillow `BILINEAR` (triangle, support 1).
    case bilinear
    /// Pillow `HAMMING` (support 1).
    case hamming
    /// Pillow `BICUBIC` (Keys cubic with a = -0.5, support 2).
    case bicubic
    /// Pillow `LANCZOS` (3-lobe windowed sinc, support 3).
    case lanczos

    /// The filter for a Pillow / Hugging Face `resample` number (1 LANCZOS, 2 BILINEAR, 3 BICUBIC,
    /// 4 BOX, 5 HAMMING), or nil for 0 (NEAREST, not supported) and unknown values.
    public init?(pillowCode: Int) {
        switch pillowCode {
        case 1: self = .lanczos
        case 2: self = .bilinear
        case 3: self = .bicubic
        case 4: self = .box
        case 5: self = .hamming
        default: return nil
        }
    }

    /// The Pillow / Hugging Face `resample` number of this filter.
    public var pillowCode: Int {
        switch self {
        case .lanczos: 1
        case .bilinear: 2
        case .bicubic: 3
        case .box: 4
        case .hamming: 5
        }
    }

    var support: Double {
        switch self {
        case .box: 0.5
        case .bilinear, .hamming: 1
        case .bicubic: 2
        case .lanczos: 3
        }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .box:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        case .bilinear:
            let x = abs(x)
            return x < 1 ? 1 - x : 0
        case .hamming:
            let x = abs(x)
            if x == 0 { return 1 }
            if x >= 1 { return 0 }
            let px = x * Double.pi
            return sin(px) / px * (0.54 + 0.46 * cos(px))
        case .bicubic:
            let a = -0.5
            let x = abs(x)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .lanczos:
            guard -3 <= x && x < 3 else { return 0 }
            return Self.sinc(x) * Self.sinc(x / 3)
        }
    }

    private static func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let px = x * Double.pi
        return sin(px) / px
    }
}

extension Image {
    /// This image resized to `width × height`, exactly as Pillow's `Image.resize((width, height), filter)`.
    ///
    /// Works on 8-bit samples (a 16-bit image is first rounded to 8 bits). Images with alpha are
    /// premultiplied before and un-premultiplied after, as Pillow does for `LA` and `RGBA`. The two
    /// passes run in Pillow's order (horizontal first, except vertical first when the image gets wider
    /// and shorter), each rounding to 8 bits.
    ///
    /// - Parameters:
    ///   - width: The new width, at least 1.
    ///   - height: The new height, at least 1.
    ///   - filter: The resampling filter, `.bilinear` unless given (Pillow's own `resize` default is `.bicubic`).
    /// - Throws: ``ImageError/Code/invalidArgument`` for a non-positive size, one over 65536 pixels a
    ///   side, or an area over ``ImageLimits/default``'s `maxPixels`.
    public func resized(width newWidth: Int, height newHeight: Int, filter: ResamplingFilter = .bilinear) throws -> Image {
        guard newWidth > 0, newHeight > 0, newWidth <= 65536, newHeight <= 65536,
            newWidth * newHeight <= ImageLimits.default.maxPixels
        else {
            throw ImageError(
                .invalidArgument,
                "Cannot resize to \(newWidth)x\(newHeight); both sides must be between 1 and 65536 and the area at most \(ImageLimits.default.maxPixels) pixels.")
        }
        let source = convertedTo8Bit()
        if newWidth == width && newHeight == height { return source }
        guard case .uint8(var planes) = source.samples else { return source }
        let bands = channels
        if colorModel.hasAlpha { Resampler.premultiply(&planes, bands: bands) }

        let horizontal = Resampler.coefficients(inputSize: width, outputSize: newWidth, filter: filter)
        let vertical = Resampler.coefficients(inputSize: height, outputSize: newHeight, filter: filter)
        var current = planes
        if newWidth > width && newHeight < height {
            // Pillow 13 runs the vertical pass first when widening while shortening (measured against
            // Pillow: the rounded intermediate differs, so the order matters for exact results).
            current = Resampler.vertical(current, width: width, bands: bands, outputHeight: newHeight, coefficients: vertical)
            current = Resampler.horizontal(
                current, width: width, rows: 0..<newHeight, bands: bands, outputWidth: newWidth, coefficients: horizontal)
        } else {
            var rowBounds = vertical.bounds
            var rows = 0..<height
            if newWidth != width {
                // Only the rows the vertical pass reads are resampled horizontally (Pillow's ybox).
                let first = vertical.bounds[0]
                let last = vertical.bounds[2 * (newHeight - 1)] + vertical.bounds[2 * (newHeight - 1) + 1]
                for row in 0..<newHeight { rowBounds[2 * row] -= first }
                current = Resampler.horizontal(
                    current, width: width, rows: first..<last, bands: bands, outputWidth: newWidth, coefficients: horizontal)
                rows = first..<last
            }
            if newHeight != height {
                var shifted = vertical
                shifted.bounds = rowBounds
                current = Resampler.vertical(current, width: newWidth, bands: bands, outputHeight: newHeight, coefficients: shifted)
                rows = 0..<newHeight
            }
            precondition(rows.count == newHeight, "resampler row bookkeeping")
        }
        if colorModel.hasAlpha { Resampler.unpremultiply(&current, bands: bands) }
        return Image(uncheckedWidth: newWidth, height: newHeight, colorModel: colorModel, samples: .uint8(current))
    }
}

/// Pillow's separable 8-bit resampler.
enum Resampler {
    /// Pillow's `PRECISION_BITS` for 8-bit images: 32 - 8 - 2.
    static let precisionBits = 22

    struct Coefficients {
        /// Taps per output sample (Pillow's ksize).
        var size: Int
        /// For each output sample: first input index, number of inputs.
        var bounds: [Int]
        /// `outputSize * size` fixed-point weights.
        var weights: [Int32]
    }

    /// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for the whole input range.
    static func coefficients(inputSize: Int, outputSize: Int, filter: ResamplingFilter) -> Coefficients {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let size = Int(support.rounded(.up)) * 2 + 1
        var bounds = [Int](repeating: 0, count: outputSize * 2)
        var weights = [Int32](repeating: 0, count: outputSize * size)
        var taps = [Double](repeating: 0, count: size)
        let inverse = 1 / filterScale
        let one = Double(1 << precisionBits)
        for output in 0..<outputSize {
            let center = (Double(output) + 0.5) * scale
            let lower = max(Int(center - support + 0.5), 0)
            let upper = min(Int(center + support + 0.5), inputSize)
            let count = upper - lower
            var total = 0.0
            for tap in 0..<count {
                let weight = filter.weight((Double(tap + lower) - center + 0.5) * inverse)
                taps[tap] = weight
                total += weight
            }
            for tap in 0..<size {
                var weight = tap < count ? taps[tap] : 0
                if tap < count && total != 0 { weight /= total }
                let fixed = weight < 0 ? Int32(-0.5 + weight * one) : Int32(0.5 + weight * one)
                weights[output * size + tap] = fixed
            }
            bounds[2 * output] = lower
            bounds[2 * output + 1] = count
        }
        return Coefficients(size: size, bounds: bounds, weights: weights)
    }

    @inline(__always)
    static func clip8(_ accumulator: Int) -> UInt8 {
        let value = accumulator >> precisionBits
        return value < 0 ? 0 : (value > 255 ? 255 : UInt8(value))
    }

    static func horizontal(
        _ input: [UInt8], width: Int, rows: Range<Int>, bands: Int, outputWidth: Int, coefficients: Coefficients
    ) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: rows.count * outputWidth * bands)
        let half = 1 << (precisionBits - 1)
        let size = coefficients.size
        input.withUnsafeBufferPointer { source in
            coefficients.weights.withUnsafeBufferPointer { weights in
                coefficients.bounds.withUnsafeBufferPointer { bounds in
                    output.withUnsafeMutableBufferPointer { out in
                        for (outRow, row) in rows.enumerated() {
                            let rowBase = row * width * bands
                            var target = outRow * outputWidth * bands
                            for x in 0..<outputWidth {
                                let lower = bounds[2 * x], count = bounds[2 * x + 1]
                                let kernel = x * size
                                if bands == 3 {
                                    var red = half, green = half, blue = half
                                    var position = rowBase + lower * 3
                                    for tap in 0..<count {
                                        let weight = Int(weights[kernel + tap])
                                        red += Int(source[position]) * weight
                                        green += Int(source[position + 1]) * weight
                                        blue += Int(source[position + 2]) * weight
                                        position += 3
                                    }
                                    out[target] = clip8(red)
                                    out[target + 1] = clip8(green)
                                    out[target + 2] = clip8(blue)
                                } else {
                                    for band in 0..<bands {
                                        var sum = half
                                        for tap in 0..<count {
                                            sum += Int(source[rowBase + (lower + tap) * bands + band]) * Int(weights[kernel + tap])
                                        }
                                        out[target + band] = clip8(sum)
                                    }
                                }
                                target += bands
                            }
                        }
                    }
                }
            }
        }
        return output
    }

    /// The vertical pass, accumulating whole rows per tap (integer sums: same result as Pillow's
    /// column-by-column order, but contiguous memory access).
    static func vertical(
        _ input: [UInt8], width: Int, bands: Int, outputHeight: Int, coefficients: Coefficients
    ) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: outputHeight * width * bands)
        let half = 1 << (precisionBits - 1)
        let rowLength = width * bands
        var accumulator = [Int](repeating: 0, count: rowLength)
        input.withUnsafeBufferPointer { source in
            coefficients.weights.withUnsafeBufferPointer { weights in
                output.withUnsafeMutableBufferPointer { out in
                    accumulator.withUnsafeMutableBufferPointer { sums in
                        for y in 0..<outputHeight {
                            let lower = coefficients.bounds[2 * y], count = coefficients.bounds[2 * y + 1]
                            let kernel = y * coefficients.size
                            for column in 0..<rowLength { sums[column] = half }
                            for tap in 0..<count {
                                let weight = Int(weights[kernel + tap])
                                let rowStart = (lower + tap) * rowLength
                                for column in 0..<rowLength { sums[column] += Int(source[rowStart + column]) * weight }
                            }
                            let target = y * rowLength
                            for column in 0..<rowLength { out[target + column] = clip8(sums[column]) }
                        }
                    }
                }
            }
        }
        return output
    }

    /// Pillow's RGBA -> RGBa (and LA -> La): `MULDIV255(c, alpha)`.
    static func premultiply(_ samples: inout [UInt8], bands: Int) {
        let alphaIndex = bands - 1
        var pixel = 0
        while pixel < samples.count {
            let alpha = Int(samples[pixel + alphaIndex])
            for band in 0..<alphaIndex {
                let product = Int(samples[pixel + band]) * alpha + 128
                samples[pixel + band] = UInt8(((product >> 8) + product) >> 8)
            }
            pixel += bands
        }
    }

    /// Pillow's RGBa -> RGBA (and La -> LA): unchanged at alpha 0 or 255, else `clip(255 * c / alpha)`.
    static func unpremultiply(_ samples: inout [UInt8], bands: Int) {
        let alphaIndex = bands - 1
        var pixel = 0
        while pixel < samples.count {
            let alpha = Int(samples[pixel + alphaIndex])
            if alpha != 0 && alpha != 255 {
                for band in 0..<alphaIndex {
                    samples[pixel + band] = UInt8(min(255, 255 * Int(samples[pixel + band]) / alpha))
                }
            }
            pixel += bands
        }
    }
}
