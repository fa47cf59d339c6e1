// CraftPipeline: the checked pipeline, an encoder and a backend wired together only from a passing
// compatibility report (docs/compatibility.md) through any RuntimeRegistry, answering prompts about
// images. It needs no model zoo: CraftRuntimes adds the model runtimes and re-exports this module.
import CraftBundles
import CraftCore
import CraftFiles
import CraftImaging
import Foundation
import TensorCore

/// A live encoder and backend proven to share a codebook, answering prompts about images.
///
/// It can only be built from a ``CheckedPair`` (which only a passing `CompatibilityReport` hands out)
/// together with the two bundles that pair names, so an unchecked pairing cannot be wired.
///
/// ```swift
/// let report = checkCompatibility(encoder: encoderBundle, backend: backendBundle, runtimes: runtimes)
/// let pipeline = try Pipeline(pair: try report.requirePairing(), encoder: encoderBundle, backend: backendBundle, runtimes: runtimes)
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
    /// The domain code frequencies the encoder bundle carries in ``codeFrequenciesFile``, if any;
    /// ``pruned(_:keepRatio:)`` weighs codes by them.
    public let codeFrequencies: CodeFrequencies?

    /// The encoder-bundle file holding code frequencies, `{"entries": K, "counts": [...], "total": N}`
    /// (listed in the manifest's `files` like every other file).
    public static let codeFrequenciesFile = "code_frequencies.json"

    /// Loads both bundles with their runtimes and wires them.
    ///
    /// The encoder's codebook is not hashed again: a bundle opened by a `BundleOpener` carries the
    /// codebook hashed then (``UnpackedBundle/verifiedCodebook``), which the runtime reuses and whose
    /// hash is compared with the pair's; so a run hashes its codebook once.
    ///
    /// - Parameters:
    ///   - pair: The checked pair from a passing report on these two bundles.
    ///   - encoder: The unpacked encoder bundle the pair names.
    ///   - backend: The unpacked backend bundle the pair names.
    ///   - runtimes: The runtimes to load them with (CraftRuntimes adds an initializer using every
    ///     runtime Craft ships, `RuntimeRegistry.craftDefault`).
    /// - Throws: ``BundleError`` when a bundle is not the one the pair was checked for, when a runtime
    ///   fails, or when the loaded models' codebook hashes differ from the checked one.
    public init(pair: CheckedPair, encoder: UnpackedBundle, backend: UnpackedBundle, runtimes: RuntimeRegistry) throws {
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
        self.codeFrequencies = try Self.loadCodeFrequencies(encoder)
    }

    /// Reads ``codeFrequenciesFile`` from an encoder bundle; `nil` when the bundle has none.
    ///
    /// - Throws: ``BundleError`` naming the bundle when the file is not valid frequencies of the
    ///   bundle's codebook.
    public static func loadCodeFrequencies(_ bundle: UnpackedBundle) throws -> CodeFrequencies? {
        let url = bundle.url(for: codeFrequenciesFile)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let frequencies: CodeFrequencies
        do {
            frequencies = try JSONDecoder().decode(CodeFrequencies.self, from: BoundedFile.read(url, limit: BoundedFile.smallDocumentLimit))
        } catch {
            throw BundleError(.runtimeFailed, "\(bundle.manifest.reference) has an unreadable \(codeFrequenciesFile) (\(error)); recompute it as {\"entries\", \"counts\", \"total\"}")
        }
        guard frequencies.entries == bundle.manifest.codebook.entries else {
            throw BundleError(.runtimeFailed, "\(bundle.manifest.reference) has \(codeFrequenciesFile) for \(frequencies.entries) codes but its codebook has \(bundle.manifest.codebook.entries); recompute it for this codebook")
        }
        return frequencies
    }

    /// Whether ``pruned(_:keepRatio:)`` uses uniform frequencies because the bundle carries none.
    public var prunesWithUniformFrequencies: Bool { codeFrequencies == nil }

    /// `tokens` pruned with ``TokenPruner`` to `round(keepRatio · count)`, keeping order and positions.
    ///
    /// Codes are weighed by the bundle's ``codeFrequencies``, or by uniform frequencies (rarity then
    /// equal for all codes, so tokens rank by residual norm and isolation) when it has none. A ratio of
    /// 1 returns the tokens unchanged.
    ///
    /// - Throws: `CraftCoreError` (`invalidParameter`) when the ratio is outside `(0, 1]`.
    public func pruned(_ tokens: VisualTokens, keepRatio: Double) throws -> VisualTokens {
        try Self.pruned(tokens, keepRatio: keepRatio, codeFrequencies: codeFrequencies, codebookEntries: pair.codebook.entries)
    }

    /// `tokens` pruned as ``pruned(_:keepRatio:)`` prunes them, without a pipeline: for an encoder
    /// bundle alone (`craft tokens --keep-ratio` shows what a pipeline would keep).
    ///
    /// - Parameters:
    ///   - codeFrequencies: The encoder bundle's frequencies (``loadCodeFrequencies(_:)``), or nil
    ///     for uniform ones.
    ///   - codebookEntries: The codebook's size (the uniform frequencies' length).
    /// - Throws: `CraftCoreError` (`invalidParameter`) when the ratio is outside `(0, 1]`.
    public static func pruned(
        _ tokens: VisualTokens, keepRatio: Double, codeFrequencies: CodeFrequencies?, codebookEntries: Int
    ) throws -> VisualTokens {
        _ = try prunedTokenCount(of: tokens.count, keepRatio: keepRatio)
        if keepRatio == 1 { return tokens }
        let frequencies = codeFrequencies ?? CodeFrequencies(entries: max(codebookEntries, 1))
        return try tokens.pruned(by: TokenPruner(frequencies: frequencies), keepRatio: keepRatio)
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
        try options.checkVisualPositionIDs(supportedBy: backend)
        return try backend.generate(try segments(image: image, prompt: prompt), options: options)
    }

    /// Answers `prompt` about `image` with the visual tokens pruned to `keepRatio` first
    /// (``pruned(_:keepRatio:)``). With `options.visualPositionIDs` `.original` the kept tokens keep
    /// the position ids they had before pruning (docs/token-pruning.md, "Position ids").
    ///
    /// - Throws: `CraftCoreError` (`invalidParameter`) for a ratio outside `(0, 1]`, or for original
    ///   position ids with a backend that cannot take them (``LanguageBackend/supportsOriginalVisualPositionIDs``).
    /// - Returns: the answer and the visual token counts before and after pruning.
    public func answer(
        image: RGBImage, prompt: String, keepRatio: Double, options: GenerationOptions = GenerationOptions()
    ) throws -> (answer: GeneratedText, tokensBefore: Int, tokensAfter: Int) {
        try options.checkVisualPositionIDs(supportedBy: backend)
        let tokens = try tokens(for: image)
        let kept = try pruned(tokens, keepRatio: keepRatio)
        let answer = try backend.generate(template.segments(visual: kept, prompt: prompt), options: options)
        return (answer, tokens.count, kept.count)
    }
}

// MARK: - Measured answers

/// An answer with what it cost (``InferenceMeasurement``).
public struct MeasuredAnswer: Sendable {
    /// The generated answer.
    public var answer: GeneratedText
    /// Visual tokens before and after pruning, counted prefill FLOPs, latency.
    public var measurement: InferenceMeasurement

    /// Creates a measured answer.
    public init(answer: GeneratedText, measurement: InferenceMeasurement) {
        self.answer = answer
        self.measurement = measurement
    }
}

extension Pipeline {
    /// The FLOP counter of the backend's decoder, or `nil` when the backend describes no shape
    /// (``LanguageBackend/decoderShape``).
    public var prefillCost: PruningCost? {
        backend.decoderShape.flatMap { try? PruningCost(shape: $0) }
    }

    /// Answers `prompt` about `image` like ``answer(image:prompt:keepRatio:options:)`` and measures
    /// it: visual tokens before and after pruning, the prefill FLOPs counted for both (``PruningCost``
    /// over the prompt's positions, the output head at the last position), and the wall-clock latency
    /// from the decoded image to the answer.
    ///
    /// ```swift
    /// let result = try pipeline.measuredAnswer(image: image, prompt: "What is shown?", keepRatio: 0.5)
    /// print(result.answer.text, result.measurement.prefillFLOPsSavedFraction ?? 0)
    /// ```
    ///
    /// - Throws: `CraftCoreError` (`invalidParameter`) for a ratio outside `(0, 1]`; the encoder's
    ///   and backend's errors otherwise.
    public func measuredAnswer(
        image: RGBImage, prompt: String, keepRatio: Double = 1, options: GenerationOptions = GenerationOptions()
    ) throws -> MeasuredAnswer {
        let clock = ContinuousClock()
        let start = clock.now
        let tokens = try tokens(for: image)
        return try measured(tokens, prompt: prompt, keepRatio: keepRatio, options: options, encoding: clock.now - start)
    }

    /// The visual tokens of several images, encoded in one batch (one forward of the vision tower over
    /// `[images.count, 3, H, W]`), in the images' order.
    ///
    /// - Throws: the encoder's errors, or ``BundleError`` (`runtimeFailed`) when it returns another
    ///   number of token sets than images.
    public func tokens(for images: [RGBImage]) throws -> [VisualTokens] {
        guard !images.isEmpty else { return [] }
        let pixels = Tensor.concatenated(try images.map { try encoder.preprocess($0).unsqueezed(0) }, along: 0)
        let tokens = try encoder.encode(pixels)
        guard tokens.count == images.count else {
            throw BundleError(.runtimeFailed, "the encoder \(pair.encoder.reference) returned \(tokens.count) token sets for a batch of \(images.count) images")
        }
        return tokens
    }

    /// Answers one prompt per image like ``measuredAnswer(image:prompt:keepRatio:options:)``, encoding
    /// all the images in one batch (``tokens(for:)-([RGBImage])``) and generating all the answers
    /// together (``LanguageBackend/generate(batch:options:)``: Craft's decoders share each weight
    /// read among the sequences, and each answer is the one the prompt gets alone). Each item's
    /// latency is its share of the batch: the encoding and generation times divided by the batch
    /// size, plus its own pruning.
    ///
    /// - Throws: `CraftCoreError` (`invalidParameter`) when there are not as many prompts as images or
    ///   the ratio is outside `(0, 1]`; the encoder's and backend's errors otherwise.
    public func measuredAnswers(
        images: [RGBImage], prompts: [String], keepRatio: Double = 1, options: GenerationOptions = GenerationOptions()
    ) throws -> [MeasuredAnswer] {
        guard images.count == prompts.count else {
            throw CraftCoreError(.invalidParameter, "\(images.count) images but \(prompts.count) prompts; give one prompt per image")
        }
        _ = try prunedTokenCount(of: 1, keepRatio: keepRatio)
        try options.checkVisualPositionIDs(supportedBy: backend)
        guard !images.isEmpty else { return [] }
        let clock = ContinuousClock()
        let start = clock.now
        let batch = try tokens(for: images)
        let encoding = (clock.now - start) / images.count
        var prepared: [(tokens: VisualTokens, kept: VisualTokens, segments: [PromptSegment], pruning: Duration)] = []
        for (tokens, prompt) in zip(batch, prompts) {
            let pruningStart = clock.now
            let kept = try pruned(tokens, keepRatio: keepRatio)
            prepared.append((tokens, kept, template.segments(visual: kept, prompt: prompt), clock.now - pruningStart))
        }
        let generationStart = clock.now
        let answers = try backend.generate(batch: prepared.map(\.segments), options: options)
        let generation = (clock.now - generationStart) / images.count
        return try zip(prepared, answers).map { item, answer in
            try measured(item.tokens, kept: item.kept, segments: item.segments, answer: answer,
                         elapsed: encoding + item.pruning + generation)
        }
    }

    /// Prunes, generates and measures one prompt over already encoded tokens.
    private func measured(
        _ tokens: VisualTokens, prompt: String, keepRatio: Double, options: GenerationOptions, encoding: Duration
    ) throws -> MeasuredAnswer {
        try options.checkVisualPositionIDs(supportedBy: backend)
        let clock = ContinuousClock()
        let start = clock.now
        let kept = try pruned(tokens, keepRatio: keepRatio)
        let segments = template.segments(visual: kept, prompt: prompt)
        let answer = try backend.generate(segments, options: options)
        return try measured(tokens, kept: kept, segments: segments, answer: answer, elapsed: encoding + (clock.now - start))
    }

    /// The measurement of one answer: token counts, prefill FLOPs with and without pruning, latency.
    private func measured(
        _ tokens: VisualTokens, kept: VisualTokens, segments: [PromptSegment], answer: GeneratedText, elapsed: Duration
    ) throws -> MeasuredAnswer {
        let textTokens = max(0, try backend.promptPositions(segments) - kept.count)
        let cost = prefillCost
        let measurement = InferenceMeasurement(
            visualTokensBefore: tokens.count, visualTokensAfter: kept.count, textTokens: textTokens,
            prefillFLOPsFull: try cost?.forwardFLOPs(textTokens: textTokens, visualTokens: tokens.count),
            prefillFLOPsPruned: try cost?.forwardFLOPs(textTokens: textTokens, visualTokens: kept.count),
            latencyMilliseconds: Self.milliseconds(elapsed))
        return MeasuredAnswer(answer: answer, measurement: measurement)
    }

    /// The image indices the encoder takes instead of pictures (an ``IndexedImageEncoder``, such as
    /// the `table-encoder` runtime's), or `nil` when it encodes pictures.
    public var imageIndices: Range<Int>? {
        (encoder as? any IndexedImageEncoder).map { 0..<$0.imageCount }
    }

    /// The visual tokens of image `index` of an ``IndexedImageEncoder``.
    ///
    /// - Throws: ``BundleError`` (`runtimeFailed`) when the encoder encodes pictures (``imageIndices``
    ///   is `nil`); the encoder's errors (an index out of range) otherwise.
    public func tokens(forImage index: Int) throws -> VisualTokens {
        guard let indexed = encoder as? any IndexedImageEncoder else {
            throw BundleError(.runtimeFailed, "the encoder \(pair.encoder.reference) encodes pictures, not image indices; pass a PNG or JPEG image")
        }
        return try indexed.tokens(forImage: index)
    }

    /// Answers `prompt` about image `index` of an ``IndexedImageEncoder`` and measures it, like
    /// ``measuredAnswer(image:prompt:keepRatio:options:)`` (the latency counts from the lookup).
    ///
    /// - Throws: as ``tokens(forImage:)``; `CraftCoreError` (`invalidParameter`) for a ratio outside
    ///   `(0, 1]`; the backend's errors.
    public func measuredAnswer(
        imageAt index: Int, prompt: String, keepRatio: Double = 1, options: GenerationOptions = GenerationOptions()
    ) throws -> MeasuredAnswer {
        let clock = ContinuousClock()
        let start = clock.now
        let tokens = try tokens(forImage: index)
        return try measured(tokens, prompt: prompt, keepRatio: keepRatio, options: options, encoding: clock.now - start)
    }

    /// A duration in milliseconds.
    public static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
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
