// JPEG through libjpeg-turbo's TurboJPEG API (`tjDecompressHeader3`, `tjDecompress2`). TurboJPEG
// catches libjpeg's setjmp/longjmp errors inside C and returns -1 plus a message, so no longjmp
// crosses a Swift frame and a corrupt file never aborts the process. All TurboJPEG types stay here.
import CJPEG
import Foundation

enum JPEGCodec {
    static func decode(_ data: Data, name: String, limits: ImageLimits) throws -> Image {
        guard let handle = tjInitDecompress() else {
            throw ImageError(.io, "Could not start the JPEG decoder for \(name) (tjInitDecompress failed); the system may be out of memory.", source: name)
        }
        defer { tjDestroy(handle) }

        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> Image in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress, raw.count > 0 else {
                throw ImageError(.truncated, "\(name) is an empty JPEG stream.", source: name)
            }
            let size = UInt(raw.count)
            var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
            guard tjDecompressHeader3(handle, base, size, &width, &height, &subsampling, &colorspace) == 0 else {
                throw failure(handle, raw: raw, name: name, stage: "header")
            }
            // TurboJPEG can return success with a 0x0 size when the data stops before the frame header.
            guard width > 0, height > 0 else {
                if endsWithEndOfImage(raw) {
                    throw ImageError(.corrupt, "\(name) is a corrupt JPEG: it has no frame header; re-export the file.", source: name)
                }
                throw ImageError(
                    .truncated, "\(name) is a truncated JPEG: the data ends before the frame header; re-download or re-export the file.",
                    source: name)
            }
            try limits.check(width: Int(width), height: Int(height), format: "JPEG", source: name)

            let model: Image.ColorModel
            let pixelFormat: Int32
            switch colorspace {
            case Int32(TJCS_GRAY.rawValue):
                (model, pixelFormat) = (.gray, Int32(TJPF_GRAY.rawValue))
            case Int32(TJCS_YCbCr.rawValue), Int32(TJCS_RGB.rawValue):
                (model, pixelFormat) = (.rgb, Int32(TJPF_RGB.rawValue))
            case Int32(TJCS_CMYK.rawValue), Int32(TJCS_YCCK.rawValue):
                throw ImageError(
                    .unsupportedFormat,
                    "\(name) is a CMYK JPEG, which Craft does not decode; convert it to RGB (for example with Pillow's convert(\"RGB\")) first.",
                    source: name)
            default:
                throw ImageError(.unsupportedFormat, "\(name) is a JPEG with an unknown colour space (\(colorspace)).", source: name)
            }

            let rowSamples = Int(width) * model.channels
            guard let pitch = Int32(exactly: rowSamples) else {
                throw ImageError(.tooLarge, "\(name): a JPEG row of \(rowSamples) samples is too long to decode.", source: name)
            }
            // Accurate (islow) IDCT and fancy upsampling are libjpeg's defaults, as in Pillow; LIMITSCANS
            // bounds the work a hostile progressive file can cause.
            let flags = Int32(TJFLAG_ACCURATEDCT) | Int32(TJFLAG_LIMITSCANS)
            var pixels = [UInt8](repeating: 0, count: rowSamples * Int(height))
            let status = pixels.withUnsafeMutableBufferPointer { buffer in
                tjDecompress2(handle, base, size, buffer.baseAddress, width, pitch, height, pixelFormat, flags)
            }
            if status != 0 {
                // A warning (code 0) leaves a complete image, except when the data ran out: libjpeg then
                // pads with gray, which Pillow reports as a truncated file, and so do we.
                let warning = tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue)
                if !warning || errorText(handle).contains("Premature end") {
                    throw failure(handle, raw: raw, name: name, stage: "image data")
                }
            }
            return Image(uncheckedWidth: Int(width), height: Int(height), colorModel: model, samples: .uint8(pixels))
        }
    }

    private static func errorText(_ handle: tjhandle) -> String {
        guard let text = tjGetErrorStr2(handle) else { return "no message" }
        return String(cString: text)
    }

    /// Truncated when libjpeg ran out of data or the stream does not end with an EOI marker.
    private static func failure(_ handle: tjhandle, raw: UnsafeRawBufferPointer, name: String, stage: String) -> ImageError {
        let detail = errorText(handle)
        let truncated = detail.contains("Premature end") || !endsWithEndOfImage(raw)
        return .decoding(name, format: "JPEG", library: "libjpeg-turbo", detail: detail, stage: stage,
                         truncation: truncated ? "" : nil)
    }

    /// Whether the last two bytes, ignoring trailing zero padding, are the EOI marker FF D9.
    private static func endsWithEndOfImage(_ raw: UnsafeRawBufferPointer) -> Bool {
        var end = raw.count
        while end > 0 && raw[end - 1] == 0 { end -= 1 }
        return end >= 2 && raw[end - 2] == 0xFF && raw[end - 1] == 0xD9
    }
}
