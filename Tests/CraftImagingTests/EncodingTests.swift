import Foundation
import Testing

@testable import CraftImaging

@Suite("Writing PNG")
struct EncodingTests {
    @Test("Gray, gray+alpha, RGB and RGBA images survive a PNG round trip exactly")
    func roundTrip() throws {
        for name in ["gray8.png", "graya8.png", "rgb8_interlaced.png", "rgba8.png", "palette8.png"] {
            let image = try Fixtures.image(name)
            let data = try image.pngData()
            #expect(data.starts(with: [0x89, 0x50, 0x4E, 0x47]))
            let decoded = try Image(data: data, name: "re-encoded \(name)")
            #expect(decoded == image, "\(name)")
        }
    }

    @Test("Pillow-compatible bytes: a written PNG read back through a file equals the original")
    func writeFile() throws {
        let scratch = try ScratchDirectory()
        let image = try Image(width: 3, height: 2, colorModel: .rgb, bytes: Array(0..<18).map { UInt8($0 * 14) })
        let url = scratch.url.appendingPathComponent("out.png")
        try image.writePNG(to: url)
        #expect(try Image(contentsOf: url) == image)
    }

    @Test("Writing into a missing directory is an io error; 16-bit images must be converted first")
    func writeErrors() throws {
        let scratch = try ScratchDirectory()
        let image = try Image(width: 1, height: 1, colorModel: .gray, bytes: [7])
        let url = scratch.url.appendingPathComponent("missing/out.png")
        do {
            try image.writePNG(to: url)
            Issue.record("wrote into a missing directory")
        } catch let error as ImageError {
            #expect(error.code == .io)
            #expect(error.message.contains(url.path))
        }
        let sixteen = try Fixtures.image("rgb16.png")
        #expect(throws: ImageError.self) { try sixteen.pngData() }
        #expect(try Image(data: sixteen.convertedTo8Bit().pngData()) == sixteen.convertedTo8Bit())
    }
}
