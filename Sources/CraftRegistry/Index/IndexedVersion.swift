import CraftBundles
import CraftCore
import Foundation

/// One published version of a bundle, as its index shard records it (format: docs/registry.md).
///
/// Everything a lookup needs (search, info, compatible partners, resolution of ranges) is here, so a
/// client reads one small JSON file per name and never opens a bundle to answer a question. The
/// bundle itself stays the authority: ``digest`` pins its bytes, and `verify`/`pull` re-check it.
public struct IndexedVersion: Codable, Sendable, Equatable {
    /// The SemVer 2.0 version, as written in the manifest.
    public var version: String
    /// Encoder or backend.
    public var kind: BundleKind
    /// The manifest's one-line summary.
    public var summary: String
    /// The manifest's domain tags.
    public var domains: [String]
    /// The manifest's license identifier.
    public var license: String
    /// The runtime that loads the bundle.
    public var runtime: Runtime
    /// The codebook the bundle emits (encoder) or reads (backend).
    public var codebook: Codebook
    /// `"sha256:<hex>"` of the `.craft` file's bytes.
    public var digest: String
    /// Size of the `.craft` file in bytes.
    public var size: Int64
    /// Path of the bundle file relative to the registry root (`bundles/NAME/NAME-VERSION.craft`).
    public var path: String
    /// A yanked version is hidden from names and ranges but still resolves when asked for exactly.
    public var yanked: Bool
    /// Detached signatures over ``digest`` carried with the bundle when it was published.
    public var signatures: [BundleSignature]

    /// The runtime id and version a bundle names.
    public struct Runtime: Codable, Sendable, Equatable {
        /// The runtime id (`table-encoder`, `llama`, ...).
        public var id: String
        /// The runtime version the bundle was written for.
        public var version: String
        public init(id: String, version: String) {
            self.id = id
            self.version = version
        }
    }

    /// The codebook descriptor copied from the manifest.
    public struct Codebook: Codable, Sendable, Equatable {
        /// `"sha256:<hex>"` codebook hash (docs/codebook-hash.md), as declared by the manifest.
        public var hash: String
        /// Entries K per level.
        public var entries: Int
        /// Dimension D.
        public var dim: Int
        /// Residual levels.
        public var depth: Int
        /// `l2` or `cosine`.
        public var metric: String
        public init(hash: String, entries: Int, dim: Int, depth: Int, metric: String) {
            self.hash = hash
            self.entries = entries
            self.dim = dim
            self.depth = depth
            self.metric = metric
        }
    }

    public init(
        version: String, kind: BundleKind, summary: String, domains: [String], license: String,
        runtime: Runtime, codebook: Codebook, digest: String, size: Int64, path: String,
        yanked: Bool = false, signatures: [BundleSignature] = []
    ) {
        self.version = version
        self.kind = kind
        self.summary = summary
        self.domains = domains
        self.license = license
        self.runtime = runtime
        self.codebook = codebook
        self.digest = digest
        self.size = size
        self.path = path
        self.yanked = yanked
        self.signatures = signatures
    }

    /// The parsed version, or `nil` when the shard holds a string that is not SemVer.
    public var semanticVersion: SemanticVersion? { SemanticVersion(version) }

    /// Whether the version carries a pre-release tag (`1.0.0-beta.1`).
    public var isPrerelease: Bool { Self.isPrerelease(version) }

    static func isPrerelease(_ text: String) -> Bool {
        let core = text.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return core.contains("-")
    }
}
