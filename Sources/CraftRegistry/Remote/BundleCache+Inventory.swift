// What the cache holds and how it is pruned: `craft-registry cache list | prune` (docs/registry.md,
// "The cache").
import CraftBundles
import CraftFiles
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One thing in the cache.
public struct CacheItem: Sendable, Equatable {
    /// What it is.
    public enum Kind: String, Sendable, Codable {
        /// A bundle unpacked by `pull` (`sha256-<hex>/`).
        case bundle
        /// A bundle file downloaded from a remote registry (`blobs/sha256-<hex>.craft`).
        case download
        /// An interrupted download, resumed by the next pull (`blobs/….partial`).
        case partial
        /// The mirrored index of a remote registry (`registries/<host>-<hash>/`).
        case index
    }

    public var kind: Kind
    public var path: URL
    public var bytes: Int64
    /// When it was last written or used.
    public var lastUsed: Date
    /// `NAME@VERSION` of a bundle, or the URL of a mirrored registry, when known.
    public var label: String?
    /// The bundle digest (`sha256:…`) of bundles and downloads.
    public var digest: String?
}

extension BundleCache {
    /// Everything in the cache, bundles first, each group by label.
    public func inventory() -> [CacheItem] {
        let fileManager = FileManager.default
        var items: [CacheItem] = []
        for name in (try? fileManager.contentsOfDirectory(atPath: root.path)) ?? [] where name.hasPrefix("sha256-") {
            let url = root.appendingPathComponent(name)
            let manifest = (try? BoundedFile.read(url.appendingPathComponent(BundleManifest.fileName), limit: 16 << 20)).flatMap { try? BundleManifest.decode($0) }
            items.append(CacheItem(kind: .bundle, path: url, bytes: Self.bytes(of: url), lastUsed: Self.modified(url),
                                   label: manifest.map { "\($0.name)@\($0.version)" }, digest: name.replacingOccurrences(of: "sha256-", with: "sha256:")))
        }
        let blobs = root.appendingPathComponent("blobs")
        for name in (try? fileManager.contentsOfDirectory(atPath: blobs.path)) ?? [] where name.hasPrefix("sha256-") {
            let url = blobs.appendingPathComponent(name)
            let digest = String(name.prefix(7 + 64)).replacingOccurrences(of: "sha256-", with: "sha256:")
            if name.hasSuffix(".craft") {
                items.append(CacheItem(kind: .download, path: url, bytes: Self.bytes(of: url), lastUsed: Self.modified(url), label: nil, digest: digest))
            } else if name.hasSuffix(".craft.partial") {
                items.append(CacheItem(kind: .partial, path: url, bytes: Self.bytes(of: url), lastUsed: Self.modified(url), label: nil, digest: digest))
            }
        }
        // Name downloads after the bundles unpacked from them; a download is used when its bundle is.
        var unpacked: [String: CacheItem] = [:]
        for item in items where item.kind == .bundle { if let digest = item.digest { unpacked[digest] = item } }
        for index in items.indices where items[index].kind != .bundle {
            guard let digest = items[index].digest, let bundle = unpacked[digest] else { continue }
            items[index].label = items[index].label ?? bundle.label
            items[index].lastUsed = max(items[index].lastUsed, bundle.lastUsed)
        }
        let registries = root.appendingPathComponent("registries")
        for name in (try? fileManager.contentsOfDirectory(atPath: registries.path)) ?? [] where !name.hasPrefix(".") {
            let url = registries.appendingPathComponent(name)
            let source = (try? BoundedFile.read(url.appendingPathComponent(RemoteRegistry.sourceFile), limit: 1 << 16)).map { String(decoding: $0, as: UTF8.self) }
            items.append(CacheItem(kind: .index, path: url, bytes: Self.bytes(of: url), lastUsed: Self.modified(url), label: source, digest: nil))
        }
        let order: [CacheItem.Kind] = [.bundle, .download, .partial, .index]
        return items.sorted {
            ($0.kind == $1.kind) ? ($0.label ?? $0.path.lastPathComponent) < ($1.label ?? $1.path.lastPathComponent)
                : order.firstIndex(of: $0.kind)! < order.firstIndex(of: $1.kind)!
        }
    }

    /// Removes what was not used for `age` seconds (everything with `age` 0). Unpacked bundles are
    /// renamed away before they are deleted, so a reader never sees one half removed.
    ///
    /// - Returns: what was removed.
    @discardableResult
    public func prune(unusedFor age: TimeInterval, now: Date = Date()) throws -> [CacheItem] {
        var removed: [CacheItem] = []
        for item in inventory() where now.timeIntervalSince(item.lastUsed) >= age {
            switch item.kind {
            case .bundle:
                try removeEntry(item.path)
            case .download, .partial, .index:
                do {
                    try FileManager.default.removeItem(at: item.path)
                } catch CocoaError.fileNoSuchFile {
                    continue
                } catch {
                    throw RegistryError(.io, "cannot remove \(item.path.path) from the cache (\(error.localizedDescription)); check its permissions", cause: error)
                }
                if item.kind == .partial { try? FileManager.default.removeItem(at: item.path.appendingPathExtension("etag")) }
            }
            removed.append(item)
        }
        return removed
    }

    /// Marks a cache item used now (its modification time), so prune keeps it.
    static func touch(_ url: URL) {
        _ = utimes(url.path, nil)
    }

    static func modified(_ url: URL) -> Date {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date) ?? .distantPast
    }

    static func bytes(of url: URL) -> Int64 {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return 0 }
        guard isDirectory.boolValue else {
            return ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.int64Value ?? 0
        }
        var total: Int64 = 0
        if let files = FileManager.default.enumerator(at: url, includingPropertiesForKeys: [.fileSizeKey]) {
            for case let file as URL in files {
                total += Int64((try? file.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0)
            }
        }
        return total
    }
}
