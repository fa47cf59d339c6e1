// The checked pipeline: an encoder and a backend wired together only from a passing compatibility
// report (DESIGN.md section 7), answering prompts about images.
import CraftBundles
import CraftCore
import CraftImaging
import Foundation

/// A live encoder and backend proven to share a codebook, answering prompts about images.
///
/// It can only be built from a ``CheckedPair`` (which only a passing `CompatibilityReport` hands out)
/// together with the two bundles that pair names, so an unchecked pairing cannot be wired.
///
/// ```swift
/// let report = checkCompatibility(encoder: encoderBundle, backend: backendBundle, runtimes: .craftDefault)
/// let pipeline = try Pipeline(pair: try report.requirePairing(), encoder: encoderBundle, backend: backendBundle)
/// let answer = try pipeline.answer(image: image, prompt: "What is shown?", options: GenerationOptions(maximumNewTokens: 8))
/// ```
public struct Pipeline: Sendable {
    /// The proof that encoder and backend are compatible.
    public let pair: CheckedPair
    /// The live encoder.
    public let encoder: any VisionEncoder
    /// The live backend.
    public let backend: any LanguageBackend
    /// Where the visual tokens and the prompt go.
    public let template: PromptTemplate

    /// Loads both bundles with their runtimes and wires them.
    ///
    /// - Parameters:
    ///   - pair: The checked pair from a passing report on these two bundles.
    ///   - encoder: The unpacked encoder bundle the pair names.
    ///   - backend: The unpacked backend bundle the pair names.
    ///   - runtimes: The runtimes to load them with (default ``RuntimeRegistry/craftDefault``).
    /// - Throws: ``BundleError`` when a bundle is not the one the pair was checked for, when a runtime
    ///   fails, or when the loaded models' codebook hashes differ from the checked one.
    public init(pair: CheckedPair, encoder: UnpackedBundle, backend: UnpackedBundle, runtimes: RuntimeRegistry = .craftDefault) throws {
        for (bundle, candidate, role) in [(encoder, pair.encoder, "encoder"), (backend, pair.backend, "backend")] {
            let manifest = bundle.manifest
            guard manifest.name == candidate.name, manifest.version.description == candidate.version,
                manifest.codebook.hash == candidate.declaredCodebook.hash
            else {
                throw BundleError(.runtimeFailed, "the \(role) bundle \(manifest.reference) is not the \(candidate.reference) the compatibility report checked; check this pair first")
            }
        }
        let liveEncoder = try runtimes.loadEncoder(encoder)
        let liveBackend = try runtimes.loadBackend(backend)
        guard liveEncoder.codebook.hash == pair.codebook.hash, liveBackend.codebookHash == pair.codebook.hash else {
            throw BundleError(.codebookHashMismatch, "the loaded encoder \(encoder.manifest.reference) reads codebook \(liveEncoder.codebook.hash) and backend \(backend.manifest.reference) reads \(liveBackend.codebookHash), but the checked codebook is \(pair.codebook.hash); the bundles changed after the check")
        }
        self.pair = pair
        self.encoder = liveEncoder
        self.backend = liveBackend
        self.template = try PromptTemplate(manifest: backend.manifest)
    }

    /// The visual tokens of one image.
    public func tokens(for image: RGBImage) throws -> VisualTokens {
        let pixels = try encoder.preprocess(image)
        guard let tokens = try encoder.encode(pixels.unsqueezed(0)).first else {
            throw BundleError(.runtimeFailed, "the encoder \(pair.encoder.reference) returned no tokens for the image")
        }
        return tokens
    }

    /// The prompt segments for an image and a prompt, as the backend's template places them.
    public func segments(image: RGBImage, prompt: String) throws -> [PromptSegment] {
        template.segments(visual: try tokens(for: image), prompt: prompt)
    }

    /// Answers `prompt` about `image`: preprocess, encode, place the visual tokens and the prompt by the
    /// backend's template, generate.
    public func answer(image: RGBImage, prompt: String, options: GenerationOptions = GenerationOptions()) throws -> GeneratedText {
        try backend.generate(try segments(image: image, prompt: prompt), options: options)
    }
}

/// Reading images for the pipeline.
public enum ImageInput {
    /// Decodes a PNG or JPEG file into 8-bit RGB, as transformers' `convert_rgb` (Pillow
    /// `convert("RGB")`: alpha dropped, gray replicated).
    ///
    /// - Throws: `ImageError` naming the file when it cannot be read or decoded.
    public static func rgbImage(contentsOf url: URL) throws -> RGBImage {
        try rgbImage(try Image(contentsOf: url))
    }

    /// Converts a decoded image into 8-bit RGB as Pillow's `convert("RGB")` does.
    public static func rgbImage(_ image: Image) throws -> RGBImage {
        let converted = image.convertedToRGB()
        return try RGBImage(width: converted.width, height: converted.height, pixels: converted.bytes)
    }
}
