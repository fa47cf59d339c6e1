// PNG through libpng's simplified API (`png_image_*`). That API runs libpng's setjmp/longjmp error
// handling inside C (png_safe_execute) and reports failures as return codes plus a message, so no
// longjmp ever crosses a Swift frame. All libpng types stay in this file.
import CPNG
import Foundation

enum PNGCodec {
    // MARK: - Decoding

    static func decode(_ data: Data, name: String, limits: ImageLimits) throws -> Image {
        let scan = PNGChunkScan(data)
        // Colour-management chunks are dropped before libpng sees the stream: the simplified API
        // would otherwise gamma-convert samples, while Pillow (the reference) returns stored values.
        let bytes = scan.strippingColorManagement()

        return try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> Image in
            guard let base = raw.baseAddress else {
                throw ImageError(.truncated, "\(name) holds only a PNG signature; the file is truncated.", source: name)
            }
            var control = png_image()
            control.version = UInt32(PNG_IMAGE_VERSION)
            defer { png_image_free(&control) }

            guard png_image_begin_read_from_memory(&control, base, raw.count) != 0 else {
                throw failure(control, scan: scan, name: name, stage: "header")
            }
            let width = Int(control.width), height = Int(control.height)
            try limits.check(width: width, height: height, format: "PNG", source: name)

            let natural = control.format
            let hasAlpha = natural & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
            let isColor = natural & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
            let isSixteenBit = natural & UInt32(PNG_FORMAT_FLAG_LINEAR) != 0
            let model: Image.ColorModel =
                switch (isColor, hasAlpha) {
                case (false, false): .gray
                case (false, true): .grayAlpha
                case (true, false): .rgb
                case (true, true): .rgba
                }
            var format: UInt32 = (isColor ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0) | (hasAlpha ? UInt32(PNG_FORMAT_FLAG_ALPHA) : 0)
            // 16-bit files are read as the simplified API's 16-bit "linear" format. With the colour-
            // management chunks gone, libpng assumes 16-bit data is linear, so no gamma is applied and
            // the samples come out as stored, except that alpha images come out premultiplied; those
            // are un-premultiplied below. (Reading 16-bit alpha files to 8 bits instead is wrong for
            // interlaced files in libpng 1.6.39.)
            if isSixteenBit { format |= UInt32(PNG_FORMAT_FLAG_LINEAR) }
            control.format = format

            let rowSamples = width * model.channels  // within Int32: width <= limits, checked above
            guard let stride = Int32(exactly: rowSamples) else {
                throw ImageError(.tooLarge, "\(name): a PNG row of \(rowSamples) samples is too long to decode.", source: name)
            }
            let count = rowSamples * height
            if isSixteenBit {
                var buffer = [UInt16](repeating: 0, count: count)
                let ok = buffer.withUnsafeMutableBytes { png_image_finish_read(&control, nil, $0.baseAddress, stride, nil) }
                guard ok != 0 else { throw failure(control, scan: scan, name: name, stage: "pixel data") }
                if hasAlpha { unpremultiply(&buffer, channels: model.channels) }
                return Image(uncheckedWidth: width, height: height, colorModel: model, samples: .uint16(buffer))
            } else {
                var buffer = [UInt8](repeating: 0, count: count)
                let ok = buffer.withUnsafeMutableBytes { png_image_finish_read(&control, nil, $0.baseAddress, stride, nil) }
                guard ok != 0 else { throw failure(control, scan: scan, name: name, stage: "pixel data") }
                return Image(uncheckedWidth: width, height: height, colorModel: model, samples: .uint8(buffer))
            }
        }
    }

    /// Undoes libpng's premultiplication of 16-bit linear output: `c = round(p * 65535 / alpha)`.
    /// Exact at alpha 65535; within `65535 / alpha` of the stored value otherwise; 0 where alpha is 0
    /// (the colour of fully transparent pixels is lost).
    static func unpremultiply(_ samples: inout [UInt16], channels: Int) {
        var pixel = 0
        while pixel + channels <= samples.count {
            let alpha = UInt32(samples[pixel + channels - 1])
            if alpha != 65535 {
                for band in 0..<(channels - 1) {
                    if alpha == 0 {
                        samples[pixel + band] = 0
                    } else {
                        let value = (UInt32(samples[pixel + band]) * 65535 + alpha / 2) / alpha
                        samples[pixel + band] = UInt16(min(value, 65535))
                    }
                }
            }
            pixel += channels
        }
    }

    /// Turns libpng's failure into a typed error; the chunk scan decides truncated versus corrupt.
    private static func failure(_ control: png_image, scan: PNGChunkScan, name: String, stage: String) -> ImageError {
        let truncation = scan.completeChunksAreIntact() ? scan.truncation.map { "\($0); " } : nil
        return .decoding(name, format: "PNG", library: "libpng", detail: message(control), stage: stage, truncation: truncation)
    }

    private static func message(_ control: png_image) -> String {
        var copy = control.message
        let text = withUnsafeBytes(of: &copy) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        return text.isEmpty ? "no message" : text
    }

    // MARK: - Encoding

    static func encode(_ image: Image) throws -> Data {
        guard case .uint8(let samples) = image.samples else {
            throw ImageError(
                .invalidArgument,
                "PNG writing supports 8-bit images only, but this \(image.width)x\(image.height) image is 16-bit; call convertedTo8Bit() first.")
        }
        var control = png_image()
        control.version = UInt32(PNG_IMAGE_VERSION)
        control.width = UInt32(image.width)
        control.height = UInt32(image.height)
        control.format =
            switch image.colorModel {
            case .gray: 0
            case .grayAlpha: UInt32(PNG_FORMAT_FLAG_ALPHA)
            case .rgb: UInt32(PNG_FORMAT_FLAG_COLOR)
            case .rgba: UInt32(PNG_FORMAT_FLAG_COLOR) | UInt32(PNG_FORMAT_FLAG_ALPHA)
            }
        guard let stride = Int32(exactly: image.width * image.channels),
            UInt32(exactly: image.width) != nil, UInt32(exactly: image.height) != nil
        else {
            throw ImageError(.invalidArgument, "A \(image.width)x\(image.height) image is too large to write as PNG.")
        }
        defer { png_image_free(&control) }

        return try samples.withUnsafeBytes { pixels -> Data in
            var size = 0
            guard png_image_write_to_memory(&control, nil, &size, 0, pixels.baseAddress, stride, nil) != 0 else {
                throw ImageError(.io, "libpng could not size the PNG for a \(image.width)x\(image.height) image: \(message(control)).")
            }
            var output = Data(count: size)
            let ok = output.withUnsafeMutableBytes { buffer in
                png_image_write_to_memory(&control, buffer.baseAddress, &size, 0, pixels.baseAddress, stride, nil)
            }
            guard ok != 0 else {
                throw ImageError(.io, "libpng could not encode a \(image.width)x\(image.height) image as PNG: \(message(control)).")
            }
            return output.prefix(size)
        }
    }
}

/// A walk over the PNG chunk layout, done in Swift before libpng runs.
///
/// It finds where the stream is truncated (so a failure can be reported as truncated rather than
/// corrupt) and which colour-management chunks to drop. It never fails: on anything odd it stops
/// and leaves the bytes for libpng to judge.
struct PNGChunkScan {
    let data: Data
    /// Byte ranges of `gAMA`, `sRGB`, `iCCP` and `cHRM` chunks (length, type, data, CRC).
    private(set) var colorManagementChunks: [Range<Int>] = []
    /// Why the stream is incomplete, or nil when an `IEND` chunk ends within the data.
    private(set) var truncation: String?

    init(_ data: Data) {
        self.data = data
        let bytes = [UInt8](data)
        var offset = ImageFormat.pngSignature.count
        let dropped: Set<String> = ["gAMA", "sRGB", "iCCP", "cHRM"]
        while true {
            guard offset + 8 <= bytes.count else {
                truncation = "the data ends at byte \(bytes.count) before the IEND chunk"
                return
            }
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let typeBytes = bytes[(offset + 4)..<(offset + 8)]
            // A non-letter type or an over-long length means the layout itself is damaged (corrupt,
            // not truncated); stop and let libpng report it.
            guard length <= 0x7FFF_FFFF, typeBytes.allSatisfy({ (65...90).contains($0) || (97...122).contains($0) }) else { return }
            let type = String(decoding: typeBytes, as: UTF8.self)
            let end = offset + 12 + length
            guard end <= bytes.count else {
                truncation = "the \(type) chunk at byte \(offset) needs \(length) bytes but the data ends at byte \(bytes.count)"
                return
            }
            if dropped.contains(type) { colorManagementChunks.append(offset..<end) }
            if type == "IEND" { return }
            offset = end
        }
    }

    /// Whether every complete chunk before the truncation point has a matching CRC. Run only after
    /// libpng failed: a damaged chunk earlier in the file means "corrupt", even if the data also
    /// appears to stop early (a deleted byte makes later lengths nonsense).
    func completeChunksAreIntact() -> Bool {
        let bytes = [UInt8](data)
        var offset = ImageFormat.pngSignature.count
        while offset + 12 <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let end = offset + 12 + length
            guard length <= 0x7FFF_FFFF, end <= bytes.count else { return true }
            let stored = UInt32(bytes[end - 4]) << 24 | UInt32(bytes[end - 3]) << 16 | UInt32(bytes[end - 2]) << 8 | UInt32(bytes[end - 1])
            guard Self.crc32(bytes[(offset + 4)..<(end - 4)]) == stored else { return false }
            offset = end
        }
        return true
    }

    private static let crcTable: [UInt32] = (0..<256).map { (n: UInt32) -> UInt32 in
        var c = n
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// CRC-32 as PNG defines it (ISO 3309 polynomial).
    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        crcTable.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }

    /// The stream without its colour-management chunks (the original when there are none).
    func strippingColorManagement() -> Data {
        guard !colorManagementChunks.isEmpty else { return data }
        var output = Data()
        output.reserveCapacity(data.count)
        var position = data.startIndex
        for range in colorManagementChunks {
            output.append(data[position..<(data.startIndex + range.lowerBound)])
            position = data.startIndex + range.upperBound
        }
        output.append(data[position...])
        return output
    }
}
