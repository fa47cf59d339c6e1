// The manifest-independent description of a codebook that the compatibility checker compares.

/// What a bundle says (or what was measured) about a codebook: its hash and shape.
///
/// The packaging side builds this from a bundle manifest (`craft.json` → `codebook`); the checker
/// compares two of them without knowing the manifest format.
public struct CodebookIdentity: Sendable, Hashable, Codable {
    /// `"sha256:" + 64 lowercase hex digits` (docs/codebook-hash.md).
    public var hash: String
    /// Number of entries K per level.
    public var entries: Int
    /// Dimension D of each entry.
    public var dimension: Int
    /// Number of residual levels (1 = plain VQ).
    public var depth: Int
    /// The distance the codebook is searched with.
    public var metric: CodebookMetric

    public init(hash: String, entries: Int, dimension: Int, depth: Int, metric: CodebookMetric) {
        self.hash = hash
        self.entries = entries
        self.dimension = dimension
        self.depth = depth
        self.metric = metric
    }

    /// `K×D` or `depth×K×D`, for messages.
    public var shapeDescription: String {
        depth == 1 ? "\(entries)×\(dimension)" : "\(depth)×\(entries)×\(dimension)"
    }
}

extension Codebook {
    /// This codebook's identity: its hash (computed once, when it was created) and shape.
    public var identity: CodebookIdentity {
        CodebookIdentity(hash: hash, entries: entries, dimension: dimension, depth: depth, metric: metric)
    }
}
