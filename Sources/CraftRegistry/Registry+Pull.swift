import CraftBundles
import Foundation

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
        environment: [String: String] = ProcessInfo.processInfo.environment,
        home: URL = FileManager.default.homeDirectoryForCurrentUser
    ) -> BundleCache {
        if let variable = environment["CRAFT_CACHE"], !variable.isEmpty {
            return BundleCache(root: URL(fileURLWithPath: variable))
        }
        return BundleCache(root: home.appendingPathComponent(".craft/cache"))
    }

    /// The directory for a digest: `sha256:abc…` → `<root>/sha256-abc…`.
    public func directory(for digest: String) -> URL {
        root.appendingPathComponent(digest.replacingOccurrences(of: ":", with: "-"))
    }
}

extension Registry {
    /// Pulls a bundle: copies it out of the registry, verifies the copy (digest against the index,
    /// signatures, then the hostile archive checks) and unpacks it atomically.
    ///
    /// By default the bundle lands in `cache` under its digest; a cache entry that already exists is
    /// re-checked (every file's size and sha256 against its manifest) and reused. With `destination`,
    /// the bundle is unpacked there instead (it must not exist yet).
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
        guard FileManager.default.fileExists(atPath: bundle.file.path) else {
            throw RegistryError(
                .notFound, "the index lists \(bundle.reference) but its file \(bundle.file.path) is missing; republish it")
        }
        let target = destination ?? cache.directory(for: bundle.record.digest)
        if destination == nil, FileManager.default.fileExists(atPath: target.path) {
            if (try? UnpackedCheck.matches(directory: target)) == true {
                return PulledBundle(bundle: bundle, directory: target, signatures: status, reusedCache: true)
            }
            // A damaged or foreign cache entry: replace it.
            try? FileManager.default.removeItem(at: target)
        } else if FileManager.default.fileExists(atPath: target.path) {
            throw RegistryError(.usage, "\(target.path) already exists; choose a new -o directory or delete it")
        }
        let parent = target.deletingLastPathComponent()
        try AtomicFile.createDirectory(parent)
        let copy = parent.appendingPathComponent(".\(target.lastPathComponent).download-\(UUID().uuidString).craft")
        defer { try? FileManager.default.removeItem(at: copy) }
        do {
            try FileManager.default.copyItem(at: bundle.file, to: copy)
        } catch {
            throw RegistryError(.io, "cannot copy \(bundle.file.path) to \(parent.path) (\(error.localizedDescription))", cause: error)
        }
        let digest = try BundleArchive.digest(of: copy)
        guard digest == bundle.record.digest else {
            throw RegistryError(
                .digestMismatch, "\(bundle.file.path) has digest \(digest) but the index records \(bundle.record.digest) for \(bundle.reference): the file was modified or replaced; do not use it")
        }
        do {
            let unpacked = try BundleArchive.unpack(copy, into: target, limits: limits)
            return PulledBundle(bundle: bundle, directory: unpacked.directory, signatures: status, reusedCache: false)
        } catch {
            // Another pull of the same bundle may have won the race to the cache entry.
            if destination == nil, (try? UnpackedCheck.matches(directory: target)) == true {
                return PulledBundle(bundle: bundle, directory: target, signatures: status, reusedCache: true)
            }
            throw error
        }
    }
}

/// Re-checks an unpacked cache entry before it is reused.
///
/// Unpacking renames a complete directory into place, so an entry that exists was complete; this
/// check catches later edits: every file the manifest lists must still have its size and sha256, and
/// nothing unlisted may have appeared (``BundleArchive/open(directory:verifyFiles:)``).
enum UnpackedCheck {
    static func matches(directory: URL) throws -> Bool {
        _ = try BundleArchive.open(directory: directory, verifyFiles: true)
        return true
    }
}
