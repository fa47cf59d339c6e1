import CraftBundles
import Foundation

/// A Craft registry: a plain directory any static file server can serve (DESIGN.md section 8).
///
/// ```
/// registry.json                          format version and every name (RegistryIndex)
/// index/<first two chars>/<name>.json    one shard per name, listing its versions (IndexShard)
/// bundles/<name>/<name>-<version>.craft  the bundle files
/// keys/<key id>.pub                      public keys this registry trusts for signatures
/// .lock                                  flock(2) target serialising writers
/// ```
///
/// Readers take no lock: every file is replaced by an atomic rename, in an order (bundle, then shard,
/// then `registry.json`) that never lets a reader see a name without its shard or a version without
/// its bundle. Writers serialise on `.lock`. The full format is in `docs/registry.md`.
public struct Registry: Sendable {
    /// The registry directory.
    public let root: URL

    /// A registry rooted at `root` (nothing is read until asked).
    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    // MARK: - Locations

    /// Where a registry location came from.
    public enum LocationSource: String, Sendable {
        /// `--registry PATH`.
        case option
        /// The `CRAFT_REGISTRY` environment variable.
        case environment
        /// `./registry`, because that directory exists.
        case workingDirectory = "working-directory"
        /// `~/.craft/registry`, the fallback.
        case home
    }

    /// Resolves the registry to use: `--registry`, then `CRAFT_REGISTRY`, then `./registry` when
    /// present, then `~/.craft/registry` (DESIGN.md section 8).
    public static func locate(
        explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
        home: URL = FileManager.default.homeDirectoryForCurrentUser
    ) -> (registry: Registry, source: LocationSource) {
        func resolve(_ path: String) -> URL {
            let expanded = NSString(string: path).expandingTildeInPath
            return expanded.hasPrefix("/")
                ? URL(fileURLWithPath: expanded) : currentDirectory.appendingPathComponent(expanded)
        }
        if let explicit, !explicit.isEmpty {
            return (Registry(root: resolve(explicit)), .option)
        }
        if let variable = environment["CRAFT_REGISTRY"], !variable.isEmpty {
            return (Registry(root: resolve(variable)), .environment)
        }
        let local = currentDirectory.appendingPathComponent("registry")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: local.path, isDirectory: &isDirectory), isDirectory.boolValue {
            return (Registry(root: local), .workingDirectory)
        }
        return (Registry(root: home.appendingPathComponent(".craft/registry")), .home)
    }

    // MARK: - Paths

    var indexURL: URL { root.appendingPathComponent("registry.json") }
    var lockURL: URL { root.appendingPathComponent(".lock") }
    var stagingURL: URL { root.appendingPathComponent(".staging") }
    var keysURL: URL { root.appendingPathComponent("keys") }

    func shardURL(for name: String) -> URL {
        root.appendingPathComponent(IndexShard.relativePath(for: name))
    }

    /// The registry-relative path of a bundle file.
    static func bundlePath(name: String, version: String) -> String {
        "bundles/\(name)/\(name)-\(version).craft"
    }

    /// The file URL of a published version's bundle.
    public func bundleURL(for record: IndexedVersion) -> URL {
        root.appendingPathComponent(record.path)
    }

    // MARK: - Reading

    /// Whether the registry directory exists.
    public var exists: Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// Reads `registry.json`. A directory without one is an empty registry.
    ///
    /// - Throws: ``RegistryError/Code/noRegistry`` when the directory does not exist;
    ///   ``RegistryError/Code/corruptIndex`` naming the file when it is malformed.
    public func readIndex() throws -> RegistryIndex {
        guard exists else {
            throw RegistryError(
                .noRegistry, "no registry at \(root.path); pass --registry PATH, set CRAFT_REGISTRY, or publish a bundle there to create it")
        }
        guard FileManager.default.fileExists(atPath: indexURL.path) else { return RegistryIndex() }
        let index: RegistryIndex = try decode(RegistryIndex.self, at: indexURL)
        guard index.format == RegistryIndex.currentFormat else {
            throw RegistryError(
                .corruptIndex, "\(indexURL.path) has format \(index.format) but this Craft reads \(RegistryIndex.currentFormat); upgrade Craft or rebuild the registry")
        }
        for name in index.names where !BundleReference.isValidName(name) {
            throw RegistryError(.corruptIndex, "\(indexURL.path) lists '\(name)', which is not a valid bundle name; the index was edited by hand or damaged")
        }
        return index
    }

    /// Reads the shard of `name`, or `nil` when the name was never published.
    ///
    /// - Throws: ``RegistryError/Code/corruptIndex`` naming the shard file when it is malformed.
    public func readShard(named name: String) throws -> IndexShard? {
        guard BundleReference.isValidName(name) else { return nil }
        let url = shardURL(for: name)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let shard: IndexShard = try decode(IndexShard.self, at: url)
        guard shard.format == IndexShard.currentFormat else {
            throw RegistryError(
                .corruptIndex, "\(url.path) has format \(shard.format) but this Craft reads \(IndexShard.currentFormat); upgrade Craft or republish \(name)")
        }
        guard shard.name == name else {
            throw RegistryError(.corruptIndex, "\(url.path) describes '\(shard.name)' instead of '\(name)'; the index was moved or damaged")
        }
        for (position, record) in shard.versions.enumerated() {
            if record.semanticVersion == nil {
                throw RegistryError(.corruptIndex, "\(url.path): versions[\(position)].version '\(record.version)' is not SemVer; the shard is damaged")
            }
            let expected = Self.bundlePath(name: name, version: record.version)
            if record.path != expected {
                throw RegistryError(.corruptIndex, "\(url.path): versions[\(position)].path is '\(record.path)' but must be '\(expected)'; the shard is damaged")
            }
        }
        return shard
    }

    /// The shard of `name`, which must exist and hold at least one version.
    ///
    /// - Throws: ``RegistryError/Code/notFound`` when the registry holds no such name.
    public func shard(named name: String) throws -> IndexShard {
        _ = try readIndex()
        guard let shard = try readShard(named: name), !shard.versions.isEmpty else {
            throw RegistryError(
                .notFound, "no bundle named '\(name)' in the registry at \(root.path); look for it with craft-registry search \(name)")
        }
        return shard
    }

    /// Every shard the index lists, in name order, plus one error per unreadable shard.
    ///
    /// A broken shard does not hide the others: it is reported in `problems`, naming its file.
    public func allShards() throws -> (shards: [IndexShard], problems: [RegistryError]) {
        let index = try readIndex()
        var shards: [IndexShard] = []
        var problems: [RegistryError] = []
        for name in index.names {
            do {
                if let shard = try readShard(named: name), !shard.versions.isEmpty {
                    shards.append(shard)
                } else {
                    problems.append(RegistryError(
                        .corruptIndex, "\(indexURL.path) lists '\(name)' but its shard \(shardURL(for: name).path) is missing or empty; republish it or remove the name"))
                }
            } catch let error as RegistryError {
                problems.append(error)
            }
        }
        return (shards, problems)
    }

    func decode<T: Decodable>(_ type: T.Type, at url: URL) throws -> T {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw RegistryError(.io, "cannot read \(url.path) (\(error.localizedDescription)); check permissions", cause: error)
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw RegistryError(
                .corruptIndex, "\(url.path) is not a valid registry index file (\(JSONFormatting.describe(error))); restore it from a backup or republish the bundle", cause: error)
        }
    }
}
