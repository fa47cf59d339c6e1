import CraftBundles
import CraftFiles
import Foundation

/// A Craft registry: a plain directory any static file server can serve (docs/registry.md).
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
    /// present, then `~/.craft/registry` (docs/registry.md).
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

    /// Reads `registry.json`, every field validated (docs/registry.md). A directory without one reads
    /// as an empty index; ``inspectIndex()`` tells that apart from a deleted `registry.json`.
    ///
    /// - Throws: ``RegistryError/Code/noRegistry`` when the directory does not exist;
    ///   ``RegistryError/Code/corruptIndex`` naming the file and field when it is malformed.
    public func readIndex() throws -> RegistryIndex {
        guard exists else { throw noRegistry() }
        guard FileManager.default.fileExists(atPath: indexURL.path) else { return RegistryIndex() }
        let index: RegistryIndex = try decode(RegistryIndex.self, at: indexURL)
        if let problem = IndexValidation.problems(in: index).first {
            throw RegistryError(
                .corruptIndex, "\(indexURL.path): \(problem); the index is damaged: run craft-registry reindex to rebuild it from the bundle files")
        }
        return index
    }

    /// Reads the shard of `name` with every field validated, or `nil` when it has no shard file.
    ///
    /// - Throws: ``RegistryError/Code/corruptIndex`` naming the shard file and the field when it is
    ///   malformed (a digest that is not `sha256:` + 64 lowercase hex, a path other than
    ///   `bundles/NAME/NAME-VERSION.craft`, a version that is not SemVer, ...).
    public func readShard(named name: String) throws -> IndexShard? {
        guard BundleReference.isValidName(name) else { return nil }
        let url = shardURL(for: name)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let shard: IndexShard = try decode(IndexShard.self, at: url)
        if let problem = IndexValidation.problems(in: shard, name: name).first {
            throw RegistryError(
                .corruptIndex, "\(url.path): \(problem); the shard is damaged: run craft-registry reindex to rebuild it from the bundle files")
        }
        return shard
    }

    /// The shard of `name`, which must exist and hold at least one version.
    ///
    /// Only the shard is read: a damaged `registry.json` does not keep an intact shard from being used.
    ///
    /// - Throws: ``RegistryError/Code/notFound`` when the registry holds no such name.
    public func shard(named name: String) throws -> IndexShard {
        guard exists else { throw noRegistry() }
        guard let shard = try readShard(named: name), !shard.versions.isEmpty else {
            throw RegistryError(
                .notFound, "no bundle named '\(name)' in the registry at \(root.path); look for it with craft-registry search \(name)")
        }
        return shard
    }

    /// Every shard of the registry, in name order, plus one error per problem found.
    ///
    /// The names are those of `registry.json` together with the shard files present under `index/`, so
    /// a deleted or truncated `registry.json` hides nothing; every disagreement between them is a
    /// problem (see ``inspectIndex()``). A broken shard does not hide the others.
    ///
    /// No lock is taken, unless a disagreement is seen: a publisher between writing a new name's shard
    /// and `registry.json` looks like one, so the registry is then read again under a shared lock and
    /// only what persists is reported.
    public func allShards() throws -> (shards: [IndexShard], problems: [RegistryError]) {
        let first = try readAllShards()
        guard !first.problems.isEmpty else { return first }
        return try FileLock.withSharedLock(at: lockURL) { try readAllShards() }
    }

    func readAllShards() throws -> (shards: [IndexShard], problems: [RegistryError]) {
        let state = try inspectIndex()
        var shards: [IndexShard] = []
        var problems = state.problems
        for name in state.names {
            do {
                if let shard = try readShard(named: name), !shard.versions.isEmpty {
                    shards.append(shard)
                } else if state.index?.names.contains(name) == true {
                    problems.append(RegistryError(
                        .corruptIndex, "\(indexURL.path) lists '\(name)' but its shard \(shardURL(for: name).path) is missing or empty; run craft-registry reindex to rebuild the index from the bundle files"))
                }
            } catch let error as RegistryError {
                problems.append(error)
            }
        }
        return (shards, problems)
    }

    /// What the index files say, checked against what the registry holds.
    struct IndexState {
        /// `registry.json`, when it exists and is valid.
        var index: RegistryIndex?
        /// Every name: listed in `registry.json` or with a shard file under `index/`, sorted.
        var names: [String]
        /// Damage: `registry.json` missing while shards or bundle files exist, unreadable, or not
        /// listing a name that has a shard; bundle files of a name without a shard.
        var problems: [RegistryError]
    }

    /// Reads `registry.json` and compares it with the shard files under `index/` and the bundle
    /// directories under `bundles/`, so that index damage is reported instead of read as "no bundles".
    /// Writers call it holding the registry lock; readers see a writer's intermediate state as damage
    /// unless they hold the shared lock (``allShards()`` retries so).
    func inspectIndex() throws -> IndexState {
        guard exists else { throw noRegistry() }
        let onDisk = shardNamesOnDisk()
        let withBundles = bundleNamesOnDisk()
        var problems: [RegistryError] = []
        var index: RegistryIndex?
        let advice = "run craft-registry reindex to rebuild the index from the bundle files"
        if !FileManager.default.fileExists(atPath: indexURL.path) {
            if !onDisk.isEmpty || !withBundles.isEmpty {
                let held = onDisk.isEmpty ? "bundle files of \(Self.names(withBundles))" : "the shards of \(Self.names(onDisk))"
                problems.append(RegistryError(.corruptIndex, "\(indexURL.path) is missing but the registry holds \(held); \(advice)"))
            } else {
                index = RegistryIndex()
            }
        } else {
            do {
                index = try readIndex()
            } catch let error as RegistryError where error.code == .corruptIndex {
                problems.append(error)
            }
        }
        if let index {
            let unlisted = onDisk.subtracting(index.names)
            if !unlisted.isEmpty {
                problems.append(RegistryError(
                    .corruptIndex, "\(indexURL.path) does not list \(Self.names(unlisted)), whose shard\(unlisted.count == 1 ? "" : "s") exist under \(root.appendingPathComponent("index").path); \(advice)"))
            }
        }
        for name in withBundles.subtracting(onDisk).sorted() {
            problems.append(RegistryError(
                .corruptIndex, "\(root.appendingPathComponent("bundles/\(name)").path) holds bundle files but the shard \(shardURL(for: name).path) is missing; \(advice)"))
        }
        let names = Set(index?.names ?? []).union(onDisk).sorted()
        return IndexState(index: index, names: names, problems: problems)
    }

    /// Names with a shard file at their canonical place, `index/<xx>/<name>.json`.
    func shardNamesOnDisk() -> Set<String> {
        let fileManager = FileManager.default
        let indexDirectory = root.appendingPathComponent("index")
        guard let directories = try? fileManager.contentsOfDirectory(atPath: indexDirectory.path) else { return [] }
        var names: Set<String> = []
        for directory in directories where !directory.hasPrefix(".") {
            guard let files = try? fileManager.contentsOfDirectory(atPath: indexDirectory.appendingPathComponent(directory).path) else { continue }
            for file in files where file.hasSuffix(".json") && !file.hasPrefix(".") {
                let name = String(file.dropLast(5))
                if BundleReference.isValidName(name), IndexShard.shardDirectory(for: name) == directory { names.insert(name) }
            }
        }
        return names
    }

    /// Names whose directory under `bundles/` holds at least one `.craft` file.
    func bundleNamesOnDisk() -> Set<String> {
        let fileManager = FileManager.default
        let bundles = root.appendingPathComponent("bundles")
        guard let directories = try? fileManager.contentsOfDirectory(atPath: bundles.path) else { return [] }
        return Set(directories.filter { name in
            BundleReference.isValidName(name)
                && ((try? fileManager.contentsOfDirectory(atPath: bundles.appendingPathComponent(name).path)) ?? [])
                    .contains { $0.hasPrefix(name + "-") && $0.hasSuffix(".craft") }
        })
    }

    static func names(_ names: Set<String>) -> String {
        let sorted = names.sorted()
        let shown = sorted.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
        return sorted.count > 5 ? "\(shown) and \(sorted.count - 5) more" : shown
    }

    func noRegistry() -> RegistryError {
        RegistryError(
            .noRegistry, "no registry at \(root.path); pass --registry PATH, set CRAFT_REGISTRY, or publish a bundle there to create it")
    }

    func decode<T: Decodable>(_ type: T.Type, at url: URL) throws -> T {
        let data: Data
        do {
            data = try BoundedFile.read(url, limit: BoundedFile.largeDocumentLimit)
        } catch {
            throw RegistryError(.io, "cannot read \(url.path) (\(error.localizedDescription)); check permissions", cause: error)
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw RegistryError(
                .corruptIndex, "\(url.path) is not a valid registry index file (\(JSONFormatting.describe(error))); run craft-registry reindex to rebuild the index from the bundle files", cause: error)
        }
    }
}
