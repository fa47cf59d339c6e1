// Runtime plugins: programs the user installs, found by name the way git and kubectl find theirs,
// and resolved for runtime ids no built-in runtime has (docs/runtime-protocol.md).
import CraftBundles
import CraftCore
import CraftFiles
import Foundation

/// Where runtime plugins are looked for: an executable `craft-runtime-ID` in each directory of
/// `$CRAFT_RUNTIME_PATH` (colon-separated), then `~/.craft/runtimes` (`$HOME`), then `$PATH`.
public struct PluginSearchPath: Sendable, Equatable {
    /// The directories, in order, each with what put it there.
    public var directories: [(url: URL, source: String)]

    public static func == (a: PluginSearchPath, b: PluginSearchPath) -> Bool {
        a.directories.map(\.url) == b.directories.map(\.url) && a.directories.map(\.source) == b.directories.map(\.source)
    }

    /// The search path an environment describes.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        var directories: [(URL, String)] = []
        for entry in (environment["CRAFT_RUNTIME_PATH"] ?? "").split(separator: ":") where !entry.isEmpty {
            directories.append((URL(fileURLWithPath: String(entry)), "CRAFT_RUNTIME_PATH"))
        }
        if let home = environment["HOME"], !home.isEmpty {
            directories.append((URL(fileURLWithPath: home).appendingPathComponent(".craft/runtimes"), "~/.craft/runtimes"))
        }
        for entry in (environment["PATH"] ?? "").split(separator: ":") where !entry.isEmpty {
            directories.append((URL(fileURLWithPath: String(entry)), "PATH"))
        }
        self.directories = directories
    }

    /// The executable file name of runtime `id`.
    public static func executableName(for id: String) -> String { "craft-runtime-\(id)" }

    /// The first executable `craft-runtime-ID`, and where it was found; `nil` when there is none.
    public func locate(_ id: String) -> (url: URL, source: String)? {
        // Runtime ids are [a-z0-9][a-z0-9._-]*: never a path.
        guard !id.isEmpty, !id.contains("/"), !id.hasPrefix(".") else { return nil }
        for directory in directories {
            let candidate = directory.url.appendingPathComponent(Self.executableName(for: id))
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue,
               FileManager.default.isExecutableFile(atPath: candidate.path) {
                return (candidate, directory.source)
            }
        }
        return nil
    }

    /// Every plugin on the path (the first of each id), sorted by id.
    public func all() -> [(id: String, url: URL, source: String)] {
        var found: [String: (URL, String)] = [:]
        let prefix = Self.executableName(for: "")
        for directory in directories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.url.path) else { continue }
            for name in names where name.hasPrefix(prefix) && name.count > prefix.count {
                let id = String(name.dropFirst(prefix.count))
                guard found[id] == nil, let located = locate(id), located.url.deletingLastPathComponent().path == directory.url.path else { continue }
                found[id] = (located.url, directory.source)
            }
        }
        return found.keys.sorted().map { ($0, found[$0]!.0, found[$0]!.1) }
    }
}

/// Resolves runtime ids no built-in runtime has to runtime plugins on a ``PluginSearchPath``; set it
/// as a ``RuntimeRegistry``'s ``RuntimeRegistry/resolver``. Nothing starts until a bundle is loaded;
/// then one plugin process per loaded model, reused across calls, stopped when the model goes away.
///
/// ```swift
/// var runtimes = RuntimeRegistry.craftDefault
/// runtimes.resolver = PluginRuntimes()          // $CRAFT_RUNTIME_PATH, ~/.craft/runtimes, $PATH
/// let encoder = try runtimes.loadEncoder(bundle) // starts craft-runtime-ID for an unknown id
/// ```
public struct PluginRuntimes: RuntimeResolver {
    public var searchPath: PluginSearchPath
    public var timeouts: PluginTimeouts

    public init(searchPath: PluginSearchPath = PluginSearchPath(), timeouts: PluginTimeouts = .standard()) {
        self.searchPath = searchPath
        self.timeouts = timeouts
    }

    public func summary(for id: String) -> String? {
        searchPath.locate(id).map { "plugin \($0.url.path)" }
    }

    public func factory(for id: String, kind: BundleKind) -> (@Sendable (UnpackedBundle) throws -> Any)? {
        guard let (executable, _) = searchPath.locate(id) else { return nil }
        let timeouts = timeouts
        return { bundle in
            try Self.load(bundle, id: id, kind: kind, executable: executable, timeouts: timeouts)
        }
    }

    /// Starts the plugin, checks it offers `id` for `kind` at the bundle's runtime version, and loads
    /// the bundle (read-only) in it.
    static func load(_ bundle: UnpackedBundle, id: String, kind: BundleKind, executable: URL, timeouts: PluginTimeouts) throws -> Any {
        let manifest = bundle.manifest
        let connection = try PluginConnection(executable: executable, directory: bundle.directory, timeouts: timeouts)
        guard let offer = connection.offers.first(where: { $0.id == id && $0.kind == kind }) else {
            let offered = connection.offers.map { "\($0.id)@\($0.version) (\($0.kind.rawValue))" }.joined(separator: ", ")
            connection.shutdown()
            throw PluginError(.invalidAnswer, "the runtime plugin \(executable.path) offers \(offered), not the \(kind.rawValue) runtime \(id) that \(manifest.reference) needs")
        }
        guard let offered = SemanticVersion(offer.version), offered.major == manifest.runtime.version.major,
              offered >= manifest.runtime.version else {
            connection.shutdown()
            throw PluginError(.invalidAnswer, "the runtime plugin \(executable.path) offers \(id)@\(offer.version), but \(manifest.reference) needs \(id)@\(manifest.runtime.version) (the same major version, at least as new); update the plugin")
        }
        // The plugin gets the bundle's directory, its files read-only, and craft.json as the bundle has
        // it (verified when the bundle was opened).
        makeFilesReadOnly(bundle.directory)
        let manifestObject = (try? BoundedFile.read(bundle.directory.appendingPathComponent("craft.json"), limit: Int(BundleLimits.default.maxManifestSize)))
            .flatMap { try? JSONSerialization.jsonObject(with: $0) } ?? [:]
        do {
            switch kind {
            case .encoder:
                return try PluginEncoder(bundle: bundle, connection: connection, runtime: offer, manifestObject: manifestObject) as any VisionEncoder
            case .backend:
                return try PluginBackend(bundle: bundle, connection: connection, runtime: offer, manifestObject: manifestObject) as any LanguageBackend
            }
        } catch {
            connection.shutdown()
            throw error
        }
    }

    /// Removes write permission from every regular file under `directory` (directories stay
    /// writable so Craft can remove its scratch copy afterwards).
    static func makeFilesReadOnly(_ directory: URL) {
        let manager = FileManager.default
        for relative in manager.enumerator(atPath: directory.path)?.allObjects as? [String] ?? [] {
            let path = directory.appendingPathComponent(relative).path
            guard let attributes = try? manager.attributesOfItem(atPath: path), attributes[.type] as? FileAttributeType == .typeRegular,
                  let mode = attributes[.posixPermissions] as? Int else { continue }
            try? manager.setAttributes([.posixPermissions: mode & ~0o222], ofItemAtPath: path)
        }
    }

    /// Every plugin on the search path with what its handshake says, for `craft runtimes`: started,
    /// asked `hello`, stopped. A plugin whose handshake fails is listed with the reason.
    public func survey() -> [PluginSurvey] {
        searchPath.all().map { plugin in
            do {
                let connection = try PluginConnection(executable: plugin.url, directory: nil, timeouts: timeouts)
                defer { connection.shutdown() }
                return PluginSurvey(id: plugin.id, executable: plugin.url, source: plugin.source, offers: connection.offers,
                                    plugin: "\(connection.pluginName) \(connection.pluginVersion)", problem: nil)
            } catch {
                return PluginSurvey(id: plugin.id, executable: plugin.url, source: plugin.source, offers: [], plugin: nil,
                                    problem: (error as? PluginError)?.message ?? "\(error)")
            }
        }
    }
}

/// One plugin found on the search path and what its handshake said.
public struct PluginSurvey: Sendable {
    /// The runtime id its file name gives (`craft-runtime-ID`).
    public var id: String
    public var executable: URL
    /// What put its directory on the search path.
    public var source: String
    /// The runtimes its `hello` offers.
    public var offers: [PluginOffer]
    /// Its name and version from the `hello`.
    public var plugin: String?
    /// Why the handshake failed, or `nil`.
    public var problem: String?
}
