// Streaming SHA-256 of files and byte buffers, and lowercase hex.
import Crypto
import Foundation

package enum FileDigest {
    /// Size of the chunks files are read and hashed in.
    static let chunkSize = 1 << 20

    /// Lowercase hex of a digest.
    static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        for byte in digest {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads `url` in chunks, feeding each to `body`; returns the byte count.
    @discardableResult
    static func stream(_ url: URL, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw BundleError(.notFound, "cannot open \(url.path) (\(error.localizedDescription)); check that it exists and is readable")
        }
        defer { try? handle.close() }
        var total: Int64 = 0
        while true {
            let chunk: Data?
            do {
                chunk = try handle.read(upToCount: chunkSize)
            } catch {
                throw BundleError(.io, "cannot read \(url.path) (\(error.localizedDescription))")
            }
            guard let chunk, !chunk.isEmpty else { break }
            total += Int64(chunk.count)
            try chunk.withUnsafeBytes { try body($0) }
        }
        return total
    }

    /// SHA-256 (lowercase hex, no prefix) and byte count of a file, streamed.
    package static func sha256(of url: URL) throws -> (hex: String, size: Int64) {
        var hasher = SHA256()
        let size = try stream(url) { hasher.update(bufferPointer: $0) }
        return (hex(hasher.finalize()), size)
    }

    /// SHA-256 (lowercase hex, no prefix) of bytes in memory.
    static func sha256(_ data: Data) -> String {
        hex(SHA256.hash(data: data))
    }
}
