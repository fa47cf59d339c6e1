import Foundation

/// The container format of encoded image bytes, recognised by magic numbers.
enum ImageFormat: Equatable {
    case png
    case jpeg
    /// Not decodable here; the payload describes what it looks like, for the error message.
    case other(String)

    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Looks at the first bytes only.
    static func sniff(_ data: Data) -> ImageFormat {
        let head = [UInt8](data.prefix(12))
        if head.isEmpty { return .other("empty (0 bytes)") }
        if head.starts(with: pngSignature) { return .png }
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        // A file cut inside the magic bytes goes to its decoder, which reports it as truncated.
        if head.count < pngSignature.count && pngSignature.starts(with: head) { return .png }
        if head.count < 3 && [0xFF, 0xD8, 0xFF].starts(with: head) { return .jpeg }
        if head.starts(with: Array("GIF8".utf8)) { return .other("a GIF image") }
        if head.starts(with: Array("BM".utf8)) { return .other("a BMP image") }
        if head.count >= 12, head.starts(with: Array("RIFF".utf8)), Array(head[8..<12]) == Array("WEBP".utf8) {
            return .other("a WebP image")
        }
        if head.starts(with: [0x49, 0x49, 0x2A, 0x00]) || head.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) {
            return .other("a TIFF image")
        }
        if head.count >= 12, Array(head[4..<8]) == Array("ftyp".utf8) { return .other("an ISO media file (HEIC/AVIF/MP4)") }
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return .other("a PNG file with a damaged signature") }
        if head.starts(with: [0xFF, 0xD8]) { return .other("a JPEG file with a damaged start marker") }
        return .other("not a recognised image format")
    }
}
