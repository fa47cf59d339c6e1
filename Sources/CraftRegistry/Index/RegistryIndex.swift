import Foundation

/// The top-level `registry.json` of a registry: its format version and every published name.
///
/// Clients read it first, then each name's shard (``IndexShard``). It is rewritten (atomically) only
/// when a name appears or disappears, so publishing a new version of a known name touches one shard.
public struct RegistryIndex: Codable, Sendable, Equatable {
    /// The format tag; readers refuse other values.
    public static let currentFormat = "craft.registry/v1"

    /// Always ``currentFormat``.
    public var format: String
    /// Every bundle name with at least one version, sorted.
    public var names: [String]
    /// How shard paths are formed, for clients that don't read docs/registry.md (informative).
    public var shardLayout: String

    enum CodingKeys: String, CodingKey {
        case format, names, shardLayout = "shard_layout"
    }

    public init(names: [String] = []) {
        self.format = Self.currentFormat
        self.names = names.sorted()
        self.shardLayout = "index/{first two characters of the name, '_'-padded}/{name}.json"
    }
}
