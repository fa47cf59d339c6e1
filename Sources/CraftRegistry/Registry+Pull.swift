import CraftBundles
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A bundle pulled out of a registry and unpacked.
public struct PulledBundle: Sendable {
    /// The version that was pulled.
    public var bundle: ResolvedBundle
    /// The directory holding `craft.json` and the bundle's files.
    public var directory: URL
    /// What the signatures established.
    public var signatures: SignatureStatus
    /// Whether an existing, re-checked cache entry was reused instead of unpacking again.
    public var reusedCache: Bool
}

/// Where pulled bundles are unpacked: one directory per bundle digest.
public struct BundleCache: Sendable {
    /// The cache root.
    public let root: URL

    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    /// `$CRAFT_CACHE` when set, else `~/.craft/cache`.
    public static func locate(
        environment: [String: String] = ProcessInfo.processInfo.environment, home: URL? = nil
    ) -> BundleCache {
        if let variable = environment["CRAFT_CACHE"], !variable.isEmpty {
            return BundleCache(root: URL(fileURLWithPath: variable))
        }
        return BundleCache(root: (home ?? HomeDirectory.locate(environment: environment)).appendingPathComponent(".craft/cache"))
    }

    /// The directory for a digest: `sha256:abc…` → `<root>/sha256-abc…`.
    ///
    /// Use ``entry(for:)`` for a digest read from an index: it refuses anything that is not
    /// `sha256:` + 64 lowercase hex, so the entry is always one directory directly inside the root.
    public func directory(for digest: String) -> URL {
        root.appendingPathComponent(digest.replacingOccurrences(of: ":", with: "-"))
    }

    /// The cache entry of a digest, proven to be a direct child of the cache root.
    ///
    /// - Throws: ``RegistryError/Code/corruptIndex`` when `digest` is not `sha256:` + 64 lowercase hex
    ///   (a hostile index must not name a path such as `sha256:<hex>/../../..`).
    public func entry(for digest: String) throws -> URL {
        guard IndexValidation.isValidDigest(digest) else {
            throw RegistryError(
                .corruptIndex, "the index gives the digest \"\(IndexValidation.shown(digest))\", which is not \"sha256:\" followed by 64 lowercase hex digits; the index is damaged: run craft-registry reindex")
        }
        let entry = directory(for: digest)
        guard CachePaths.isDirectChild(entry, of: root) else {
            throw RegistryError(.corruptIndex, "the cache entry \(entry.path) for \(digest) is not inside the cache \(root.path); refusing to use it")
        }
        return entry
    }

    /// Removes a damaged cache entry, after proving that it is a direct child of the cache root
    /// (standardized paths, the root's real path, and the entry itself not a symbolic link: a link is
    /// unlinked, never followed). The entry is first renamed to a scratch name, so that concurrent
    /// readers never see it half deleted.
    func removeEntry(_ entry: URL) throws {
        guard CachePaths.isDirectChild(entry, of: root), entry.lastPathComponent.hasPrefix("sha256-") else {
            throw RegistryError(.io, "refusing to delete \(entry.path): it is not an entry of the cache \(root.path)")
        }
        var info = stat()
        guard lstat(entry.path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFLNK {
            unlink(entry.path)
            return
        }
        let doomed = root.appendingPathComponent("." + ScratchFiles.name(RegistryScratch.pullPrefix))
        let tracked = ScratchFiles.track(doomed)
        defer { ScratchFiles.remove(tracked) }
        guard rename(entry.path, doomed.path) == 0 else {
            if errno == ENOENT { return }  // another pull removed or replaced it
            throw RegistryError(.io, "cannot remove the damaged cache entry \(entry.path) (\(String(cString: strerror(errno)))); delete it by hand")
        }
    }

    /// Removes what interrupted pulls left in the cache root: scratch directories of processes that
    /// no longer exist, and download copies and unpack directories of older Craft versions (which
    /// carry no process id) once they are a day old.
    @discardableResult
    public func sweep() -> [URL] {
        var removed = ScratchFiles.sweep(root, prefixes: [RegistryScratch.pullPrefix, "craft-unpack"])
        removed += RegistryScratch.removeStaleLegacy(in: root) { name in
            (name.hasPrefix(".sha256-") && name.contains(".download-") && name.hasSuffix(".craft"))
                || RegistryScratch.isLegacyUUIDName(name, prefix: ".craft-unpack-", suffix: "")
        }
        return removed
    }
}

/// Path containment for the cache, on standardized paths and on real paths (no symlink escape).
enum CachePaths {
    static func isDirectChild(_ entry: URL, of root: URL) -> Bool {
        let name = entry.lastPathComponent
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else { return false }
        let standardRoot = root.standardizedFileURL.path
        let parent = entry.standardizedFileURL.deletingLastPathComponent().path
        guard trimmed(parent) == trimmed(standardRoot) else { return false }
        // The root may itself be reached through links (e.g. /tmp on macOS); its real path must be the
        // real path of the entry's parent.
        let realRoot = root.resolvingSymlinksInPath().path
        let realParent = entry.deletingLastPathComponent().resolvingSymlinksInPath().path
        return trimmed(realRoot) == trimmed(realParent)
    }

    private static func trimmed(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }
}

extension Registry {
    /// Pulls a bundle: checks its signatures, then unpacks the registry's file in one read that
    /// computes its digest (compared with the index before anything is moved into place) and applies
    /// the hostile archive checks; the result is renamed into place atomically.
    ///
    /// By default the bundle lands in `cache` under its digest. A cache entry that already exists is
    /// reused only when it is still the published bundle: the registry's file must have the digest
    /// the index records, the entry's `craft.json` must equal the one inside that file, and every file
    /// of the entry must have the size and sha256 that manifest lists (nothing more). Otherwise the
    /// entry is replaced. With `destination`, the bundle is unpacked there instead (it must not exist).
    ///
    /// The unpack directory lives in one scratch directory named by
    /// ``ScratchFiles/name(_:)``, removed on failure or interruption, and swept by the next pull when
    /// its process died.
    ///
    /// - Parameter requireSignature: refuse unsigned bundles and bundles signed only by untrusted keys.
    /// - Throws: ``RegistryError/Code/digestMismatch`` (exit 4) when the registry's file is not the
    ///   one indexed; signature and archive errors (exit 4).
    public func pull(
        _ reference: BundleReference, includePrerelease: Bool = false, requireSignature: Bool = false,
        cache: BundleCache = .locate(), destination: URL? = nil, limits: BundleLimits = .default
    ) throws -> PulledBundle {
        let bundle = try resolve(reference, includePrerelease: includePrerelease)
        let status = try signatureStatus(of: bundle)
        if requireSignature { try status.requireTrusted(source: bundle.reference) }
        try localFile(of: bundle)
        let target: URL
        if let destination {
            target = destination
            if FileManager.default.fileExists(atPath: target.path) {
                throw RegistryError(.usage, "\(target.path) already exists; choose a new -o directory or delete it")
            }
            // Scratch directories of killed pulls into the same parent (only names this code makes).
            ScratchFiles.sweep(target.deletingLastPathComponent(), prefixes: [RegistryScratch.pullPrefix])
        } else {
            target = try cache.entry(for: bundle.record.digest)
            cache.sweep()
            if CachedEntry.exists(target) {
                if try CachedEntry.matches(target, published: bundle) {
                    BundleCache.touch(target)
                    return PulledBundle(bundle: bundle, directory: target, signatures: status, reusedCache: true)
                }
                // A damaged or foreign cache entry: replace it.
                try cache.removeEntry(target)
            }
        }
        let parent = target.deletingLastPathComponent()
        try AtomicFile.createDirectory(parent)
        let scratch = parent.appendingPathComponent("." + ScratchFiles.name(RegistryScratch.pullPrefix))
        let tracked = ScratchFiles.track(scratch)
        defer { ScratchFiles.remove(tracked) }
        try AtomicFile.createDirectory(scratch)
        // One read of the registry's file: its digest is computed on the bytes that are unpacked,
        // so a file replaced meanwhile cannot be served under the indexed digest.
        let unpacked: UnpackedBundle
        do {
            unpacked = try BundleArchive.unpack(
                bundle.file, into: scratch.appendingPathComponent("bundle"), expectedDigest: bundle.record.digest, limits: limits)
        } catch let error as BundleError {
            // A tampered file usually fails an archive check before its digest is complete: say
            // what it is (a second read, on the failure path only).
            if error.code == .digestMismatch
                || (try? BundleArchive.digest(of: bundle.file)).map({ $0 != bundle.record.digest }) == true {
                throw RegistryError(
                    .digestMismatch, "\(bundle.file.path) is not the file the index records for \(bundle.reference) (\(bundle.record.digest)): it was modified or replaced; do not use it", cause: error)
            }
            throw error
        }
        guard rename(unpacked.directory.path, target.path) == 0 else {
            let reason = String(cString: strerror(errno))
            // Another pull of the same bundle may have won the race to the cache entry.
            if destination == nil, CachedEntry.exists(target), (try? CachedEntry.matches(target, published: bundle)) == true {
                return PulledBundle(bundle: bundle, directory: target, signatures: status, reusedCache: true)
            }
            throw RegistryError(.io, "cannot move the unpacked \(bundle.reference) into place as \(target.path) (\(reason))")
        }
        return PulledBundle(bundle: bundle, directory: target, signatures: status, reusedCache: false)
    }
}

/// Re-checks an unpacked cache entry against the published bundle before it is reused.
///
/// An entry that exists was complete when it was renamed into place; what can happen later is an
/// edit. Checking the entry against its own `craft.json` is not enough (an edit of a file and of
/// `craft.json` together passes), so the entry's manifest is compared with the one inside the
/// registry's bundle file, whose digest is first checked against the index. Only `craft.json` is
/// read from the bundle (it is the archive's first entry): nothing is decompressed beyond it.
enum CachedEntry {
    /// Whether something (a directory, a file or a link) is at `url`.
    static func exists(_ url: URL) -> Bool {
        var info = stat()
        return lstat(url.path, &info) == 0
    }

    /// Whether the entry at `directory` still is `published`'s bundle.
    ///
    /// - Throws: ``RegistryError/Code/digestMismatch`` when the registry's own file no longer has
    ///   the indexed digest (then nothing may be served for it).
    static func matches(_ directory: URL, published bundle: ResolvedBundle) throws -> Bool {
        var info = stat()
        guard lstat(directory.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return false }
        let before = identity(of: bundle.file)
        let digest = try BundleArchive.digest(of: bundle.file)
        guard digest == bundle.record.digest else {
            throw RegistryError(
                .digestMismatch, "\(bundle.file.path) has digest \(digest) but the index records \(bundle.record.digest) for \(bundle.reference): the file was modified or replaced; do not use it")
        }
        guard let manifest = try? BundleArchive.readManifest(of: bundle.file),
              identity(of: bundle.file) == before, before != nil
        else { return false }
        guard let cached = try? BundleArchive.open(directory: directory, verifyFiles: true) else { return false }
        return cached.manifest == manifest
    }

    /// Device, inode, size and modification time: a file replaced between two reads changes one.
    private static func identity(of url: URL) -> [Int]? {
        var info = stat()
        guard stat(url.path, &info) == 0 else { return nil }
        #if canImport(Darwin)
        let modified = info.st_mtimespec
        #else
        let modified = info.st_mtim
        #endif
        return [Int(info.st_dev), Int(info.st_ino), Int(info.st_size), Int(modified.tv_sec), Int(modified.tv_nsec)]
    }
}
