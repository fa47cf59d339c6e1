import Foundation
import Testing

@testable import CraftImaging

@Suite("Decoding PNG and JPEG")
struct DecodingTests {
    @Test("Every PNG fixture decodes to exactly the samples that were written")
    func pngSamplesAreExact() throws {
        let expected = try Fixtures.expected()
        #expect(expected.png.count >= 14)
        for fixture in expected.png {
            let image = try Fixtures.image(fixture.file)
            #expect(image.width == fixture.width, "\(fixture.file) width")
            #expect(image.height == fixture.height, "\(fixture.file) height")
            #expect("\(image.colorModel)" == fixture.colorModel, "\(fixture.file) colour model")
            #expect(image.bitDepth == fixture.bitDepth, "\(fixture.file) bit depth")
            if image.bitDepth == 16 && image.colorModel.hasAlpha {
                try expectUnpremultiplied(image, fixture)
            } else {
                let difference = maxDifference(image.intSamples, fixture.samples)
                #expect(difference == 0, "\(fixture.file): max sample difference \(String(describing: difference))")
            }
        }
    }

    /// 16-bit alpha PNGs: alpha exact; colour within the rounding of libpng's premultiplication
    /// (65535 / alpha + 1), and 0 under fully transparent pixels.
    func expectUnpremultiplied(_ image: Image, _ fixture: ExpectedFixtures.Decoded) throws {
        let actual = image.intSamples, channels = image.channels
        try #require(actual.count == fixture.samples.count)
        var worst = 0
        for pixel in stride(from: 0, to: actual.count, by: channels) {
            let alpha = fixture.samples[pixel + channels - 1]
            #expect(actual[pixel + channels - 1] == alpha)
            for band in 0..<(channels - 1) {
                let got = actual[pixel + band], want = fixture.samples[pixel + band]
                if alpha == 0 {
                    #expect(got == 0)
                } else {
                    #expect(abs(got - want) <= 65535 / alpha + 1, "\(fixture.file) sample \(pixel + band): \(got) vs \(want), alpha \(alpha)")
                    if alpha == 65535 { #expect(got == want) }
                    worst = max(worst, abs(Int(Image.eightBit(UInt16(got))) - Int(Image.eightBit(UInt16(want)))))
                }
            }
        }
        // At 8 bits (what preprocessing uses) the colours are off by at most one level.
        #expect(worst <= 1, "\(fixture.file): 8-bit colour difference \(worst)")
    }

    @Test("16-bit PNG without alpha keeps all 16 bits, and an sRGB chunk does not change them")
    func sixteenBitIsKept() throws {
        let image = try Fixtures.image("rgb16.png")
        guard case .uint16(let values) = image.samples else {
            Issue.record("rgb16.png decoded to \(image.bitDepth)-bit samples")
            return
        }
        // Not all values are multiples of 257, so the low byte really is kept.
        #expect(values.contains { $0 % 257 != 0 })
        let gray = try Fixtures.image("gray16_srgb.png")
        #expect(gray.bitDepth == 16 && gray.colorModel == .gray)
    }

    @Test("JPEG fixtures decode exactly as Pillow decodes them (libjpeg-turbo, islow IDCT)")
    func jpegMatchesPillow() throws {
        let expected = try Fixtures.expected()
        #expect(expected.jpeg.count == 5)
        for fixture in expected.jpeg {
            let image = try Fixtures.image(fixture.file)
            #expect(image.width == fixture.width && image.height == fixture.height, "\(fixture.file) size")
            #expect("\(image.colorModel)" == fixture.colorModel, "\(fixture.file) colour model")
            let difference = maxDifference(image.intSamples, fixture.samples)
            // libjpeg-turbo 2.1 (system) and 3.2 (Pillow's) share the islow IDCT and fancy upsampling.
            #expect(difference == 0, "\(fixture.file): max difference from Pillow \(String(describing: difference))")
        }
    }

    @Test("Image(data:) decodes the same bytes as Image(contentsOf:)")
    func dataAndFileAgree() throws {
        for name in ["rgb8_interlaced.png", "rgb_progressive.jpg"] {
            let fromData = try Image(data: Fixtures.data(name), name: name)
            #expect(try fromData == Fixtures.image(name))
        }
    }

    @Test("Image(data:) accepts a Data slice that does not start at index 0")
    func dataSlice() throws {
        for name in ["rgb8_gamma.png", "gray.jpg"] {
            let bytes = try Fixtures.data(name)
            let padded = Data([1, 2, 3]) + bytes + Data([9])
            let slice = padded[3..<(3 + bytes.count)]
            #expect(slice.startIndex == 3)
            #expect(try Image(data: slice, name: name) == Fixtures.image(name))
        }
    }

    @Test("floatSamples and sample(x:y:channel:) scale to [0, 1]")
    func floatScaling() throws {
        let image = try Fixtures.image("rgb16.png")
        guard case .uint16(let raw) = image.samples else { throw ImageError(.corrupt, "expected 16-bit") }
        let floats = image.floatSamples
        #expect(floats.count == raw.count)
        #expect(floats[5] == Float(raw[5]) / 65535)
        #expect(image.sample(x: 1, y: 0, channel: 2) == Float(raw[5]) / 65535)
        let eight = try Fixtures.image("gray8.png")
        #expect(eight.sample(x: 0, y: 1, channel: 0) == Float(eight.intSamples[13]) / 255)
    }

    @Test("convertedToRGB matches Pillow's convert(\"RGB\"): gray replicated, alpha dropped")
    func convertRGBMatchesPillow() throws {
        let expected = try Fixtures.expected()
        #expect(expected.convertRGB.count == 4)
        for (file, samples) in expected.convertRGB {
            let rgb = try Fixtures.image(file).convertedToRGB()
            #expect(rgb.colorModel == .rgb && rgb.bitDepth == 8)
            #expect(rgb.intSamples == samples, "\(file)")
        }
    }

    @Test("composited() matches Pillow's alpha_composite over white")
    func compositeMatchesPillow() throws {
        let expected = try Fixtures.expected()
        let image = try Fixtures.image(expected.compositeOverWhite.file)
        let flat = image.composited()
        #expect(flat.colorModel == .rgb)
        #expect(flat.intSamples == expected.compositeOverWhite.samples)
    }

    @Test("16-bit samples round to 8 bits as libpng's scale_16 does")
    func sixteenToEight() throws {
        let image = try Image(width: 4, height: 1, colorModel: .gray, samples: .uint16([0, 128, 65535, 32896]))
        #expect(image.convertedTo8Bit().intSamples == [0, 0, 255, 128])
        #expect(image.convertedToRGB().intSamples == [0, 0, 0, 0, 0, 0, 255, 255, 255, 128, 128, 128])
    }

    @Test("An image built from the wrong number of samples is rejected")
    func sampleCountIsChecked() {
        #expect(throws: ImageError.self) { try Image(width: 2, height: 2, colorModel: .rgb, bytes: [1, 2, 3]) }
        #expect(throws: ImageError.self) { try Image(width: 0, height: 2, colorModel: .gray, bytes: []) }
    }
}

@Suite("Concurrent decoding")
struct ConcurrencyTests {
    @Test("Decoding from many tasks at once gives the same images as decoding one at a time")
    func concurrentDecodes() async throws {
        let names = ["rgb8_interlaced.png", "rgba16_interlaced.png", "rgb_progressive.jpg", "gray.jpg"]
        var sequential: [String: Image] = [:]
        for name in names { sequential[name] = try Fixtures.image(name) }
        let payloads = try names.map { ($0, try Fixtures.data($0)) }
        let results = try await withThrowingTaskGroup(of: (String, Image).self) { group in
            for round in 0..<16 {
                let (name, data) = payloads[round % payloads.count]
                group.addTask { (name, try Image(data: data, name: name)) }
            }
            var collected: [(String, Image)] = []
            for try await result in group { collected.append(result) }
            return collected
        }
        #expect(results.count == 16)
        for (name, image) in results { #expect(image == sequential[name], "\(name)") }
    }
}
