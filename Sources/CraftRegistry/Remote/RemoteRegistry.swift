// A registry served over HTTP(S) by any static file server: its index files are mirrored into the
// cache as they are needed (revalidated with ETags), and its bundles are downloaded into a
// content-addressed store, verified against the index before anything uses them, resumed with
// `Range` after an interruption, and safe with concurrent pulls (docs/registry.md, "Remote registries").
import Crypto
import CraftFiles
import Foundation

/// The remote side of a ``Registry`` whose location is an `http(s)://` URL.
///
/// ```
/// <cache>/registries/<host>-<hash of the URL>/   the mirror: registry.json, index/…, keys/ (local trust)
/// <cache>/blobs/sha256-<hex>.craft               downloaded bundles, by digest
/// <cache>/blobs/sha256-<hex>.craft.partial       an interrupted download, resumed by the next pull
/// ```
///
/// Each index file is fetched at most once per process (a conditional GET when the mirror holds it).
/// With `offline`, nothing is fetched: the mirror and the blobs are all there is.
public final class RemoteRegistry: @unchecked Sendable {
    /// The registry's URL (a directory: `registry.json` is below it).
    public let base: URL
    /// The local copy of the index files.
    public let mirror: URL
    /// Where downloaded bundles are kept, by digest.
    public let blobs: URL
    /// Read the cache only.
    public let offline: Bool
    /// Called while a bundle downloads: its label, bytes so far and total.
    public var progress: (@Sendable (_ label: String, _ received: Int64, _ total: Int64) -> Void)?

    let client: HTTPClient
    private let lock = NSLock()
    private var refreshed: [String: Bool] = [:]

    /// The largest index document (`registry.json`, a shard) read from a remote registry.
    static let documentLimit = 64 << 20

    /// A stored ETag, `nil` when there is none.
    static func readTag(_ url: URL) -> String? {
        guard let data = try? BoundedFile.read(url, limit: 1 << 12), !data.isEmpty else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// The file in the mirror naming the registry's URL (for `craft-registry cache list`).
    static let sourceFile = "source-url"

    public init(base: URL, cache: BundleCache, offline: Bool = false, allowInsecure: Bool = false) {
        let text = base.absoluteString.hasSuffix("/") ? String(base.absoluteString.dropLast()) : base.absoluteString
        self.base = URL(string: text) ?? base
        let digest = SHA256.hash(data: Data(text.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
        let host = (base.host ?? "registry").filter { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }
        mirror = cache.root.appendingPathComponent("registries/\(host)-\(digest)")
        blobs = cache.root.appendingPathComponent("blobs")
        self.offline = offline
        client = HTTPClient(allowInsecure: allowInsecure)
    }

    /// Whether `text` names a remote registry (`http://` or `https://`).
    public static func isRemote(_ text: String) -> Bool {
        let lowered = text.lowercased()
        return lowered.hasPrefix("https://") || lowered.hasPrefix("http://")
    }

    func url(of path: String) -> URL {
        URL(string: base.absoluteString + "/" + path) ?? base.appendingPathComponent(path)
    }

    // MARK: - Index files

    /// Brings the mirror's copy of `path` (`registry.json`, `index/xx/NAME.json`) up to date.
    ///
    /// - Returns: whether the registry has the file (a 404 removes the mirror's copy).
    /// - Throws: ``RegistryError`` `network` for transport failures and unexpected statuses;
    ///   `notCached` offline when the mirror lacks a file that was never fetched.
    @discardableResult
    func refresh(_ path: String) throws -> Bool {
        lock.lock()
        let known = refreshed[path]
        lock.unlock()
        if let known { return known }
        let local = mirror.appendingPathComponent(path)
        let tag = local.appendingPathExtension("etag")
        let exists: Bool
        if offline {
            exists = FileManager.default.fileExists(atPath: local.path)
            if !exists, path == "registry.json" {
                throw RegistryError(.notCached, "--offline: \(url(of: path).absoluteString) is not in the cache (\(mirror.path)); run the command once without --offline")
            }
        } else {
            var headers: [String: String] = [:]
            if FileManager.default.fileExists(atPath: local.path), let etag = Self.readTag(tag) {
                headers["If-None-Match"] = etag
            }
            let (head, body) = try client.get(url(of: path), headers: headers, limit: Self.documentLimit)
            switch head.status {
            case 200:
                try AtomicFile.createDirectory(local.deletingLastPathComponent())
                if path == "registry.json" || path == SearchIndex.relativePath { try? AtomicFile.write(Data(base.absoluteString.utf8), to: mirror.appendingPathComponent(Self.sourceFile)) }
                try AtomicFile.write(body, to: local)
                if let etag = head["etag"] { try AtomicFile.write(Data(etag.utf8), to: tag) } else { try? FileManager.default.removeItem(at: tag) }
                exists = true
            case 304:
                BundleCache.touch(mirror)
                exists = true
            case 404, 410:
                try? FileManager.default.removeItem(at: local)
                try? FileManager.default.removeItem(at: tag)
                exists = false
            default:
                throw RegistryError(.network, "\(url(of: path).absoluteString) answered HTTP \(head.status); check the registry address, or use --offline to read the cache")
            }
        }
        lock.lock()
        refreshed[path] = exists
        lock.unlock()
        return exists
    }

    /// Refreshes every path, ``concurrentTransfers`` at a time (each on a kept-alive connection of
    /// its own). The first failure stops the paths not yet started and is rethrown.
    func refreshAll(_ paths: [String]) throws {
        guard paths.count > 1 else {
            for path in paths { try refresh(path) }
            return
        }
        final class Cursor: @unchecked Sendable {
            let lock = NSLock()
            var next = 0
            var failure: Error?
        }
        let cursor = Cursor()
        // Threads of their own (the work waits on the network): Dispatch's parallel loop would run
        // only as many at once as there are cores.
        let workers = min(Self.concurrentTransfers, paths.count)
        let finished = DispatchSemaphore(value: 0)
        for _ in 0..<workers {
            Thread {
                defer { finished.signal() }
                while true {
                    cursor.lock.lock()
                    guard cursor.failure == nil, cursor.next < paths.count else {
                        cursor.lock.unlock()
                        return
                    }
                    let path = paths[cursor.next]
                    cursor.next += 1
                    cursor.lock.unlock()
                    do {
                        try self.refresh(path)
                    } catch {
                        cursor.lock.lock()
                        if cursor.failure == nil { cursor.failure = error }
                        cursor.lock.unlock()
                    }
                }
            }.start()
        }
        for _ in 0..<workers { finished.wait() }
        if let failure = cursor.failure { throw failure }
    }

    /// Index files fetched at once when many are needed (`compatible`, or a registry without a search index).
    static let concurrentTransfers = 8

    // MARK: - Bundles

    /// The content-addressed file of a digest (`sha256:…`, validated by the index reader).
    public func blobURL(for digest: String) -> URL {
        BlobStore(directory: blobs).file(for: digest)
    }

    /// Makes sure the bundle `record` describes is in the blob store, whole and with its digest
    /// (``BlobStore/fetch(digest:size:label:from:client:headers:offline:progress:)``).
    ///
    /// - Returns: the blob's URL.
    @discardableResult
    public func fetchBundle(_ record: IndexedVersion, name: String) throws -> URL {
        try BlobStore(directory: blobs).fetch(
            digest: record.digest, size: record.size, label: "\(name)@\(record.version)", from: url(of: record.path),
            client: client, offline: offline, progress: progress)
    }
}

/// Downloaded bundle files, named by digest (`<cache>/blobs/sha256-<hex>.craft`), shared by remote
/// registries and OCI registries.
struct BlobStore {
    let directory: URL

    func file(for digest: String) -> URL {
        directory.appendingPathComponent(digest.replacingOccurrences(of: ":", with: "-") + ".craft")
    }

    /// Makes sure the file of `digest` is in the store, whole and with its digest.
    ///
    /// One process downloads while the others wait for it (a lock per digest). An interrupted
    /// download resumes from its `.partial` file with `Range` (and `If-Range`, so a file changed on
    /// the server starts over). Nothing beyond `size` is accepted; a file whose size or digest is not
    /// the expected one is deleted and refused (exit 4).
    ///
    /// - Returns: the file's URL.
    func fetch(digest: String, size: Int64, label: String, from source: URL, client: HTTPClient, headers: [String: String] = [:],
               offline: Bool, progress: (@Sendable (String, Int64, Int64) -> Void)?) throws -> URL {
        let blob = file(for: digest)
        // Not touched on reuse: a pull compares the file's identity (its modification time included)
        // before and after reading it. Its use shows on the unpacked bundle's entry instead.
        if FileManager.default.fileExists(atPath: blob.path) { return blob }
        guard !offline else {
            throw RegistryError(.notCached, "--offline: \(label) (\(source.absoluteString)) is not in the cache; run the command once without --offline")
        }
        try AtomicFile.createDirectory(directory)
        // Lock files stay (removing one another process waits on would let two downloads run).
        let locks = directory.appendingPathComponent(".locks")
        try AtomicFile.createDirectory(locks)
        let lockURL = locks.appendingPathComponent(blob.lastPathComponent + ".lock")
        return try FileLock.withExclusiveLock(at: lockURL) {
            // Another process may have finished it while this one waited.
            if FileManager.default.fileExists(atPath: blob.path) { return blob }
            try download(digest: digest, size: size, label: label, from: source, to: blob, client: client, headers: headers, progress: progress)
            return blob
        }
    }

    private func download(digest expected: String, size total: Int64, label: String, from source: URL, to blob: URL, client: HTTPClient,
                          headers extra: [String: String], progress: (@Sendable (String, Int64, Int64) -> Void)?) throws {
        let partial = blob.appendingPathExtension("partial")
        let tag = partial.appendingPathExtension("etag")
        var hasher = SHA256()
        var offset: Int64 = 0
        var headers = extra
        if let attributes = try? FileManager.default.attributesOfItem(atPath: partial.path),
           let size = (attributes[.size] as? NSNumber)?.int64Value, size > 0, size < total,
           let etag = RemoteRegistry.readTag(tag) {
            // Resume: hash what is there, ask for the rest of the same file.
            let handle = try FileHandle(forReadingFrom: partial)
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
            offset = size
            headers["Range"] = "bytes=\(size)-"
            headers["If-Range"] = etag
        } else {
            try? FileManager.default.removeItem(at: partial)
            try? FileManager.default.removeItem(at: tag)
        }
        if !FileManager.default.fileExists(atPath: partial.path) {
            _ = FileManager.default.createFile(atPath: partial.path, contents: nil)
        }
        let output = try FileHandle(forWritingTo: partial)
        var received = offset
        var started = false
        var lastReport = DispatchTime.now().uptimeNanoseconds
        // The hash runs on a thread of its own, reading the written bytes back behind the transfer.
        let background = try BackgroundHasher(following: partial, from: offset, continuing: hasher)
        let head: HTTPHead
        do {
            // Each piece is written straight from libcurl's buffer.
            head = try client.stream(source, headers: headers) { head, chunk in
                guard head.status == 200 || head.status == 206 else { return }
                if !started {
                    started = true
                    if head.status == 200 {
                        // The whole file (no range support, or it changed): start over.
                        background.restart()
                        try output.truncate(atOffset: 0)
                        received = 0
                    } else {
                        try output.seekToEnd()
                    }
                    if let etag = head["etag"] { try? AtomicFile.write(Data(etag.utf8), to: tag) }
                }
                guard received + Int64(chunk.count) <= total else {
                    throw RegistryError(.digestMismatch, "\(source.absoluteString) is longer than the \(total) bytes recorded for \(label): it is not the published bundle; do not use this registry until it is repaired")
                }
                try Self.write(chunk, to: output.fileDescriptor, path: partial)
                received += Int64(chunk.count)
                background.written(received)
                let now = DispatchTime.now().uptimeNanoseconds
                if let progress, now - lastReport > 200_000_000 {
                    lastReport = now
                    progress(label, received, total)
                }
            }
        } catch let error as RegistryError where error.code == .digestMismatch {
            try? output.close()
            try? FileManager.default.removeItem(at: partial)
            try? FileManager.default.removeItem(at: tag)
            throw error
        } catch {
            // What arrived is kept for the next attempt to resume from.
            try? output.close()
            let kept = received > 0 ? "; \(received) of \(total) bytes are kept: run the command again to resume" : ""
            if let error = error as? RegistryError, error.code == .network {
                throw RegistryError(.network, error.message + kept, cause: error.cause)
            }
            throw error
        }
        try output.close()
        switch head.status {
        case 200, 206: break
        case 401, 403:
            throw RegistryError(.network, "\(source.absoluteString) refused the download (HTTP \(head.status)); check the credentials")
        case 404, 410:
            throw RegistryError(.notFound, "\(label) is listed but \(source.absoluteString) answered HTTP \(head.status); the registry is missing the file")
        case 416:
            try? FileManager.default.removeItem(at: partial)
            throw RegistryError(.network, "\(source.absoluteString) refused to resume the download (HTTP 416); run the command again to start over")
        default:
            throw RegistryError(.network, "\(source.absoluteString) answered HTTP \(head.status); check the registry")
        }
        progress?(label, received, total)
        let digest = "sha256:" + (try background.finalize()).map { String(format: "%02x", $0) }.joined()
        guard received == total else {
            throw RegistryError(.network, "the download of \(label) from \(source.absoluteString) ended after \(received) of \(total) bytes; run the command again to resume")
        }
        guard digest == expected else {
            try? FileManager.default.removeItem(at: partial)
            try? FileManager.default.removeItem(at: tag)
            throw RegistryError(.digestMismatch, "\(source.absoluteString) has digest \(digest) but \(expected) is recorded for \(label): the served file was modified or replaced; nothing was kept")
        }
        try FileManager.default.moveItem(at: partial, to: blob)
        try? FileManager.default.removeItem(at: tag)
    }

    /// Writes all of `bytes` to `descriptor` (retrying short writes and interruptions).
    private static func write(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32, path: URL) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                throw RegistryError(.io, "cannot write \(path.path) (\(reason)); check the free space of the cache (CRAFT_CACHE)")
            }
            offset += written
        }
    }
}

