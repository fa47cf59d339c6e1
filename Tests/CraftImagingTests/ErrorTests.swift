import Foundation
import Testing

@testable import CraftImaging

/// A scratch directory removed when the value goes away.
final class ScratchDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("craft-imaging-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func write(_ name: String, _ data: Data) throws -> URL {
        let file = url.appendingPathComponent(name)
        try data.write(to: file)
        return file
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Decodes a file expecting a failure, and returns the error (or records an issue).
func decodingError(_ url: URL, limits: ImageLimits = .default) -> ImageError? {
    do {
        let image = try Image(contentsOf: url, limits: limits)
        Issue.record("\(url.lastPathComponent) decoded to a \(image.width)x\(image.height) image instead of failing")
        return nil
    } catch let error as ImageError {
        return error
    } catch {
        Issue.record("\(url.lastPathComponent) threw a non-ImageError: \(error)")
        return nil
    }
}

/// Byte offset of the first chunk of a type in a PNG.
func chunkOffset(_ bytes: [UInt8], _ type: String) -> Int? {
    var offset = 8
    while offset + 8 <= bytes.count {
        let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
        if String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self) == type { return offset }
        offset += 12 + length
    }
    return nil
}

@Suite("Bad input gives typed errors naming the file")
struct ErrorTests {
    func expect(_ url: URL, _ code: ImageError.Code, mentions: String? = nil, limits: ImageLimits = .default) {
        guard let error = decodingError(url, limits: limits) else { return }
        #expect(error.code == code, "\(url.lastPathComponent): \(error.message)")
        #expect(error.message.contains(url.path), "message does not name the file: \(error.message)")
        #expect(error.source == url.path)
        if let mentions { #expect(error.message.contains(mentions), "\(error.message)") }
    }

    @Test("A missing file is notFound")
    func missingFile() throws {
        let scratch = try ScratchDirectory()
        expect(scratch.url.appendingPathComponent("absent.png"), .notFound)
    }

    @Test("A directory is an io error")
    func directory() throws {
        let scratch = try ScratchDirectory()
        expect(scratch.url, .io)
    }

    @Test("Empty, GIF, BMP and WebP files are unsupportedFormat")
    func unsupportedFormats() throws {
        let scratch = try ScratchDirectory()
        expect(try scratch.write("empty.png", Data()), .unsupportedFormat, mentions: "empty")
        expect(try scratch.write("fake.gif", Data("GIF89a".utf8) + Data(count: 20)), .unsupportedFormat, mentions: "GIF")
        expect(try scratch.write("fake.bmp", Data("BM".utf8) + Data(count: 60)), .unsupportedFormat, mentions: "BMP")
        expect(try scratch.write("fake.webp", Data("RIFF\0\0\0\0WEBPVP8 ".utf8)), .unsupportedFormat, mentions: "WebP")
        expect(try scratch.write("text.png", Data("hello, not an image".utf8)), .unsupportedFormat)
    }

    @Test("A CMYK JPEG is unsupportedFormat with advice to convert")
    func cmykJPEG() throws {
        expect(try Fixtures.url("cmyk.jpg"), .unsupportedFormat, mentions: "CMYK")
    }

    @Test("PNG cut short is truncated, at any of several lengths")
    func truncatedPNG() throws {
        let scratch = try ScratchDirectory()
        let bytes = try Fixtures.data("rgb8_interlaced.png")
        let idat = try #require(chunkOffset([UInt8](bytes), "IDAT"))
        for length in [1, 5, 8, 9, 20, 40, idat + 20, bytes.count / 2, bytes.count - 40] {
            expect(try scratch.write("cut-\(length).png", bytes.prefix(length)), .truncated)
        }
    }

    @Test("A PNG missing only its IEND chunk still decodes: all pixel data is there")
    func missingEnd() throws {
        let bytes = try Fixtures.data("rgb8_interlaced.png")
        let image = try Image(data: bytes.prefix(bytes.count - 12), name: "no-iend.png")
        #expect(try image == Fixtures.image("rgb8_interlaced.png"))
    }

    @Test("A PNG whose chunk layout is damaged (a byte deleted mid-file) is corrupt, not truncated")
    func shiftedChunks() throws {
        let scratch = try ScratchDirectory()
        var bytes = [UInt8](try Fixtures.data("rgb8_interlaced.png"))
        let idat = try #require(chunkOffset(bytes, "IDAT"))
        bytes.remove(at: idat - 6)  // inside the previous chunk: every later chunk header is misread
        expect(try scratch.write("shifted.png", Data(bytes)), .corrupt)
    }

    @Test("A PNG whose IDAT or IHDR CRC does not match is corrupt")
    func badCRC() throws {
        let scratch = try ScratchDirectory()
        var bytes = [UInt8](try Fixtures.data("rgb8.png"))
        let idat = try #require(chunkOffset(bytes, "IDAT"))
        let length = Int(bytes[idat + 2]) << 8 | Int(bytes[idat + 3])
        bytes[idat + 8 + length] ^= 0x55  // the CRC itself
        expect(try scratch.write("bad-idat-crc.png", Data(bytes)), .corrupt, mentions: "CRC")

        var data = [UInt8](try Fixtures.data("rgb8.png"))
        data[idat + 10] ^= 0x55  // a compressed byte: zlib fails before the CRC is reached
        expect(try scratch.write("bad-idat-data.png", Data(data)), .corrupt)

        var header = [UInt8](try Fixtures.data("rgb8.png"))
        header[8 + 8 + 3] ^= 0x01  // width's low byte; the IHDR CRC no longer matches
        expect(try scratch.write("bad-ihdr-crc.png", Data(header)), .corrupt)
    }

    @Test("A PNG with a damaged zlib stream (CRC fixed up) is corrupt")
    func badDeflate() throws {
        let scratch = try ScratchDirectory()
        var bytes = [UInt8](try Fixtures.data("rgb8.png"))
        let idat = try #require(chunkOffset(bytes, "IDAT"))
        let length = Int(bytes[idat + 3]) | Int(bytes[idat + 2]) << 8
        for index in (idat + 8)..<(idat + 8 + length) { bytes[index] = 0xFF }
        let crc = crc32(bytes[(idat + 4)..<(idat + 8 + length)])
        for shift in 0..<4 { bytes[idat + 8 + length + shift] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * UInt32(shift))) }
        expect(try scratch.write("bad-deflate.png", Data(bytes)), .corrupt)
    }

    @Test("JPEG cut short is truncated")
    func truncatedJPEG() throws {
        let scratch = try ScratchDirectory()
        let bytes = try Fixtures.data("rgb_baseline.jpg")
        for length in [1, 2, 3, 100, bytes.count * 6 / 10, bytes.count - 2] {
            expect(try scratch.write("cut-\(length).jpg", bytes.prefix(length)), .truncated)
        }
        let progressive = try Fixtures.data("rgb_progressive.jpg")
        expect(try scratch.write("cut-progressive.jpg", progressive.prefix(progressive.count / 2)), .truncated)
    }

    @Test("A JPEG with garbage between its start and end markers is corrupt")
    func corruptJPEG() throws {
        let scratch = try ScratchDirectory()
        let garbage = Data([0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x03, 0x42, 0x13, 0x37, 0xFF, 0xD9])
        expect(try scratch.write("garbage.jpg", garbage), .corrupt)
    }

    @Test("Images over the configured limits are tooLarge, before decoding")
    func limits() throws {
        let small = ImageLimits(maxWidth: 100, maxHeight: 100, maxPixels: 300)
        expect(try Fixtures.url("rgb8_interlaced.png"), .tooLarge, limits: small)
        expect(try Fixtures.url("rgb_baseline.jpg"), .tooLarge, limits: small)
        expect(try Fixtures.url("rgb8.png"), .tooLarge, limits: ImageLimits(maxWidth: 12))
        expect(try Fixtures.url("rgb8.png"), .tooLarge, limits: ImageLimits(maxFileBytes: 100))
        #expect(throws: ImageError.self) {
            try Image(data: Fixtures.data("rgb8.png"), name: "x", limits: ImageLimits(maxFileBytes: 100))
        }
        // At the limit is fine.
        #expect(try Image(contentsOf: Fixtures.url("rgb8.png"), limits: ImageLimits(maxWidth: 13, maxHeight: 9, maxPixels: 117)).width == 13)
    }

    @Test("In-memory data errors use the given name")
    func dataName() throws {
        do {
            _ = try Image(data: Data("GIF89a....".utf8), name: "upload #7")
            Issue.record("GIF bytes decoded")
        } catch let error as ImageError {
            #expect(error.code == .unsupportedFormat)
            #expect(error.message.contains("upload #7"))
        }
    }
}

/// CRC-32 (PNG's polynomial), for building test files.
func crc32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}
