import CraftBundles
import Foundation

/// The temporaries of registry and cache writers, and the sweeping of those their writer left behind.
///
/// Every temporary is named by ``ScratchFiles/name(_:)`` (`PREFIX-PID-UUID`), tracked while it exists
/// (SIGINT, SIGTERM and SIGHUP remove it), and swept by the next writer once its process is gone:
///
/// - `.staging/craft-publish-PID-UUID.craft`: publish's verified copy;
/// - `.NAME.tmp-PID-UUID` next to every file written atomically (`registry.json`, shards, keys);
/// - `.craft-pull-PID-UUID/` in the cache root: a pull's download copy and unpack directory.
///
/// Names written by Craft versions before scratch naming carry no process id; they are removed once
/// they are a day old (no live writer takes that long).
enum RegistryScratch {
    static let publishPrefix = "craft-publish"
    static let pullPrefix = "craft-pull"
    /// How old a temporary without a process id must be before it is swept.
    static let legacyAge: TimeInterval = 24 * 60 * 60

    /// The temporary for an atomic write of `url`: `.NAME.tmp-PID-UUID` in the same directory.
    static func temporary(for url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent("." + ScratchFiles.name(url.lastPathComponent + ".tmp"))
    }

    /// Removes the atomic-write temporaries in `directory` whose writer is gone.
    @discardableResult
    static func sweepTemporaries(in directory: URL) -> [URL] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return [] }
        var prefixes: Set<String> = []
        for name in names where name.hasPrefix(".") {
            if let marker = name.range(of: ".tmp-", options: .backwards) {
                prefixes.insert(String(name[name.index(after: name.startIndex)..<marker.lowerBound]) + ".tmp")
            }
        }
        var removed = prefixes.isEmpty ? [] : ScratchFiles.sweep(directory, prefixes: prefixes.sorted())
        removed += removeStaleLegacy(in: directory) { name in
            guard name.hasPrefix("."), let marker = name.range(of: ".tmp-", options: .backwards) else { return false }
            return UUID(uuidString: String(name[marker.upperBound...])) != nil
        }
        return removed
    }

    /// `PREFIX<UUID>SUFFIX`: a temporary name of a Craft version before scratch naming.
    static func isLegacyUUIDName(_ name: String, prefix: String, suffix: String) -> Bool {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix), name.count == prefix.count + 36 + suffix.count else { return false }
        return UUID(uuidString: String(name.dropFirst(prefix.count).dropLast(suffix.count))) != nil
    }

    /// Removes the entries of `directory` matching `isLegacy` that were last modified a day ago or more.
    static func removeStaleLegacy(in directory: URL, _ isLegacy: (String) -> Bool) -> [URL] {
        let fileManager = FileManager.default
        guard let names = try? fileManager.contentsOfDirectory(atPath: directory.path) else { return [] }
        var removed: [URL] = []
        for name in names where isLegacy(name) {
            let url = directory.appendingPathComponent(name)
            guard let modified = (try? fileManager.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date,
                  Date().timeIntervalSince(modified) >= legacyAge else { continue }
            if (try? fileManager.removeItem(at: url)) != nil { removed.append(url) }
        }
        return removed
    }
}

extension Registry {
    /// Removes what interrupted writers left in the registry: staging copies and atomic-write
    /// temporaries (of `registry.json`, shards and keys) of processes that no longer exist. Call it
    /// holding the registry lock.
    @discardableResult
    func sweepScratch() -> [URL] {
        var removed = ScratchFiles.sweep(stagingURL, prefixes: [RegistryScratch.publishPrefix])
        removed += RegistryScratch.removeStaleLegacy(in: stagingURL) {
            RegistryScratch.isLegacyUUIDName($0, prefix: "", suffix: ".craft")
        }
        removed += RegistryScratch.sweepTemporaries(in: root)
        removed += RegistryScratch.sweepTemporaries(in: keysURL)
        let indexDirectory = root.appendingPathComponent("index")
        removed += RegistryScratch.sweepTemporaries(in: indexDirectory)  // the search index's
        for directory in (try? FileManager.default.contentsOfDirectory(atPath: indexDirectory.path)) ?? [] where !directory.hasPrefix(".") {
            removed += RegistryScratch.sweepTemporaries(in: indexDirectory.appendingPathComponent(directory))
        }
        return removed
    }
}
