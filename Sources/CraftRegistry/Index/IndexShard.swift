import CraftBundles
import Foundation

/// The index file of one bundle name: `index/<shard>/<name>.json` (format: docs/registry.md).
///
/// Versions are kept sorted by SemVer precedence, oldest first.
public struct IndexShard: Codable, Sendable, Equatable {
    /// The format tag every shard carries; readers refuse other values.
    public static let currentFormat = "craft.registry.index/v1"

    /// Always ``currentFormat``.
    public var format: String
    /// The bundle name.
    public var name: String
    /// Every published version, oldest first.
    public var versions: [IndexedVersion]

    public init(name: String, versions: [IndexedVersion] = []) {
        self.format = Self.currentFormat
        self.name = name
        self.versions = versions
    }

    /// The record for exactly `version` (string equality after SemVer parsing; build metadata counts).
    public func record(for version: String) -> IndexedVersion? {
        versions.first { $0.version == version }
    }

    /// Sorts ``versions`` by SemVer precedence (unparsable strings last, by text).
    mutating func sortVersions() {
        versions.sort { lhs, rhs in
            switch (lhs.semanticVersion, rhs.semanticVersion) {
            case let (l?, r?): l < r || (!(r < l) && lhs.version < rhs.version)
            case (_?, nil): true
            case (nil, _?): false
            case (nil, nil): lhs.version < rhs.version
            }
        }
    }

    /// The newest version that is not yanked, stable unless `includePrerelease`.
    public func latest(includePrerelease: Bool) -> IndexedVersion? {
        versions.last { !$0.yanked && $0.semanticVersion != nil && (includePrerelease || !$0.isPrerelease) }
    }

    /// The directory a name's shard lives in: its first two characters (`_` pads a one-character name).
    ///
    /// Two characters keep every directory small for registries of tens of thousands of names while
    /// leaving paths readable (`index/cl/clinical-vq.json`).
    public static func shardDirectory(for name: String) -> String {
        let prefix = String(name.prefix(2))
        return prefix.count == 2 ? prefix : prefix + "_"
    }

    /// The shard's path relative to the registry root.
    public static func relativePath(for name: String) -> String {
        "index/\(shardDirectory(for: name))/\(name).json"
    }
}
