// The built-in `table-encoder` and `table-backend` runtimes: small but real `VisionEncoder` and
// `LanguageBackend` runtimes run by the same Pipeline as the model runtimes, used by tests, the
// examples and the embedded registry. They need no neural network: the encoder quantizes stored
// feature vectors through the bundle's codebook; the backend answers from a table keyed by codes.
import CraftCore
import CraftFiles
import Foundation
import SafeTensors
import TensorCore

/// An encoder whose images are the rows of a feature table stored in its bundle, quantized through
/// the bundle's codebook (an ``IndexedImageEncoder``: it takes image indices, not pictures).
///
/// Runtime id `table-encoder`, version `1.x`. Files: the codebook tensor (`codebook.tensor`) and a
/// features tensor `[images, tokens_per_image, D]` named by `config.features` (`{"file", "name"}`).
/// Quantization is real residual vector quantization with the declared metric and the lowest index
/// winning ties, by CraftCore's `Codebook`. The tokens of an image lie on a square grid when
/// `tokens_per_image` is a square (the digits bundles' four quadrants are 2×2), else on one row.
public struct TableEncoder: IndexedImageEncoder {
    /// The runtime id.
    public static let runtimeID = "table-encoder"

    /// The bundle's manifest.
    public let manifest: BundleManifest
    /// The codebook, validated, with CraftCore's nearest-code search.
    public let space: Codebook
    /// `[images][tokens][D]`, flattened.
    let features: [Float]
    /// The rows of the feature table: image indices are `0..<imageCount`.
    public let imageCount: Int
    /// `encoder.tokens_per_image`: the tokens of every image.
    public let tokensPerImage: Int
    /// Where an image's tokens lie: a square when ``tokensPerImage`` is one, else one row.
    public let grid: (rows: Int, columns: Int)

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
        let side = Int(Double(tokens).squareRoot().rounded())
        grid = side * side == tokens && tokens > 0 ? (side, side) : (1, tokens)
    }

    /// The codebook this encoder quantizes into.
    public var codebook: any CodebookSpace { space }

    /// The `encoder.image_size` its bundle declares (the size of the pictures its features were
    /// computed from; it reads no pixels itself).
    public var imageSize: (height: Int, width: Int) {
        let size = manifest.encoder?.imageSize ?? 0
        return (size, size)
    }

    /// The feature vectors of image `index`, `[tokens][D]` flattened.
    public func features(ofImage index: Int) throws -> [Float] {
        guard (0..<imageCount).contains(index) else {
            throw BundleError(.notFound, "\(manifest.reference) has \(imageCount) images; there is no image \(index)")
        }
        let size = tokensPerImage * manifest.codebook.dimension
        return Array(features[(index * size)..<((index + 1) * size)])
    }

    /// The visual tokens of image `index`: its stored features quantized, in raster order on
    /// ``grid``, with their quantized vectors as `features`.
    ///
    /// - Throws: ``BundleError`` (`notFound`) when there is no image `index`.
    public func tokens(forImage index: Int) throws -> VisualTokens {
        try quantize(features(ofImage: index))
    }

    /// Residual quantization of `[N][D]` vectors (flattened, N at most one grid) through the codebook,
    /// with CraftCore's exact nearest-code search (``Codebook/quantize(_:count:threads:blocking:)``).
    public func quantize(_ vectors: [Float]) throws -> VisualTokens {
        let dimension = space.dimension
        guard vectors.count % dimension == 0, vectors.count / dimension <= grid.rows * grid.columns else {
            throw BundleError(.runtimeFailed, "cannot quantize \(vectors.count) values as at most \(grid.rows * grid.columns) tokens of a \(dimension)-dimensional codebook")
        }
        let count = vectors.count / dimension
        let result = try space.quantize(vectors, count: count)
        return try VisualTokens(
            codebookHash: space.hash, grid: grid, codes: IndexTensor(result.codes, shape: [count, space.depth]),
            positions: (0..<count).map { GridPosition(row: $0 / grid.columns, column: $0 % grid.columns) },
            residualNorms: result.residualNorms, features: Tensor(result.quantized, shape: [count, dimension]))
    }

    /// Refuses: a table encoder's images are indices into its feature table (``tokens(forImage:)``).
    public func preprocess(_ image: RGBImage) throws -> Tensor {
        throw picturesRefused
    }

    /// Refuses: a table encoder's images are indices into its feature table (``tokens(forImage:)``).
    public func encode(_ pixels: Tensor) throws -> [VisualTokens] {
        throw picturesRefused
    }

    private var picturesRefused: BundleError {
        BundleError(.runtimeFailed, "\(manifest.reference) is a table-encoder bundle: its images are the indices 0..<\(imageCount) of its feature table, not pictures; pass an image index")
    }
}

/// A backend that answers from a table keyed by the first-level codes of an image's visual tokens.
///
/// Runtime id `table-backend`, version `1.x`. File `answers.json` (or `config.answers`):
/// `{"answers": {"3,1,4,1": "a cat"}, "default": "I don't know"}`. It declares the codebook hash it
/// reads, like every backend. It reads no text: the answer depends on the visual tokens alone, so
/// the prompt occupies no positions and generation options are not used.
public struct TableBackend: LanguageBackend {
    /// The runtime id.
    public static let runtimeID = "table-backend"

    /// The bundle's manifest.
    public let manifest: BundleManifest
    /// The answers by key (first-level codes joined with commas, ``key(for:)``).
    public let answers: [String: String]
    /// The answer for codes the table does not hold.
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

    /// `backend.context_length`, or no limit when the manifest declares none.
    public var contextLength: Int { manifest.backend?.contextLength ?? Int.max }

    /// The answer for an image's tokens: looked up by its first-level codes joined with commas.
    public func answer(_ tokens: VisualTokens) -> String {
        answers[Self.key(for: tokens)] ?? defaultAnswer
    }

    /// The table key of some tokens: first-level codes joined with commas.
    public static func key(for tokens: VisualTokens) -> String {
        let depth = max(tokens.codes.shape.last ?? 1, 1)
        return stride(from: 0, to: tokens.codes.scalars.count, by: depth).map { String(tokens.codes.scalars[$0]) }.joined(separator: ",")
    }

    /// The answer for the prompt's first visual tokens (the default answer when it has none), as
    /// one finished piece of text with no token ids.
    ///
    /// - Throws: ``BundleError`` (`codebookHashMismatch`) when the tokens index another codebook.
    public func generate(_ prompt: [PromptSegment], options: GenerationOptions) throws -> GeneratedText {
        for case .visual(let tokens) in prompt {
            guard tokens.codebookHash == codebookHash else {
                throw BundleError(.codebookHashMismatch, "\(manifest.reference) reads codebook \(codebookHash) but was given visual tokens of \(tokens.codebookHash); pair it with an encoder of its codebook")
            }
            return GeneratedText(text: answer(tokens), tokens: [], finishReason: .endOfSequence)
        }
        return GeneratedText(text: defaultAnswer, tokens: [], finishReason: .endOfSequence)
    }

    /// Text as its UTF-8 bytes (the backend has no vocabulary of its own).
    public func tokenize(_ text: String) throws -> [Int32] {
        text.utf8.map { Int32($0) }
    }

    /// The text of UTF-8 byte ids.
    public func detokenize(_ tokens: [Int32]) throws -> String {
        String(decoding: tokens.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)
    }

    /// The visual tokens and vectors of the prompt: the text occupies no positions, since the
    /// answer does not read it.
    public func promptPositions(_ prompt: [PromptSegment]) throws -> Int {
        prompt.reduce(0) { total, segment in
            switch segment {
            case .visual(let tokens): total + tokens.count
            case .vectors(let vectors): total + (vectors.shape.first ?? 0)
            case .text, .tokens: total
            }
        }
    }
}

enum TableRuntime {
    static func registerBuiltIns(in registry: inout RuntimeRegistry) {
        let versions = VersionRange(text: "^1.0", alternatives: [[
            .init(operation: .greaterOrEqual, version: SemanticVersion(major: 1, minor: 0, patch: 0), namesPrerelease: false),
            .init(operation: .less, version: SemanticVersion(major: 2, minor: 0, patch: 0, prerelease: ["0"]), namesPrerelease: false),
        ]])
        registry.registerEncoder(TableEncoder.runtimeID, versions: versions,
            summary: "quantizes stored feature vectors through the bundle's codebook") { try TableEncoder(bundle: $0) }
        registry.registerBackend(TableBackend.runtimeID, versions: versions,
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
