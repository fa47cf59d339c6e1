// The bundle manifest `craft.json`, schema `craft.bundle/v1` (docs/bundle-format.md).
import CraftCore
import Foundation

/// Whether a bundle holds a vision encoder or a language backend.
public enum BundleKind: String, Codable, Sendable, CaseIterable {
    case encoder
    case backend
}

/// The manifest of a `.craft` bundle: the file `craft.json` at the root of the archive.
///
/// Decoding keeps every field this version does not know in ``unknownFields`` (and in the nested
/// ``RuntimeReference``, ``CodebookDescriptor``, ``BundleFileEntry``, ``EncoderSpecifics``,
/// ``BackendSpecifics`` and ``BundleRequirements``), so a decode–encode round trip loses nothing.
/// ``canonicalJSON()`` writes sorted keys, pretty-printed, with a trailing newline, so packing is
/// reproducible. ``validate()`` checks the rules JSON decoding cannot (patterns, cross-field rules)
/// and names the field path of the first problem.
///
/// ```swift
/// let manifest = try BundleManifest.load(from: url)
/// try manifest.validate()
/// print(manifest.name, manifest.version, manifest.codebook.hash)
/// ```
public struct BundleManifest: Codable, Sendable, Equatable {
    /// The schema identifier this version reads and writes.
    public static let schemaIdentifier = "craft.bundle/v1"
    /// The manifest's path inside a bundle.
    public static let fileName = "craft.json"

    /// Always ``schemaIdentifier``.
    public var schema: String
    public var kind: BundleKind
    /// `[a-z0-9][a-z0-9._-]{0,63}`.
    public var name: String
    public var version: SemanticVersion
    /// One line saying what the bundle is for.
    public var summary: String
    /// Domain tags (`dermatology`, `remote-sensing`).
    public var domains: [String]
    /// SPDX license identifier or a short license name.
    public var license: String
    /// The runtime that can load this bundle.
    public var runtime: RuntimeReference
    /// The codebook the encoder emits or the backend reads.
    public var codebook: CodebookDescriptor
    /// Every file of the bundle other than `craft.json`, sorted by path when packed.
    public var files: [BundleFileEntry]
    /// Runtime configuration, free-form JSON object.
    public var config: JSONValue?
    /// Encoder specifics (required when ``kind`` is `encoder`).
    public var encoder: EncoderSpecifics?
    /// Backend specifics (required when ``kind`` is `backend`).
    public var backend: BackendSpecifics?
    /// Where the bundle comes from: base bundle, method, surrogate, dataset, metrics (free-form object).
    public var provenance: JSONValue?
    /// Versions of Craft that can use this bundle.
    public var requires: BundleRequirements?
    /// Top-level fields this version does not know, kept for round trips and otherwise ignored.
    public var unknownFields: [String: JSONValue]

    public init(
        kind: BundleKind, name: String, version: SemanticVersion, summary: String, domains: [String] = [],
        license: String, runtime: RuntimeReference, codebook: CodebookDescriptor, files: [BundleFileEntry] = [],
        config: JSONValue? = nil, encoder: EncoderSpecifics? = nil, backend: BackendSpecifics? = nil,
        provenance: JSONValue? = nil, requires: BundleRequirements? = nil, unknownFields: [String: JSONValue] = [:]
    ) {
        self.schema = Self.schemaIdentifier
        self.kind = kind
        self.name = name
        self.version = version
        self.summary = summary
        self.domains = domains
        self.license = license
        self.runtime = runtime
        self.codebook = codebook
        self.files = files
        self.config = config
        self.encoder = encoder
        self.backend = backend
        self.provenance = provenance
        self.requires = requires
        self.unknownFields = unknownFields
    }

    /// `NAME@VERSION`, for messages.
    public var reference: String { "\(name)@\(version)" }

    /// The default bundle file name, `NAME-VERSION.craft`.
    public var defaultFileName: String { "\(name)-\(version).craft" }

    /// The file entry for `path`, if listed.
    public func file(at path: String) -> BundleFileEntry? {
        files.first { $0.path == path }
    }

    private static let knownKeys: Set<String> = [
        "schema", "kind", "name", "version", "summary", "domains", "license", "runtime", "codebook", "files",
        "config", "encoder", "backend", "provenance", "requires",
    ]

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        schema = try c.decode(String.self, forKey: .init("schema"))
        kind = try c.decode(BundleKind.self, forKey: .init("kind"))
        name = try c.decode(String.self, forKey: .init("name"))
        version = try c.decode(SemanticVersion.self, forKey: .init("version"))
        summary = try c.decode(String.self, forKey: .init("summary"))
        domains = try c.decodeIfPresent([String].self, forKey: .init("domains")) ?? []
        license = try c.decode(String.self, forKey: .init("license"))
        runtime = try c.decode(RuntimeReference.self, forKey: .init("runtime"))
        codebook = try c.decode(CodebookDescriptor.self, forKey: .init("codebook"))
        files = try c.decode([BundleFileEntry].self, forKey: .init("files"))
        config = try c.decodeIfPresent(JSONValue.self, forKey: .init("config"))
        encoder = try c.decodeIfPresent(EncoderSpecifics.self, forKey: .init("encoder"))
        backend = try c.decodeIfPresent(BackendSpecifics.self, forKey: .init("backend"))
        provenance = try c.decodeIfPresent(JSONValue.self, forKey: .init("provenance"))
        requires = try c.decodeIfPresent(BundleRequirements.self, forKey: .init("requires"))
        unknownFields = try c.unknownMembers(excluding: Self.knownKeys)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(schema, forKey: .init("schema"))
        try c.encode(kind, forKey: .init("kind"))
        try c.encode(name, forKey: .init("name"))
        try c.encode(version, forKey: .init("version"))
        try c.encode(summary, forKey: .init("summary"))
        try c.encode(domains, forKey: .init("domains"))
        try c.encode(license, forKey: .init("license"))
        try c.encode(runtime, forKey: .init("runtime"))
        try c.encode(codebook, forKey: .init("codebook"))
        try c.encode(files, forKey: .init("files"))
        try c.encodeIfPresent(config, forKey: .init("config"))
        try c.encodeIfPresent(self.encoder, forKey: .init("encoder"))
        try c.encodeIfPresent(backend, forKey: .init("backend"))
        try c.encodeIfPresent(provenance, forKey: .init("provenance"))
        try c.encodeIfPresent(requires, forKey: .init("requires"))
        try c.encodeUnknown(unknownFields)
    }
}

/// The runtime that loads a bundle: an id registered in a ``RuntimeRegistry`` and the runtime
/// version the bundle was written for.
public struct RuntimeReference: Codable, Sendable, Equatable {
    /// `[a-z0-9][a-z0-9._-]{0,63}`, for example `siglip-vq`, `llama`, `table-encoder`.
    public var id: String
    public var version: SemanticVersion
    public var unknownFields: [String: JSONValue] = [:]

    public init(id: String, version: SemanticVersion) {
        self.id = id
        self.version = version
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        id = try c.decode(String.self, forKey: .init("id"))
        version = try c.decode(SemanticVersion.self, forKey: .init("version"))
        unknownFields = try c.unknownMembers(excluding: ["id", "version"])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(id, forKey: .init("id"))
        try c.encode(version, forKey: .init("version"))
        try c.encodeUnknown(unknownFields)
    }
}

/// A tensor inside a bundle file: `{"file": "codebook.safetensors", "name": "codebook"}`.
public struct TensorReference: Codable, Sendable, Equatable {
    /// The bundle path of a safetensors file (listed in `files`).
    public var file: String
    /// The tensor's name in that file.
    public var name: String
    public var unknownFields: [String: JSONValue] = [:]

    public init(file: String, name: String) {
        self.file = file
        self.name = name
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        file = try c.decode(String.self, forKey: .init("file"))
        name = try c.decode(String.self, forKey: .init("name"))
        unknownFields = try c.unknownMembers(excluding: ["file", "name"])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(file, forKey: .init("file"))
        try c.encode(name, forKey: .init("name"))
        try c.encodeUnknown(unknownFields)
    }
}

/// The manifest's `codebook`: the hash and shape of the codebook, and for encoders where its tensor is.
public struct CodebookDescriptor: Codable, Sendable, Equatable {
    /// `"sha256:" + 64 lowercase hex digits` (docs/codebook-hash.md). A claim: packing and the checker
    /// recompute it from ``tensor`` for encoders.
    public var hash: String
    /// Entries K per level.
    public var entries: Int
    /// Dimension D (`dim` in JSON).
    public var dimension: Int
    /// Residual levels (1 = plain VQ).
    public var depth: Int
    public var metric: CodebookMetric
    /// The codebook tensor, `[K, D]` or `[depth, K, D]` (required for encoders).
    public var tensor: TensorReference?
    public var unknownFields: [String: JSONValue] = [:]

    public init(hash: String, entries: Int, dimension: Int, depth: Int = 1, metric: CodebookMetric, tensor: TensorReference? = nil) {
        self.hash = hash
        self.entries = entries
        self.dimension = dimension
        self.depth = depth
        self.metric = metric
        self.tensor = tensor
    }

    /// The manifest-independent view used by the compatibility checker.
    public var identity: CodebookIdentity {
        CodebookIdentity(hash: hash, entries: entries, dimension: dimension, depth: depth, metric: metric)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        hash = try c.decode(String.self, forKey: .init("hash"))
        entries = try c.decode(Int.self, forKey: .init("entries"))
        dimension = try c.decode(Int.self, forKey: .init("dim"))
        depth = try c.decodeIfPresent(Int.self, forKey: .init("depth")) ?? 1
        metric = try c.decode(CodebookMetric.self, forKey: .init("metric"))
        tensor = try c.decodeIfPresent(TensorReference.self, forKey: .init("tensor"))
        unknownFields = try c.unknownMembers(excluding: ["hash", "entries", "dim", "depth", "metric", "tensor"])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(hash, forKey: .init("hash"))
        try c.encode(entries, forKey: .init("entries"))
        try c.encode(dimension, forKey: .init("dim"))
        try c.encode(depth, forKey: .init("depth"))
        try c.encode(metric, forKey: .init("metric"))
        try c.encodeIfPresent(tensor, forKey: .init("tensor"))
        try c.encodeUnknown(unknownFields)
    }
}

/// One file of a bundle: its path inside the archive, its size in bytes and its SHA-256.
public struct BundleFileEntry: Codable, Sendable, Equatable {
    /// Relative path with `/` separators; components of `[A-Za-z0-9._+-]`, never `.` or `..`.
    public var path: String
    public var size: Int64
    /// 64 lowercase hex digits.
    public var sha256: String
    public var unknownFields: [String: JSONValue] = [:]

    public init(path: String, size: Int64, sha256: String) {
        self.path = path
        self.size = size
        self.sha256 = sha256
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        path = try c.decode(String.self, forKey: .init("path"))
        size = try c.decode(Int64.self, forKey: .init("size"))
        sha256 = try c.decode(String.self, forKey: .init("sha256"))
        unknownFields = try c.unknownMembers(excluding: ["path", "size", "sha256"])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(path, forKey: .init("path"))
        try c.encode(size, forKey: .init("size"))
        try c.encode(sha256, forKey: .init("sha256"))
        try c.encodeUnknown(unknownFields)
    }
}

/// The manifest's `encoder` section.
public struct EncoderSpecifics: Codable, Sendable, Equatable {
    /// Input image side in pixels (`image_size`).
    public var imageSize: Int
    /// Per-channel normalisation mean and standard deviation (`mean`, `std`).
    public var mean: [Double]?
    public var std: [Double]?
    /// Visual tokens emitted per image (`tokens_per_image`).
    public var tokensPerImage: Int
    /// The vision-tower layer whose output is quantized (`quantization_layer`).
    public var quantizationLayer: Int?
    public var unknownFields: [String: JSONValue] = [:]

    public init(imageSize: Int, mean: [Double]? = nil, std: [Double]? = nil, tokensPerImage: Int, quantizationLayer: Int? = nil) {
        self.imageSize = imageSize
        self.mean = mean
        self.std = std
        self.tokensPerImage = tokensPerImage
        self.quantizationLayer = quantizationLayer
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        imageSize = try c.decode(Int.self, forKey: .init("image_size"))
        mean = try c.decodeIfPresent([Double].self, forKey: .init("mean"))
        std = try c.decodeIfPresent([Double].self, forKey: .init("std"))
        tokensPerImage = try c.decode(Int.self, forKey: .init("tokens_per_image"))
        quantizationLayer = try c.decodeIfPresent(Int.self, forKey: .init("quantization_layer"))
        unknownFields = try c.unknownMembers(excluding: ["image_size", "mean", "std", "tokens_per_image", "quantization_layer"])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(imageSize, forKey: .init("image_size"))
        try c.encodeIfPresent(mean, forKey: .init("mean"))
        try c.encodeIfPresent(std, forKey: .init("std"))
        try c.encode(tokensPerImage, forKey: .init("tokens_per_image"))
        try c.encodeIfPresent(quantizationLayer, forKey: .init("quantization_layer"))
        try c.encodeUnknown(unknownFields)
    }
}

/// The manifest's `backend` section.
public struct BackendSpecifics: Codable, Sendable, Equatable {
    /// Maximum sequence length in tokens, visual and text together (`context_length`).
    public var contextLength: Int
    /// Bundle path of the tokenizer file (`tokenizer`), listed in `files`.
    public var tokenizer: String?
    /// Prompt template with `{image}` and `{prompt}` placeholders (`prompt_template`).
    public var promptTemplate: String?
    /// The projector from codebook space to the model's hidden size (`projector`): for an
    /// `mlp2x_gelu` projector, its first layer's weight (`NAME.0.weight`; the second is `NAME.2.weight`).
    public var projector: TensorReference?
    /// The projector's form (`projector_type`): `linear` (the default when absent) or `mlp2x_gelu`
    /// (LLaVA/VILA: linear, exact GELU, linear). Runtimes refuse other values.
    public var projectorType: String?
    public var unknownFields: [String: JSONValue] = [:]

    public init(
        contextLength: Int, tokenizer: String? = nil, promptTemplate: String? = nil, projector: TensorReference? = nil,
        projectorType: String? = nil
    ) {
        self.contextLength = contextLength
        self.tokenizer = tokenizer
        self.promptTemplate = promptTemplate
        self.projector = projector
        self.projectorType = projectorType
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        contextLength = try c.decode(Int.self, forKey: .init("context_length"))
        tokenizer = try c.decodeIfPresent(String.self, forKey: .init("tokenizer"))
        promptTemplate = try c.decodeIfPresent(String.self, forKey: .init("prompt_template"))
        projector = try c.decodeIfPresent(TensorReference.self, forKey: .init("projector"))
        projectorType = try c.decodeIfPresent(String.self, forKey: .init("projector_type"))
        unknownFields = try c.unknownMembers(excluding: ["context_length", "tokenizer", "prompt_template", "projector", "projector_type"])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(contextLength, forKey: .init("context_length"))
        try c.encodeIfPresent(tokenizer, forKey: .init("tokenizer"))
        try c.encodeIfPresent(promptTemplate, forKey: .init("prompt_template"))
        try c.encodeIfPresent(projector, forKey: .init("projector"))
        try c.encodeIfPresent(projectorType, forKey: .init("projector_type"))
        try c.encodeUnknown(unknownFields)
    }
}

/// The manifest's `requires`: which versions of Craft can use the bundle.
public struct BundleRequirements: Codable, Sendable, Equatable {
    /// A range of Craft versions (`craft`), for example `>=0.1 <1.0`.
    public var craft: VersionRange?
    public var unknownFields: [String: JSONValue] = [:]

    public init(craft: VersionRange?) {
        self.craft = craft
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        craft = try c.decodeIfPresent(VersionRange.self, forKey: .init("craft"))
        unknownFields = try c.unknownMembers(excluding: ["craft"])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encodeIfPresent(craft, forKey: .init("craft"))
        try c.encodeUnknown(unknownFields)
    }
}
