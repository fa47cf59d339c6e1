import CraftBundles
import CraftCore
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
    /// The registry directory; for a remote registry, the local mirror of its index files.
    public let root: URL
    /// The HTTP(S) side of a remote registry; `nil` for a directory.
    public let remote: RemoteRegistry?
    /// Whether plain HTTP to other machines is allowed (`--insecure`), for this registry and for
    /// `oci://` references opened with it.
    public var allowInsecure = false
    /// Whether nothing may be fetched (`--offline`).
    public var offline = false
    /// The registry's name in the configuration file (``RegistryConfiguration``), shown as the source
    /// of its bundles; `nil` for a registry given by location.
    public var label: String?
    /// The configuration's later registries, read in order after this one (``members``); empty
    /// unless this is the first of several.
    public var alternates: [Registry] = []

    /// This registry (without its alternates), then each alternate: the lookup order.
    public var members: [Registry] {
        var first = self
        first.alternates = []
        return [first] + alternates
    }

    /// The member that holds `name` and its shard, read once: the first whose index has it; `nil`
    /// when none does.
    func holding(_ name: String) throws -> (member: Registry, shard: IndexShard)? {
        for member in members {
            if let shard = try member.readShard(named: name), !shard.versions.isEmpty { return (member, shard) }
        }
        return nil
    }

    /// "No bundle named" for several registries: each is named, with the nearest name any of them has.
    func notFoundInAnyMember(_ name: String) -> RegistryError {
        let places = members.map { "\($0.label ?? $0.location) (\($0.location))" }.joined(separator: ", ")
        let known = members.flatMap { (try? $0.readIndex().names) ?? [] }
        let hint = EditDistance.nearest(to: name, among: known.filter { $0 != name }).map { "did you mean '\($0)'?" }
            ?? "look for it with craft-registry search \(name)"
        return RegistryError(.notFound, "no bundle named '\(name)' in the registries \(places); \(hint)")
    }

    /// The member a resolved bundle came from.
    func member(for bundle: ResolvedBundle) -> Registry {
        guard !alternates.isEmpty else { return self }
        return members.first { $0.label == bundle.source } ?? members[0]
    }

    /// A registry rooted at `root` (nothing is read until asked).
    public init(root: URL) {
        self.root = root.standardizedFileURL
        remote = nil
    }

    /// A read-only registry served over HTTP(S) at `url` by any static file server, its index files
    /// mirrored into `cache` as needed and its bundles downloaded there by digest
    /// (``RemoteRegistry``). With `offline`, only the cache is read.
    public init(remote url: URL, cache: BundleCache = .locate(), offline: Bool = false, allowInsecure: Bool = false) {
        let remote = RemoteRegistry(base: url, cache: cache, offline: offline, allowInsecure: allowInsecure)
        self.remote = remote
        root = remote.mirror.standardizedFileURL
        self.allowInsecure = allowInsecure
        self.offline = offline
    }

    /// Where the registry is, as users wrote it: its URL, or its directory's path.
    public var location: String { remote?.base.absoluteString ?? root.path }

    /// Whether the registry is served over HTTP(S) (read-only).
    public var isRemote: Bool { remote != nil }

    /// Throws unless the registry is a directory Craft may write.
    func requireWritable(_ action: String) throws {
        if let remote {
            throw RegistryError(.usage, "cannot \(action) at \(remote.base.absoluteString): HTTP registries are read-only; \(action) in the registry's directory on its server (craft-registry --registry DIR), and serve that directory")
        }
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
        /// The configuration file's registries (``RegistryConfiguration``), or one of them by name.
        case configuration
    }

    /// Resolves the registry to use: `--registry`, then `CRAFT_REGISTRY`, then `./registry` when
    /// present, then `~/.craft/registry` (docs/registry.md).
    ///
    /// An `http://` or `https://` location is a remote registry (``init(remote:cache:offline:allowInsecure:)``),
    /// cached in `$CRAFT_CACHE` or `~/.craft/cache`.
    public static func locate(
        explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
        home: URL? = nil, offline: Bool = false, allowInsecure: Bool = false, configuration: RegistryConfiguration? = nil
    ) -> (registry: Registry, source: LocationSource) {
        let home = home ?? HomeDirectory.locate(environment: environment)
        func resolve(_ path: String) -> URL {
            let expanded = path == "~" ? home.path : path.hasPrefix("~/") ? home.path + path.dropFirst(1) : path
            return expanded.hasPrefix("/")
                ? URL(fileURLWithPath: expanded) : currentDirectory.appendingPathComponent(expanded)
        }
        func registry(_ text: String) -> Registry {
            if RemoteRegistry.isRemote(text), let url = URL(string: text) {
                return Registry(remote: url, cache: BundleCache.locate(environment: environment, home: home), offline: offline,
                                allowInsecure: allowInsecure)
            }
            return local(resolve(text))
        }
        // A directory registry carries the flags for the oci:// references opened with it.
        func local(_ root: URL) -> Registry {
            var registry = Registry(root: root)
            registry.allowInsecure = allowInsecure
            registry.offline = offline
            return registry
        }
        func configured(_ entry: RegistryConfiguration.Entry) -> Registry {
            var member = registry(entry.location)
            member.label = entry.name
            return member
        }
        // A configured name picks that registry; anything else is a path or URL.
        if let explicit, !explicit.isEmpty {
            if let entry = configuration?.entry(named: explicit) { return (configured(entry), .configuration) }
            return (registry(explicit), .option)
        }
        if let variable = environment["CRAFT_REGISTRY"], !variable.isEmpty {
            if let entry = configuration?.entry(named: variable) { return (configured(entry), .configuration) }
            return (registry(variable), .environment)
        }
        let inWorkingDirectory = currentDirectory.appendingPathComponent("registry")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: inWorkingDirectory.path, isDirectory: &isDirectory), isDirectory.boolValue {
            return (local(inWorkingDirectory), .workingDirectory)
        }
        if let entries = configuration?.registries, let first = entries.first {
            var head = configured(first)
            head.alternates = entries.dropFirst().map(configured)
            return (head, .configuration)
        }
        return (local(home.appendingPathComponent(".craft/registry")), .home)
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

    /// The file URL of a published version's bundle; for a remote registry, where it is (or will be)
    /// downloaded (``localFile(of:)`` fetches it).
    public func bundleURL(for record: IndexedVersion) -> URL {
        if let remote { return remote.blobURL(for: record.digest) }
        return root.appendingPathComponent(record.path)
    }

    /// The local file of a resolved bundle: the registry's own file, or for a remote registry the
    /// verified download (fetched now when it is not in the cache).
    ///
    /// - Throws: ``RegistryError`` `notFound` when the index lists a file the registry lacks;
    ///   `digestMismatch` when the served file is not the indexed one; `network`, `notCached`.
    @discardableResult
    public func localFile(of bundle: ResolvedBundle) throws -> URL {
        if !alternates.isEmpty { return try member(for: bundle).localFile(of: bundle) }
        if let remote { return try remote.fetchBundle(bundle.record, name: bundle.name) }
        guard FileManager.default.fileExists(atPath: bundle.file.path) else {
            throw RegistryError(.notFound, "the index lists \(bundle.reference) but its file \(bundle.file.path) is missing; republish it")
        }
        return bundle.file
    }

    // MARK: - Reading

    /// Whether the registry directory exists.
    public var exists: Bool {
        if remote != nil { return true }  // known when registry.json is fetched
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
        if let remote, try !remote.refresh("registry.json") { throw noRegistry() }
        guard FileManager.default.fileExists(atPath: indexURL.path) else { return RegistryIndex() }
        let index: RegistryIndex = try decode(RegistryIndex.self, at: indexURL)
        if let problem = IndexValidation.problems(in: index).first {
            throw RegistryError(.corruptIndex, "\(shown(indexURL)): \(problem); the index is damaged: \(repairAdvice)")
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
        if let remote, try !remote.refresh(IndexShard.relativePath(for: name)) {
            if remote.offline {
                throw RegistryError(.notCached, "--offline: the index entry of '\(name)' at \(remote.base.absoluteString) is not in the cache; run the command once without --offline")
            }
            return nil
        }
        let url = shardURL(for: name)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let shard: IndexShard = try decode(IndexShard.self, at: url)
        if let problem = IndexValidation.problems(in: shard, name: name).first {
            throw RegistryError(.corruptIndex, "\(shown(url)): \(problem); the shard is damaged: \(repairAdvice)")
        }
        return shard
    }

    /// The shard of `name`, which must exist and hold at least one version.
    ///
    /// Only the shard is read: a damaged `registry.json` does not keep an intact shard from being used.
    ///
    /// - Throws: ``RegistryError/Code/notFound`` when the registry holds no such name.
    public func shard(named name: String) throws -> IndexShard {
        if !alternates.isEmpty {
            guard let (_, shard) = try holding(name) else { throw notFoundInAnyMember(name) }
            return shard
        }
        guard exists else { throw noRegistry() }
        guard let shard = try readShard(named: name), !shard.versions.isEmpty else {
            // The nearest published name, when one is near (a typo, a missing suffix).
            let known = (try? readIndex().names) ?? []
            if let nearest = EditDistance.nearest(to: name, among: known.filter { $0 != name }) {
                throw RegistryError(
                    .notFound, "no bundle named '\(name)' in the registry at \(location); did you mean '\(nearest)'? (craft-registry search \(name) looks further)")
            }
            throw RegistryError(
                .notFound, "no bundle named '\(name)' in the registry at \(location); look for it with craft-registry search \(name)")
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
        // A remote registry's files are replaced atomically by its publisher and fetched as they are.
        if remote != nil { return first }
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
        if let remote {
            // No directory listing over HTTP: registry.json names every shard, fetched together.
            let index = try readIndex()
            try remote.refreshAll(index.names.map(IndexShard.relativePath(for:)))
            return IndexState(index: index, names: index.names.sorted(), problems: [])
        }
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
        if let remote {
            return RegistryError(
                .noRegistry, "no Craft registry at \(remote.base.absoluteString): it serves no registry.json; check the address (the directory holding registry.json, index/ and bundles/)")
        }
        return RegistryError(
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
                .corruptIndex, "\(shown(url)) is not a valid registry index file (\(JSONFormatting.describe(error))); \(repairAdvice)", cause: error)
        }
    }

    /// A file of the registry as users know it: for a remote registry, its URL rather than the mirror's copy.
    func shown(_ url: URL) -> String {
        guard let remote else { return url.path }
        let mirror = root.path + "/"
        guard url.path.hasPrefix(mirror) else { return url.path }
        return remote.url(of: String(url.path.dropFirst(mirror.count))).absoluteString
    }

    /// What to do about a damaged index file.
    var repairAdvice: String {
        remote == nil
            ? "run craft-registry reindex to rebuild the index from the bundle files"
            : "the registry's maintainers must repair it (craft-registry reindex in its directory)"
    }
}
