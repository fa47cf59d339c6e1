// A custom runtime registered by an application: `caption-backend`, a language backend that turns
// the codes of Craft's built-in `table-encoder` into words. It shows the whole flow an integrator
// follows: register a runtime, pack bundles, verify them, check the pair, load, run.
//
// This file is also compiled into Craft's own test target (Tests/CraftBundlesTests/CustomRuntimeExample,
// a symbolic link), so `make test` checks that the example keeps working without building this package.
import CraftBundles
import CraftCore
import Foundation
import SafeTensors

/// A backend that captions an image by looking up a word for each of its visual codes.
///
/// Bundle layout: `words.json` (`["sky", "sea", ...]`, one word per codebook entry) listed in
/// `files`, `runtime` `{"id": "caption-backend", "version": "1.0.0"}`.
public struct CaptionBackend: Sendable {
    public static let runtimeID = "caption-backend"
    public let words: [String]
    public let codebookHash: String

    public init(bundle: UnpackedBundle) throws {
        guard bundle.manifest.file(at: "words.json") != nil else {
            throw BundleError(.invalidManifest, "\(bundle.manifest.reference) does not list words.json, which caption-backend needs", entry: "files")
        }
        let data = try Data(contentsOf: bundle.url(for: "words.json"))
        words = try JSONDecoder().decode([String].self, from: data)
        guard words.count == bundle.manifest.codebook.entries else {
            throw BundleError(.invalidManifest, "words.json of \(bundle.manifest.reference) has \(words.count) words for \(bundle.manifest.codebook.entries) codebook entries", entry: "words.json")
        }
        codebookHash = bundle.manifest.codebook.hash
    }

    /// Distinct words of the image's first-level codes, in order of first appearance.
    public func caption(_ tokens: TableTokens) -> String {
        var seen: Set<Int> = []
        return tokens.codes.compactMap { $0.first }.filter { seen.insert($0).inserted }.map { words[$0] }.joined(separator: " ")
    }
}

extension RuntimeRegistry {
    /// Registers `caption-backend` 1.x.
    public mutating func registerCaptionBackend() throws {
        register(CaptionBackend.runtimeID, versions: try VersionRange("^1.0"), kind: .backend, summary: "captions images word by code") {
            try CaptionBackend(bundle: $0)
        }
    }
}

/// The demo: everything an application does with a custom runtime, end to end.
public enum CaptionRuntimeDemo {
    static let words = ["sky", "sea", "sand", "tree", "rock", "cloud", "boat", "bird"]

    /// Builds, packs, verifies, pairs, loads and runs; returns the printed report.
    public static func run(in work: URL) throws -> String {
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: work, withIntermediateDirectories: true)
        let entries = words.count, dimension = 3

        // 1. An encoder bundle for the built-in table-encoder runtime: a codebook and a feature table.
        let encoderSource = work.appendingPathComponent("coast-encoder")
        try fileManager.createDirectory(at: encoderSource, withIntermediateDirectories: true)
        let codebook = (0..<(entries * dimension)).map { Float(($0 * 5) % 7) - 3 + Float($0 / dimension) * 0.5 }
        var writer = SafeTensorsWriter()
        try writer.add("codebook", floats: codebook, shape: [entries, dimension])
        try writer.write(to: encoderSource.appendingPathComponent("codebook.safetensors"))
        let images = [[0, 1, 2, 1], [5, 6, 1, 7]]  // codes each "image" should produce
        let features = images.flatMap { $0.flatMap { code in (0..<dimension).map { codebook[code * dimension + $0] + 0.01 } } }
        var featureWriter = SafeTensorsWriter()
        try featureWriter.add("features", floats: features, shape: [images.count, 4, dimension])
        try featureWriter.write(to: encoderSource.appendingPathComponent("features.safetensors"))
        let hash = try CodebookHash.compute(values: codebook, entries: entries, dimension: dimension, depth: 1, metric: .l2)
        var encoderManifest = BundleManifest(
            kind: .encoder, name: "coast-encoder", version: try SemanticVersion(parsing: "1.0.0"), summary: "Coastal scenes",
            domains: ["coast"], license: "MIT", runtime: RuntimeReference(id: "table-encoder", version: try SemanticVersion(parsing: "1.0.0")),
            codebook: CodebookDescriptor(hash: hash, entries: entries, dimension: dimension, metric: .l2,
                tensor: TensorReference(file: "codebook.safetensors", name: "codebook")),
            config: ["features": ["file": "features.safetensors", "name": "features"]],
            encoder: EncoderSpecifics(imageSize: 8, tokensPerImage: 4))
        encoderManifest.files = ["codebook.safetensors", "features.safetensors"].map { BundleFileEntry(path: $0, size: 0, sha256: String(repeating: "0", count: 64)) }
        try encoderManifest.canonicalJSON().write(to: encoderSource.appendingPathComponent("craft.json"))

        // 2. A backend bundle for the custom caption-backend runtime, reading the same codebook.
        let backendSource = work.appendingPathComponent("coast-captions")
        try fileManager.createDirectory(at: backendSource, withIntermediateDirectories: true)
        try JSONEncoder().encode(words).write(to: backendSource.appendingPathComponent("words.json"))
        let backendManifest = BundleManifest(
            kind: .backend, name: "coast-captions", version: try SemanticVersion(parsing: "1.0.0"), summary: "Captions coastal scenes",
            license: "MIT", runtime: RuntimeReference(id: CaptionBackend.runtimeID, version: try SemanticVersion(parsing: "1.0.0")),
            codebook: CodebookDescriptor(hash: hash, entries: entries, dimension: dimension, metric: .l2),
            files: [BundleFileEntry(path: "words.json", size: 0, sha256: String(repeating: "0", count: 64))],
            backend: BackendSpecifics(contextLength: 16))
        try backendManifest.canonicalJSON().write(to: backendSource.appendingPathComponent("craft.json"))

        // 3. Pack, verify, check the pair with a registry that knows the custom runtime.
        let encoderBundle = try BundleArchive.pack(directory: encoderSource)
        let backendBundle = try BundleArchive.pack(directory: backendSource)
        var runtimes = RuntimeRegistry.builtIn
        let before = checkCompatibility(encoder: try BundleArchive.verify(encoderBundle.url), backend: try BundleArchive.verify(backendBundle.url), runtimes: runtimes)
        try runtimes.registerCaptionBackend()
        let encoder = try BundleArchive.unpack(encoderBundle.url, into: work.appendingPathComponent("unpacked/encoder"))
        let backend = try BundleArchive.unpack(backendBundle.url, into: work.appendingPathComponent("unpacked/backend"))
        let report = checkCompatibility(encoder: encoder, backend: backend, runtimes: runtimes)
        let pair = try report.requirePairing()

        // 4. Load both with their runtimes and caption every image.
        let tableEncoder = try runtimes.load(encoder, as: TableEncoder.self)
        let captioner = try runtimes.load(backend, as: CaptionBackend.self)
        var output = "without the custom runtime: \(before.isCompatible ? "compatible" : "incompatible (\(before.failures.map(\.code.rawValue).joined(separator: ", ")))")\n"
        output += "with caption-backend registered: paired \(pair.encoder.reference) + \(pair.backend.reference) on \(pair.codebook.hash.prefix(19))…\n"
        for image in 0..<tableEncoder.imageCount {
            output += "image \(image): \(captioner.caption(try tableEncoder.encode(image: image)))\n"
        }
        return output
    }
}
