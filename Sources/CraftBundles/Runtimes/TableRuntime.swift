// The built-in `table-encoder` and `table-backend` runtimes: small but real, used by tests, the example
// and demos. They need no neural network: the encoder quantizes stored feature vectors through the
// bundle's codebook; the backend answers from a table keyed by codes. The model runtimes (SigLIP vision
// towers, Llama and GPT-2 decoders) are registered by CraftModels when they land.
import CraftCore
import CraftFiles
import Foundation
import SafeTensors

/// Visual tokens produced by ``TableEncoder``: one code per level for each token, and the norm of
/// each token's final quantization residual.
public struct TableTokens: Sendable, Equatable {
    /// `codes[token][level]`.
    public var codes: [[Int]]
    /// `‖feature − quantized‖` per token.
    public var residualNorms: [Float]
}

/// An encoder that maps feature vectors stored in its bundle through the bundle's codebook.
///
/// Runtime id `table-encoder`, version `1.x`. Files: the codebook tensor (`codebook.tensor`) and a
/// features tensor `[images, tokens_per_image, D]` named by `config.features` (`{"file", "name"}`).
/// "Images" are indices into that table. Quantization is real residual vector quantization with the
/// declared metric and the lowest index winning ties (docs/architecture.md), by CraftCore's `Codebook`.
public struct TableEncoder: Sendable {
    /// The runtime id.
    public static let runtimeID = "table-encoder"

    public let manifest: BundleManifest
    /// The codebook, validated, with CraftCore's nearest-code search.
    public let space: Codebook
    /// `[images][tokens][D]`, flattened.
    let features: [Float]
    public let imageCount: Int
    public let tokensPerImage: Int

    /// Loads the encoder from an unpacked bundle.
    public init(bundle: UnpackedBundle) throws {
        let manifest = bundle.manifest
        self.manifest = manifest
        guard manifest.kind == .encoder else {
            throw BundleError(.runtimeFailed, "\(manifest.reference) is a backend bundle; table-encoder loads encoders")
        }
        // The codebook hashed when the bundle was opened, else read, hashed and checked here.
        space = try bundle.verifiedCodebook ?? CodebookVerification.verifiedCodebook(manifest, in: bundle.directory)
        guard let reference = manifest.config?["features"], let file = reference["file"]?.stringValue,
            let name = reference["name"]?.stringValue
        else {
            throw BundleError(.invalidManifest, "\(manifest.reference) has no config.features {\"file\", \"name\"} naming its feature table; table-encoder needs one", entry: "config.features")
        }
        let (values, shape) = try TableRuntime.readFloats(TensorReference(file: file, name: name), bundle: bundle)
        let tokens = manifest.encoder?.tokensPerImage ?? 0
        guard shape.count == 3, shape[1] == tokens, shape[2] == manifest.codebook.dimension else {
            throw BundleError(.invalidManifest, "the features tensor \"\(name)\" of \(manifest.reference) has shape \(shape); expected [images, \(tokens), \(manifest.codebook.dimension)] (tokens_per_image, codebook dim)", entry: file)
        }
        features = values
        imageCount = shape[0]
        tokensPerImage = tokens
    }

    /// The codebook this encoder emits codes of.
    public var codebookIdentity: CodebookIdentity { manifest.codebook.identity }

    /// The feature vectors of image `index`, `[tokens][D]` flattened.
    public func features(ofImage index: Int) throws -> [Float] {
        guard (0..<imageCount).contains(index) else {
            throw BundleError(.notFound, "\(manifest.reference) has \(imageCount) images; there is no image \(index)")
        }
        let size = tokensPerImage * manifest.codebook.dimension
        return Array(features[(index * size)..<((index + 1) * size)])
    }

    /// Quantizes image `index`'s stored features.
    public func encode(image index: Int) throws -> TableTokens {
        try quantize(features(ofImage: index))
    }

    /// Residual quantization of `[N][D]` vectors (flattened) through the codebook, with CraftCore's
    /// exact nearest-code search (``Codebook/quantize(_:count:threads:blocking:)``).
    public func quantize(_ vectors: [Float]) throws -> TableTokens {
        let dimension = space.dimension, depth = space.depth
        guard vectors.count % dimension == 0 else {
            throw BundleError(.runtimeFailed, "cannot quantize \(vectors.count) values with a \(dimension)-dimensional codebook")
        }
        let count = vectors.count / dimension
        let result = try space.quantize(vectors, count: count)
        let codes = (0..<count).map { row in (0..<depth).map { Int(result.codes[row * depth + $0]) } }
        return TableTokens(codes: codes, residualNorms: result.residualNorms)
    }
}

/// A backend that answers from a table keyed by the first-level codes of an image.
///
/// Runtime id `table-backend`, version `1.x`. File `answers.json` (or `config.answers`):
/// `{"answers": {"3,1,4,1": "a cat"}, "default": "I don't know"}`. It declares the codebook hash it
/// reads, like every backend.
public struct TableBackend: Sendable {
    /// The runtime id.
    public static let runtimeID = "table-backend"

    public let manifest: BundleManifest
    public let answers: [String: String]
    public let defaultAnswer: String

    /// Loads the backend from an unpacked bundle.
    public init(bundle: UnpackedBundle) throws {
        let manifest = bundle.manifest
        self.manifest = manifest
        guard manifest.kind == .backend else {
            throw BundleError(.runtimeFailed, "\(manifest.reference) is an encoder bundle; table-backend loads backends")
        }
        let path = manifest.config?["answers"]?.stringValue ?? "answers.json"
        guard manifest.file(at: path) != nil else {
            throw BundleError(.invalidManifest, "\(manifest.reference) does not list its answer table \"\(path)\" in files", entry: path)
        }
        struct Table: Decodable {
            var answers: [String: String]
            var `default`: String?
        }
        do {
            let table = try JSONDecoder().decode(Table.self, from: BoundedFile.read(bundle.url(for: path), limit: BoundedFile.smallDocumentLimit))
            answers = table.answers
            defaultAnswer = table.default ?? "I don't know."
        } catch {
            throw BundleError(.invalidManifest, "\(path) of \(manifest.reference) is not an answer table {\"answers\": {\"codes\": \"text\"}, \"default\": \"text\"} (\(error.localizedDescription))", entry: path)
        }
    }

    /// The codebook hash this backend reads.
    public var codebookHash: String { manifest.codebook.hash }

    /// The answer for an image's tokens: looked up by its first-level codes joined with commas.
    public func answer(_ tokens: TableTokens, prompt: String = "") -> String {
        answers[Self.key(for: tokens)] ?? defaultAnswer
    }

    /// The table key of some tokens: first-level codes joined with commas.
    public static func key(for tokens: TableTokens) -> String {
        tokens.codes.map { String($0.first ?? -1) }.joined(separator: ",")
    }
}

enum TableRuntime {
    static func registerBuiltIns(in registry: inout RuntimeRegistry) {
        let versions = VersionRange(text: "^1.0", alternatives: [[
            .init(operation: .greaterOrEqual, version: SemanticVersion(major: 1, minor: 0, patch: 0), namesPrerelease: false),
            .init(operation: .less, version: SemanticVersion(major: 2, minor: 0, patch: 0, prerelease: ["0"]), namesPrerelease: false),
        ]])
        registry.register(TableEncoder.runtimeID, versions: versions, kind: .encoder,
            summary: "quantizes stored feature vectors through the bundle's codebook") { try TableEncoder(bundle: $0) }
        registry.register(TableBackend.runtimeID, versions: versions, kind: .backend,
            summary: "answers from a table keyed by visual codes") { try TableBackend(bundle: $0) }
    }

    static func readFloats(_ tensor: TensorReference, bundle: UnpackedBundle) throws -> (values: [Float], shape: [Int]) {
        guard bundle.manifest.file(at: tensor.file) != nil else {
            throw BundleError(.invalidManifest, "\(bundle.manifest.reference) does not list \"\(tensor.file)\" in files", entry: tensor.file)
        }
        do {
            let file = try SafeTensorsFile(contentsOf: bundle.url(for: tensor.file))
            return (try file.floats(tensor.name), try file.info(tensor.name).shape)
        } catch {
            let reason = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
            throw BundleError(.invalidManifest, "cannot read tensor \"\(tensor.name)\" from \(tensor.file) of \(bundle.manifest.reference): \(reason)", entry: tensor.file)
        }
    }

}
