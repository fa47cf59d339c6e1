import Foundation
import Testing

@testable import CraftImaging
import TestSupport

@Suite("Resizing matches Pillow")
struct ResizeTests {
    @Test("Image.resized equals Pillow's Image.resize exactly, for every filter, up and down, with and without alpha")
    func matchesPillow() throws {
        let expected = try Fixtures.expected()
        #expect(expected.resize.count == 16)
        for fixture in expected.resize {
            let filter = try #require(ResamplingFilter(rawValue: fixture.filter))
            let source = try Fixtures.image(fixture.file)
            let resized = try source.resized(width: fixture.width, height: fixture.height, filter: filter)
            #expect(resized.width == fixture.width && resized.height == fixture.height)
            #expect(resized.colorModel == source.colorModel)
            let difference = maxDifference(resized.intSamples, fixture.samples)
            #expect(difference == 0, "\(fixture.file) -> \(fixture.width)x\(fixture.height) \(fixture.filter): max difference \(String(describing: difference))")
        }
    }

    @Test("Resizing to the same size returns the image unchanged")
    func identity() throws {
        let image = try Fixtures.image("rgb8.png")
        #expect(try image.resized(width: 13, height: 9) == image)
    }

    @Test("A constant image stays constant under every filter")
    func constant() throws {
        let image = try Image(width: 7, height: 5, colorModel: .rgb, bytes: [UInt8](repeating: 200, count: 105))
        for filter in ResamplingFilter.allCases {
            let resized = try image.resized(width: 11, height: 3, filter: filter)
            #expect(resized.intSamples.allSatisfy { $0 == 200 }, "\(filter)")
        }
    }

    @Test("Invalid sizes are rejected")
    func invalidSize() throws {
        let image = try Fixtures.image("rgb8.png")
        #expect(throws: ImageError.self) { try image.resized(width: 0, height: 4) }
        #expect(throws: ImageError.self) { try image.resized(width: 4, height: -1) }
        #expect(throws: ImageError.self) { try image.resized(width: 70_000, height: 1) }
        #expect(throws: ImageError.self) { try image.resized(width: 65_536, height: 65_536) }
    }

    @Test("Pillow resample codes map to filters and back")
    func pillowCodes() {
        for filter in ResamplingFilter.allCases { #expect(ResamplingFilter(pillowCode: filter.pillowCode) == filter) }
        #expect(ResamplingFilter(pillowCode: 0) == nil)
        #expect(ResamplingFilter(pillowCode: 2) == .bilinear)
        #expect(ResamplingFilter(pillowCode: 3) == .bicubic)
    }
}

@Suite("SigLIP preprocessing matches transformers")
struct PreprocessingTests {
    @Test("pixelValues equals SiglipImageProcessorPil output (PNG, RGBA, gray and JPEG inputs)")
    func matchesTransformers() throws {
        let expected = try Fixtures.expected()
        #expect(expected.siglip.count == 5)
        for fixture in expected.siglip {
            let pixels = try Fixtures.image(fixture.file).pixelValues(fixture.config)
            #expect(pixels.shape == fixture.shape, "\(fixture.file)")
            let check = approximatelyEqual(pixels.values, fixture.values, relative: 0, absolute: 1e-6)
            #expect(check.ok, "\(fixture.file) \(fixture.shape): \(check.report)")
            // Same integer pixels and the same float32 operations as numpy: equal, not just close.
            #expect(pixels.values == fixture.values, "\(fixture.file): values are close but not identical")
        }
    }

    @Test("The SigLIP default is 224x224 bicubic with mean and std 0.5")
    func siglipDefault() throws {
        let preprocessing = ImagePreprocessing.siglip
        #expect(preprocessing.width == 224 && preprocessing.height == 224)
        #expect(preprocessing.resampling == .bicubic)
        #expect(preprocessing.mean == [0.5, 0.5, 0.5] && preprocessing.std == [0.5, 0.5, 0.5])
        let pixels = try Fixtures.image("rgb_baseline.jpg").pixelValues()
        #expect(pixels.shape == [3, 224, 224])
        #expect(pixels.values.count == 3 * 224 * 224)
        #expect(pixels.values.allSatisfy { $0 >= -1 && $0 <= 1 })
    }

    @Test("The explicit-size overload uses bilinear and the given normalisation")
    func explicitOverload() throws {
        let image = try Fixtures.image("rgb8.png")
        let pixels = try image.pixelValues(width: 13, height: 9, mean: [0, 0, 0], std: [1, 1, 1])
        #expect(pixels.shape == [3, 9, 13])
        // Same size: no resampling, so the values are the samples / 255, channel-first.
        let samples = image.intSamples
        #expect(pixels.values[0] == Float(Double(samples[0]) * (1.0 / 255.0)))
        #expect(pixels.values[117] == Float(Double(samples[1]) * (1.0 / 255.0)))
    }

    @Test("A Hugging Face preprocessor_config.json decodes, and bad ones are rejected")
    func configDecoding() throws {
        let json = Data("""
            {"do_normalize": true, "do_rescale": true, "do_resize": true, "image_mean": [0.5, 0.5, 0.5],
             "image_processor_type": "SiglipImageProcessor", "image_std": [0.5, 0.5, 0.5], "resample": 2,
             "rescale_factor": 0.00392156862745098, "size": {"height": 384, "width": 384}}
            """.utf8)
        let config = try JSONDecoder().decode(ImagePreprocessing.self, from: json)
        #expect(config.width == 384 && config.height == 384 && config.resampling == .bilinear)
        let roundTrip = try JSONDecoder().decode(ImagePreprocessing.self, from: JSONEncoder().encode(config))
        #expect(roundTrip == config)
        let single = try JSONDecoder().decode(ImagePreprocessing.self, from: Data(#"{"image_mean": 0.25}"#.utf8))
        #expect(single.mean == [0.25, 0.25, 0.25])
        for bad in [#"{"resample": 0}"#, #"{"size": {"shortest_edge": 224}}"#, #"{"image_std": [0.5, 0.5]}"#, #"{"image_std": [0, 1, 1]}"#] {
            #expect(throws: DecodingError.self, "\(bad)") { try JSONDecoder().decode(ImagePreprocessing.self, from: Data(bad.utf8)) }
        }
    }

    @Test("Invalid preprocessing recipes are rejected")
    func invalidRecipe() throws {
        let image = try Fixtures.image("rgb8.png")
        #expect(throws: ImageError.self) { try image.pixelValues(width: 4, height: 4, mean: [0.5], std: [0.5]) }
        #expect(throws: ImageError.self) { try image.pixelValues(width: 4, height: 4, mean: [0, 0, 0], std: [1, 0, 1]) }
        #expect(throws: ImageError.self) { try image.pixelValues(width: 0, height: 4, mean: [0, 0, 0], std: [1, 1, 1]) }
    }
}
