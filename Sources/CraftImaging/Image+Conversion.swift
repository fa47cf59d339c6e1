// Colour-model and bit-depth conversions, matching Pillow's `Image.convert("RGB")` for 8-bit input.

extension Image {
    /// This image as 8-bit RGB, the way Pillow's `convert("RGB")` does it.
    ///
    /// Gray is replicated into R, G and B; alpha is dropped (not composited), as Pillow does; 16-bit
    /// samples are rounded to 8 bits (`(v * 255 + 32767) / 65535`). Pillow instead keeps the high byte
    /// of 16-bit RGB(A) samples, so 16-bit sources may differ from Pillow by one level.
    public func convertedToRGB() -> Image {
        if colorModel == .rgb, case .uint8 = samples { return self }
        let source = bytes
        let pixelCount = width * height
        var output = [UInt8](repeating: 0, count: pixelCount * 3)
        let stride = channels
        output.withUnsafeMutableBufferPointer { out in
            source.withUnsafeBufferPointer { input in
                for pixel in 0..<pixelCount {
                    let from = pixel * stride, to = pixel * 3
                    if colorModel.isColor {
                        out[to] = input[from]
                        out[to + 1] = input[from + 1]
                        out[to + 2] = input[from + 2]
                    } else {
                        let gray = input[from]
                        out[to] = gray
                        out[to + 1] = gray
                        out[to + 2] = gray
                    }
                }
            }
        }
        return Image(uncheckedWidth: width, height: height, colorModel: .rgb, samples: .uint8(output))
    }

    /// This image with 8-bit samples: unchanged when already 8-bit, otherwise each 16-bit sample
    /// rounded to `(v * 255 + 32767) / 65535`. The colour model is kept.
    public func convertedTo8Bit() -> Image {
        if case .uint8 = samples { return self }
        return Image(uncheckedWidth: width, height: height, colorModel: colorModel, samples: .uint8(bytes))
    }
}

extension Image {
    /// This image as 8-bit RGB with its alpha composited over an opaque background colour.
    ///
    /// Matches Pillow's `Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")`
    /// (the integer arithmetic of `libImaging/AlphaComposite.c`), which is what transformers'
    /// `convert_to_rgb` does with transparent images before SigLIP preprocessing. Images without
    /// alpha are simply ``convertedToRGB()``.
    ///
    /// - Parameters:
    ///   - red: Background red, 0...255 (white by default).
    ///   - green: Background green.
    ///   - blue: Background blue.
    public func composited(red: UInt8 = 255, green: UInt8 = 255, blue: UInt8 = 255) -> Image {
        guard colorModel.hasAlpha else { return convertedToRGB() }
        let source = bytes
        let pixelCount = width * height
        let stride = channels
        let background = [UInt32(red), UInt32(green), UInt32(blue)]
        let precision: UInt32 = 7
        var output = [UInt8](repeating: 0, count: pixelCount * 3)
        for pixel in 0..<pixelCount {
            let from = pixel * stride, to = pixel * 3
            let alpha = UInt32(source[from + stride - 1])
            if alpha == 0 {
                output[to] = UInt8(red)
                output[to + 1] = UInt8(green)
                output[to + 2] = UInt8(blue)
                continue
            }
            // Destination alpha is 255: blend = 255 * (255 - alpha).
            let outAlpha255 = alpha * 255 + 255 * (255 - alpha)
            let coefficient1 = alpha * 255 * 255 * (1 << precision) / outAlpha255
            let coefficient2 = 255 * (1 << precision) - coefficient1
            for band in 0..<3 {
                let value = UInt32(source[from + (colorModel.isColor ? band : 0)])
                let mixed = value * coefficient1 + background[band] * coefficient2 + (0x80 << precision)
                output[to + band] = UInt8(truncatingIfNeeded: (((mixed >> 8) + mixed) >> 8) >> precision)
            }
        }
        return Image(uncheckedWidth: width, height: height, colorModel: .rgb, samples: .uint8(output))
    }
}
