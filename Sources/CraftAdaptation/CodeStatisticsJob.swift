// `craft stats`: code frequencies of an encoder over a dataset's images (docs/token-pruning.md), written
// into a new version of the encoder bundle as `code_frequencies.json` for test-time token pruning.
import CraftBundles
import CraftCore
import CraftRegistry
import CraftTraining
import Foundation

/// Computes an encoder's code frequencies over a dataset and writes them into a new bundle version.
///
/// The new bundle has the base's files (weights and codebook unchanged) plus `code_frequencies.json`
/// (``CodeFrequencies`` JSON, `{"counts": [...], "entries": K, "total": N}`), a bumped patch version
/// (`1.2.3` → `1.2.4`) unless one is given, and a `provenance` object that keeps the base's provenance
/// under `"previous"`.
///
/// ```swift
/// let result = try CodeStatisticsJob.run(CodeStatisticsRequest(
///     encoder: .file(URL(fileURLWithPath: "derm-vq-1.1.0.craft")), data: URL(fileURLWithPath: "derm/train.jsonl"),
///     outputDirectory: URL(fileURLWithPath: "out")))
/// print(result.frequencies.total, result.packedBundle.path)
/// ```
public enum CodeStatisticsJob {
    /// Runs the job.
    ///
    /// - Throws: ``AdaptationError`` for a missing or malformed dataset (naming the file and line),
    ///   a non-`siglip-vq` bundle or bad options; ``BundleError`` for a damaged bundle.
    public static func run(_ request: CodeStatisticsRequest) throws -> CodeStatisticsResult {
        do {
            return try perform(request)
        } catch {
            throw AdaptationError.wrapping(error)
        }
    }

    private static func perform(_ request: CodeStatisticsRequest) throws -> CodeStatisticsResult {
        guard request.batchSize >= 1 else {
            throw AdaptationError(.invalidRequest, "the batch size is \(request.batchSize); use at least 1")
        }
        if let name = request.name, !BundleReference.isValidName(name) {
            throw AdaptationError(.invalidRequest, "the name \"\(name)\" is not a bundle name; use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit")
        }
        let workspace = try BundleOpener(prefix: "craft-adapt")
        defer { workspace.remove() }
        let opened = try workspace.open(request.encoder, role: "encoder", registry: request.registry, policy: request.policy)
        let dataset = try AdaptationDatasets.load(request.data, role: "dataset")
        let model = try EncoderBundleModel(opened)
        let base = opened.manifest
        let frequencies = try EncoderBundleModel.codeFrequencies(
            of: model.trainable, depth: base.codebook.depth, over: dataset, batchSize: request.batchSize, inputs: model.inputs)
        let digest = try AdaptationError.converting { try dataset.digest() }

        var provenance: [String: JSONValue] = [
            "method": .string("stats"),
            "base": .string(base.reference),
            "dataset_digest": .string(digest),
            "images": .integer(Int64(EncoderBundleModel.distinctImages(dataset).count)),
            "created_by": .string("craft stats \(CraftVersion.current)"),
        ]
        if let digest = opened.digest { provenance["base_digest"] = .string(digest) }
        if let previous = base.provenance { provenance["previous"] = previous }
        let data = try EncoderAdaptation.frequenciesJSON(frequencies)
        try DerivedBundle.createOutputDirectory(request.outputDirectory)
        let derived = DerivedBundle(
            base: opened.bundle, name: request.name ?? base.name,
            version: request.version ?? DerivedBundle.nextVersion(after: base.version, minor: false),
            files: [EncoderAdaptation.codeFrequenciesFile: { try data.write(to: $0) }],
            provenance: .object(provenance))
        let output = try derived.write(into: request.outputDirectory)
        var published: PublishResult?
        if request.publish {
            guard let registry = request.registry else {
                throw AdaptationError(.invalidRequest, "publishing needs a registry; pass --registry PATH")
            }
            published = try registry.publish(output.file)
        }
        return CodeStatisticsResult(
            bundleDirectory: output.directory, packedBundle: output.file, packedDigest: output.digest, manifest: output.manifest,
            base: base.reference, images: EncoderBundleModel.distinctImages(dataset).count, frequencies: frequencies, published: published)
    }
}

/// What ``CodeStatisticsJob/run(_:)`` needs.
public struct CodeStatisticsRequest: Sendable {
    /// The encoder bundle (a `siglip-vq` encoder).
    public var encoder: BundleSource
    /// The JSONL dataset whose images are encoded (`prompt` and `answer` are read but not used).
    public var data: URL
    /// Where `<name>-<version>/` and `<name>-<version>.craft` go.
    public var outputDirectory: URL
    /// The new version; `nil` bumps the base's patch version.
    public var version: SemanticVersion?
    /// The new name; `nil` keeps the base's.
    public var name: String?
    /// Resolves registry references; receives the bundle with ``publish``.
    public var registry: Registry?
    /// What the encoder must satisfy beyond verification (pre-releases, signatures).
    public var policy = OpeningPolicy()
    /// Publish the packed bundle into ``registry``.
    public var publish = false
    /// Images encoded at once.
    public var batchSize = 8

    /// Creates a request.
    public init(encoder: BundleSource, data: URL, outputDirectory: URL) {
        self.encoder = encoder
        self.data = data
        self.outputDirectory = outputDirectory
    }
}

/// The outcome of ``CodeStatisticsJob/run(_:)``.
public struct CodeStatisticsResult: Sendable {
    /// The new bundle, unpacked.
    public var bundleDirectory: URL
    /// The new bundle, packed.
    public var packedBundle: URL
    /// The packed bundle's digest.
    public var packedDigest: String
    /// The new manifest.
    public var manifest: BundleManifest
    /// `NAME@VERSION` of the base bundle.
    public var base: String
    /// Distinct images encoded (an image several lines ask about counts once).
    public var images: Int
    /// The counts.
    public var frequencies: CodeFrequencies
    /// The published record, with ``CodeStatisticsRequest/publish``.
    public var published: PublishResult?

    /// Tokens counted (first-level codes).
    public var tokens: Int { frequencies.total }
    /// Distinct codes seen.
    public var codesUsed: Int { frequencies.codesUsed }
    /// `exp(entropy)` of the code distribution.
    public var perplexity: Double { frequencies.perplexity }
    /// The most frequent codes, most frequent first (ties: lower code first).
    public func topCodes(_ count: Int) -> [(code: Int, count: Int)] { frequencies.top(count) }
}
