// Packing, reading, verifying and unpacking `.craft` bundles (docs/bundle-format.md).
import CraftCore
import Crypto
import Foundation

/// A bundle written by ``BundleArchive/pack(directory:to:limits:)``.
public struct PackedBundle: Sendable, Equatable {
    /// The `.craft` file written.
    public var url: URL
    /// The manifest stored in it, with every file's size and sha256 filled in.
    public var manifest: BundleManifest
    /// `"sha256:" + hex` of the file's bytes.
    public var digest: String
    /// The file's size in bytes.
    public var size: Int64
}

/// A bundle whose every entry was read and checked, without extracting anything.
public struct VerifiedBundle: Sendable, Equatable {
    public var url: URL
    public var manifest: BundleManifest
    /// `"sha256:" + hex` of the file's bytes.
    public var digest: String
    public var size: Int64
    /// The files whose size and sha256 matched the manifest (all of `manifest.files`).
    public var files: [BundleFileEntry]
}

/// A bundle extracted into a directory (or a directory holding a bundle's files and `craft.json`).
public struct UnpackedBundle: Sendable, Equatable {
    /// The directory holding `craft.json` and the listed files.
    public var directory: URL
    public var manifest: BundleManifest
    /// The digest of the `.craft` file it came from, when it came from one.
    public var digest: String?
    /// The codebook read from the bundle's codebook tensor and hashed when the bundle was opened
    /// (CraftRegistry's `BundleOpener` sets it; nothing outside Craft's modules can).
    package var openedCodebook: Codebook?

    /// The location of a file of the bundle (a path listed in the manifest).
    public func url(for path: String) -> URL {
        directory.appendingPathComponent(path)
    }

    /// The codebook hashed when the bundle was opened, its hash and shape checked against the
    /// declared ones; the compatibility checker and the runtimes reuse it, so a run hashes its
    /// codebook once. `nil` when the bundle was not opened by a `BundleOpener`, names no codebook
    /// tensor, or its manifest was edited since to declare another codebook (which must then be read
    /// again).
    public var verifiedCodebook: Codebook? {
        guard let openedCodebook, openedCodebook.identity == manifest.codebook.identity else { return nil }
        return openedCodebook
    }

    /// Equal when directory, manifest, digest and the verified codebook's identity are.
    public static func == (lhs: UnpackedBundle, rhs: UnpackedBundle) -> Bool {
        lhs.directory == rhs.directory && lhs.manifest == rhs.manifest && lhs.digest == rhs.digest
            && lhs.openedCodebook?.identity == rhs.openedCodebook?.identity
    }
}

/// Reading and writing `.craft` bundles: gzip-compressed pax tar archives holding `craft.json` first
/// and the files it lists.
///
/// Writing is reproducible (sorted entries, mtime 0, uid/gid 0, empty owner names, modes 0644/0755,
/// gzip without timestamp or name). Reading treats every bundle as hostile: only regular files and
/// directories, relative clean paths, no links, devices or FIFOs, no duplicate, unlisted or missing
/// entries, ``BundleLimits`` on counts and sizes and compression ratio, and every size and sha256
/// checked. Every violation is a ``BundleError`` naming the entry.
///
/// ```swift
/// let packed = try BundleArchive.pack(directory: URL(fileURLWithPath: "my-encoder"))
/// let verified = try BundleArchive.verify(packed.url)
/// let unpacked = try BundleArchive.unpack(packed.url, into: URL(fileURLWithPath: "out/my-encoder"))
/// ```
public enum BundleArchive {
    /// The bundle file extension.
    public static let fileExtension = "craft"

    // MARK: - Digest

    /// `"sha256:" + lowercase hex` of the SHA-256 of a file's bytes, streamed.
    public static func digest(of file: URL) throws -> String {
        "sha256:" + (try FileDigest.sha256(of: file)).hex
    }

    // MARK: - Reading

    /// Reads `craft.json`, which must be the first entry, without reading or extracting the rest.
    ///
    /// The manifest is decoded and validated. Nothing else of the bundle is checked: use
    /// ``verify(_:expectedDigest:limits:)`` before trusting its files.
    public static func readManifest(of bundle: URL, limits: BundleLimits = .default) throws -> BundleManifest {
        let reader = try TarReader(url: bundle, limits: limits)
        return try readLeadingManifest(reader, bundle: bundle, limits: limits).manifest
    }

    /// Reads one listed file of a bundle into memory without extracting anything, reading the archive
    /// only as far as that entry: the registry server shows a bundle's `README.md` this way.
    ///
    /// The bytes returned are the listed ones: their size and sha256 are checked against `craft.json`.
    ///
    /// - Parameters:
    ///   - path: the file's path as `craft.json` lists it.
    ///   - maxSize: the largest file accepted; a bigger one is ``BundleError/Code/limitExceeded``.
    /// - Returns: the file's bytes, or `nil` when `craft.json` does not list `path`.
    public static func readListedFile(
        _ path: String, of bundle: URL, maxSize: Int64, limits: BundleLimits = .default
    ) throws -> Data? {
        let reader = try TarReader(url: bundle, limits: limits)
        let manifest = try readLeadingManifest(reader, bundle: bundle, limits: limits).manifest
        guard let file = manifest.files.first(where: { $0.path == path }) else { return nil }
        guard file.size <= maxSize else {
            throw BundleError(.limitExceeded, "\"\(path)\" of \(manifest.reference) is \(file.size) bytes, more than the \(maxSize) bytes read for display; make it shorter and pack again", entry: path)
        }
        while let header = try reader.nextEntry() {
            guard header.path == path, header.type == .regular else { continue }
            let data = try readEntry(reader, limit: file.size) {
                BundleError(.sizeMismatch, "entry \"\(path)\" of \(bundle.lastPathComponent) holds more data than craft.json says (\(file.size) bytes); the bundle is corrupt or was tampered with", entry: path)
            }
            try checkFile(file, size: Int64(data.count), sha256: FileDigest.sha256(data), in: manifest)
            return data
        }
        throw BundleError(.missingEntry, "\(bundle.lastPathComponent) lacks \"\(path)\", which its craft.json lists; the bundle is incomplete", entry: path)
    }

    /// Reads every entry, checking types, paths, limits, sizes and sha256 against the manifest,
    /// without writing anything.
    ///
    /// The file is read once: its digest is computed from the same bytes that are decompressed and
    /// checked, so with `expectedDigest` (`"sha256:" + hex`) what is verified is exactly the file that
    /// has that digest, even if the path is replaced meanwhile (``BundleError/Code/digestMismatch``
    /// otherwise).
    public static func verify(_ bundle: URL, expectedDigest: String? = nil, limits: BundleLimits = .default) throws -> VerifiedBundle {
        let reader = try TarReader(url: bundle, limits: limits)
        let manifest = try readWhole(reader, bundle: bundle, limits: limits, sink: nil, expectedDigest: expectedDigest)
        return VerifiedBundle(
            url: bundle, manifest: manifest, digest: reader.stream.digest, size: reader.stream.compressedBytes, files: manifest.files)
    }

    /// Extracts a bundle into `destination`, which must not exist yet.
    ///
    /// Entries are checked as by ``verify(_:expectedDigest:limits:)`` while they are written into a
    /// fresh scratch directory next to `destination` (`.craft-unpack-PID-UUID`, removed if the process
    /// is interrupted, see ``ScratchFiles``); only when everything passed is that directory renamed to
    /// `destination` (atomically). On any failure nothing is left behind.
    ///
    /// The file is opened and read once, and the digest is computed from the bytes being unpacked. With
    /// `expectedDigest` (`"sha256:" + hex`, e.g. a registry index's record), a file whose digest differs
    /// is refused (``BundleError/Code/digestMismatch``, exit 4) before anything is moved into place:
    /// this is how to unpack a file that another process could replace (no verify-then-unpack race).
    public static func unpack(
        _ bundle: URL, into destination: URL, expectedDigest: String? = nil, limits: BundleLimits = .default
    ) throws -> UnpackedBundle {
        let reader = try TarReader(url: bundle, limits: limits)
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: destination.path) {
            throw BundleError(.io, "cannot unpack \(bundle.lastPathComponent) into \(destination.path): it already exists; remove it or choose another destination")
        }
        let parent = destination.deletingLastPathComponent()
        do {
            try fileManager.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw BundleError(.io, "cannot create \(parent.path) to unpack \(bundle.lastPathComponent) (\(error.localizedDescription))")
        }
        let temporary = parent.appendingPathComponent("." + ScratchFiles.name(ScratchPrefix.unpack))
        let sink = try DirectorySink(root: temporary, bundle: bundle)
        do {
            let manifest = try readWhole(reader, bundle: bundle, limits: limits, sink: sink, expectedDigest: expectedDigest)
            try sink.moveRoot(to: destination)
            return UnpackedBundle(directory: destination, manifest: manifest, digest: reader.stream.digest)
        } catch {
            sink.removeAll()
            throw error
        }
    }

    /// Opens a directory holding an unpacked bundle: reads and validates `craft.json`, and with
    /// `verifyFiles` checks that every listed file exists with its size and sha256 and nothing else does.
    public static func open(directory: URL, verifyFiles: Bool = true) throws -> UnpackedBundle {
        let manifest = try BundleManifest.load(from: directory.appendingPathComponent(BundleManifest.fileName))
        try manifest.validate()
        if verifyFiles {
            let present = try listRegularFiles(in: directory)
            let listed = Set(manifest.files.map(\.path))
            if let extra = present.first(where: { !listed.contains($0) && $0 != BundleManifest.fileName }) {
                throw BundleError(.unlistedEntry, "\(directory.path) holds \"\(extra)\" which craft.json of \(manifest.reference) does not list; remove it or list it", entry: extra)
            }
            for file in manifest.files {
                let url = directory.appendingPathComponent(file.path)
                guard present.contains(file.path) else {
                    throw BundleError(.missingEntry, "\(manifest.reference) lists \"\(file.path)\" but \(directory.path) does not hold it; unpack the bundle again", entry: file.path)
                }
                let (hex, size) = try FileDigest.sha256(of: url)
                try checkFile(file, size: size, sha256: hex, in: manifest)
            }
        }
        return UnpackedBundle(directory: directory, manifest: manifest, digest: nil)
    }

    /// Checks the whole bundle like ``verify(_:expectedDigest:limits:)`` and extracts only `paths`
    /// (and `craft.json`) into a new scratch directory (`$TMPDIR/craft-extract-PID-UUID`, tracked),
    /// which the caller must remove with `ScratchFiles.remove(scratch)`. With `expectedDigest` (a
    /// digest obtained from an earlier verify), a file replaced since is refused (`digest-mismatch`).
    static func extractChecked(
        _ bundle: URL, paths: Set<String>, limits: BundleLimits, expectedDigest: String? = nil
    ) throws -> (bundle: UnpackedBundle, scratch: ScratchFiles.Tracked) {
        let reader = try TarReader(url: bundle, limits: limits)
        let temporary = ScratchFiles.directory.appendingPathComponent(ScratchFiles.name(ScratchPrefix.extract))
        let sink = try DirectorySink(root: temporary, bundle: bundle, only: paths)
        do {
            let manifest = try readWhole(reader, bundle: bundle, limits: limits, sink: sink, expectedDigest: expectedDigest)
            return (UnpackedBundle(directory: temporary, manifest: manifest, digest: reader.stream.digest), sink.tracked)
        } catch {
            sink.removeAll()
            throw error
        }
    }

    // MARK: - Internals shared by readers

    /// The one pass of ``verify(_:expectedDigest:limits:)``, ``unpack(_:into:expectedDigest:limits:)``
    /// and ``extractChecked(_:paths:limits:)``: every entry, the rest of the gzip member, the digest.
    static func readWhole(
        _ reader: TarReader, bundle: URL, limits: BundleLimits, sink: DirectorySink?, expectedDigest: String?
    ) throws -> BundleManifest {
        let (manifest, _) = try scan(reader, bundle: bundle, limits: limits, sink: sink)
        try reader.finish()
        let digest = reader.stream.digest
        if let expectedDigest, digest != expectedDigest {
            throw BundleError(.digestMismatch, "\(bundle.path) has digest \(digest) but \(expectedDigest) was expected: the file was modified or replaced after its digest was recorded; do not use it")
        }
        return manifest
    }

    static func checkFile(_ file: BundleFileEntry, size: Int64, sha256: String, in manifest: BundleManifest) throws {
        guard size == file.size else {
            throw BundleError(.sizeMismatch, "\"\(file.path)\" of \(manifest.reference) is \(size) bytes but craft.json says \(file.size); the bundle is corrupt or was tampered with", entry: file.path)
        }
        guard sha256 == file.sha256 else {
            throw BundleError(.digestMismatch, "\"\(file.path)\" of \(manifest.reference) has sha256 \(sha256) but craft.json says \(file.sha256); the bundle is corrupt or was tampered with", entry: file.path)
        }
    }

    /// The current entry's data into memory; more than `limit` bytes throws `tooLong()`.
    static func readEntry(_ reader: TarReader, limit: Int64, tooLong: () -> BundleError) throws -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            if count == 0 { return data }
            data.append(contentsOf: buffer[0..<count])
            guard Int64(data.count) <= limit else { throw tooLong() }
        }
    }

    /// Reads the first entry, which must be a regular `craft.json`, and decodes and validates it.
    static func readLeadingManifest(_ reader: TarReader, bundle: URL, limits: BundleLimits) throws -> (manifest: BundleManifest, bytes: Data) {
        let name = bundle.lastPathComponent
        guard let first = try reader.nextEntry() else {
            throw BundleError(.manifestNotFirst, "\(name) is an empty archive; a bundle starts with craft.json", entry: BundleManifest.fileName)
        }
        guard first.path == BundleManifest.fileName else {
            throw BundleError(.manifestNotFirst, "\(name) starts with \"\(first.path)\" but a bundle's first entry must be craft.json; repack it with `craft-registry pack`", entry: first.path)
        }
        guard first.type == .regular else {
            throw BundleError(.unsafeEntry, "craft.json in \(name) is a \(first.type), not a regular file; the bundle is not usable", entry: first.path)
        }
        let declared = first.size ?? 0
        guard declared <= limits.maxManifestSize else {
            throw BundleError(.limitExceeded, "craft.json in \(name) is \(declared) bytes, more than the limit of \(limits.maxManifestSize)", entry: first.path)
        }
        let data = try readEntry(reader, limit: limits.maxManifestSize) {
            BundleError(.limitExceeded, "craft.json in \(name) is larger than the limit of \(limits.maxManifestSize) bytes", entry: first.path)
        }
        guard Int64(data.count) == declared else {
            throw BundleError(.corruptArchive, "craft.json in \(name) is truncated (\(data.count) of \(declared) bytes)", entry: first.path)
        }
        let manifest = try BundleManifest.decode(data, source: "craft.json in \(name)")
        do {
            try manifest.validate()
        } catch var error as BundleError {
            error.message = "craft.json in \(name): " + (manifest.problems().first.map { "\($0)" } ?? error.message) + "; fix the manifest and pack again"
            throw error
        }
        return (manifest, data)
    }

    /// Walks every entry after the manifest, enforcing all rules; writes into `sink` when given.
    static func scan(_ reader: TarReader, bundle: URL, limits: BundleLimits, sink: DirectorySink?) throws -> (BundleManifest, Data) {
        let name = bundle.lastPathComponent
        let (manifest, manifestBytes) = try readLeadingManifest(reader, bundle: bundle, limits: limits)
        try sink?.writeFile(path: BundleManifest.fileName) { write in
            try manifestBytes.withUnsafeBytes { try write($0) }
        }
        let listed = Dictionary(manifest.files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        var directories: Set<String> = []
        for file in manifest.files {
            var components = file.path.split(separator: "/").dropLast()
            while !components.isEmpty {
                directories.insert(components.joined(separator: "/"))
                components = components.dropLast()
            }
        }
        var seen: Set<String> = [BundleManifest.fileName]
        var entryCount = 1
        var totalSize: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: FileDigest.chunkSize)

        while let header = try reader.nextEntry() {
            entryCount += 1
            let path = header.path
            let shown = path.count > 120 ? String(path.prefix(120)) + "…" : path
            guard entryCount <= limits.maxEntries else {
                throw BundleError(.limitExceeded, "\(name) has more than \(limits.maxEntries) entries (stopped at \"\(shown)\"); raise BundleLimits.maxEntries if you trust it", entry: path)
            }
            guard path.utf8.count <= limits.maxPathLength else {
                throw BundleError(.limitExceeded, "entry \"\(shown)\" of \(name) has a path of \(path.utf8.count) bytes, more than the limit of \(limits.maxPathLength)", entry: path)
            }
            switch header.type {
            case .regular, .directory: break
            default:
                throw BundleError(.unsafeEntry, "entry \"\(shown)\" of \(name) is a \(header.type); bundles may hold only regular files and directories", entry: path)
            }
            if let problem = BundlePath.problem(with: path) {
                throw BundleError(.unsafeEntry, "entry \"\(shown)\" of \(name) has an unsafe path: \(problem)", entry: path)
            }
            guard seen.insert(path).inserted else {
                throw BundleError(.duplicateEntry, "entry \"\(shown)\" appears more than once in \(name); the bundle is corrupt or was tampered with", entry: path)
            }
            if header.type == .directory {
                // libarchive would skip a directory's data unread: refuse it instead.
                if let size = header.size, size != 0 {
                    throw BundleError(.unsafeEntry, "directory \"\(shown)\" in \(name) carries \(size) bytes of data; directory entries hold none, so the bundle is corrupt or was tampered with", entry: path)
                }
                guard directories.contains(path) else {
                    throw BundleError(.unlistedEntry, "directory \"\(shown)\" in \(name) holds no file listed in craft.json; the bundle was not made by `craft-registry pack`", entry: path)
                }
                try sink?.makeDirectory(path: path)
                continue
            }
            guard let file = listed[path] else {
                throw BundleError(.unlistedEntry, "entry \"\(shown)\" of \(name) is not listed in craft.json; the bundle is corrupt or was tampered with", entry: path)
            }
            guard let declared = header.size, declared == file.size else {
                throw BundleError(.sizeMismatch, "entry \"\(shown)\" of \(name) is \(header.size.map(String.init) ?? "of unknown size") bytes but craft.json says \(file.size); the bundle is corrupt or was tampered with", entry: path)
            }
            guard declared <= limits.maxFileSize else {
                throw BundleError(.limitExceeded, "entry \"\(shown)\" of \(name) is \(declared) bytes, more than the per-file limit of \(limits.maxFileSize); raise BundleLimits.maxFileSize if you trust it", entry: path)
            }
            totalSize += declared
            guard totalSize <= limits.maxTotalSize else {
                throw BundleError(.limitExceeded, "\(name) holds more than \(limits.maxTotalSize) bytes (reached at entry \"\(shown)\"); raise BundleLimits.maxTotalSize if you trust it", entry: path)
            }
            var hasher = SHA256()
            var count: Int64 = 0
            let produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void = { write in
                while true {
                    let read = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
                    if read == 0 { break }
                    count += Int64(read)
                    guard count <= declared else {
                        throw BundleError(.sizeMismatch, "entry \"\(shown)\" of \(name) holds more data than its header says", entry: path)
                    }
                    try buffer.withUnsafeBytes { raw in
                        let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<read])
                        hasher.update(bufferPointer: chunk)
                        try write(chunk)
                    }
                }
            }
            if let sink {
                try sink.writeFile(path: path, produce)
            } else {
                try produce { _ in }
            }
            try checkFile(file, size: count, sha256: FileDigest.hex(hasher.finalize()), in: manifest)
        }
        if let missing = manifest.files.first(where: { !seen.contains($0.path) }) {
            throw BundleError(.missingEntry, "\(name) lacks \"\(missing.path)\", which its craft.json lists; the bundle is incomplete", entry: missing.path)
        }
        return (manifest, manifestBytes)
    }

    /// Relative paths of the regular files under `directory`; throws on links and special files.
    static func listRegularFiles(in directory: URL) throws -> Set<String> {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw BundleError(.notFound, "\(directory.path) is not a directory; give the directory holding craft.json")
        }
        let root = directory.standardizedFileURL.resolvingSymlinksInPath().path
        guard let walker = fileManager.enumerator(atPath: root) else {
            throw BundleError(.io, "cannot list \(directory.path)")
        }
        var result: Set<String> = []
        while let relative = walker.nextObject() as? String {
            let attributes = walker.fileAttributes ?? [:]
            let type = attributes[.type] as? FileAttributeType
            switch type {
            case .typeRegular?: result.insert(relative)
            case .typeDirectory?: continue
            case .typeSymbolicLink?:
                throw BundleError(.unsafeEntry, "\"\(relative)\" in \(directory.path) is a symbolic link; bundles hold only regular files, so copy the file in its place", entry: relative)
            default:
                throw BundleError(.unsafeEntry, "\"\(relative)\" in \(directory.path) is not a regular file or directory; remove it", entry: relative)
            }
        }
        return result
    }
}

/// The prefixes of the scratch names CraftBundles makes (``ScratchFiles/name(_:)``: `PREFIX-PID-UUID`).
public enum ScratchPrefix {
    /// `.craft-unpack-PID-UUID`: an unpack in progress, next to the destination.
    public static let unpack = "craft-unpack"
    /// `$TMPDIR/craft-extract-PID-UUID`: files extracted to recompute a codebook hash.
    public static let extract = "craft-extract"
    /// `.craft-pack-PID-UUID`: a bundle being packed, next to the output file.
    public static let pack = "craft-pack"
    /// Every prefix above, for ``ScratchFiles/sweep(_:prefixes:)``.
    public static let all = [unpack, extract, pack]
}

/// Writes extracted entries under a fresh scratch root directory, refusing to follow or replace
/// anything. The root is tracked by ``ScratchFiles`` (removed on SIGINT, SIGTERM, SIGHUP) until it is
/// moved into place or removed.
final class DirectorySink {
    let root: URL
    /// The bundle being extracted, for messages.
    let bundle: URL
    /// When set, only these files are written (the others are still read and checked).
    let only: Set<String>?
    /// The scratch registration of `root`.
    let tracked: ScratchFiles.Tracked

    init(root: URL, bundle: URL, only: Set<String>? = nil) throws {
        self.root = root
        self.bundle = bundle
        self.only = only
        guard mkdir(root.path, 0o755) == 0 else {
            throw BundleError(.io, "cannot unpack \(bundle.lastPathComponent): cannot create a directory in \(root.deletingLastPathComponent().path) (\(String(cString: strerror(errno)))); check that it is writable")
        }
        tracked = ScratchFiles.track(root)
    }

    func makeDirectory(path: String) throws {
        do {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(path), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch {
            throw BundleError(.io, "cannot create directory \"\(path)\" while unpacking \(bundle.lastPathComponent) (\(error.localizedDescription))", entry: path)
        }
    }

    func writeFile(path: String, _ produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        if let only, !only.contains(path) {
            try produce { _ in }
            return
        }
        let url = root.appendingPathComponent(path)
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty { try makeDirectory(path: parent) }
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw BundleError(.io, "cannot create \"\(path)\" while unpacking \(bundle.lastPathComponent) (\(String(cString: strerror(errno))))", entry: path)
        }
        defer { close(descriptor) }
        try produce { chunk in
            var offset = 0
            while offset < chunk.count {
                guard let base = chunk.baseAddress else { return }
                let written = write(descriptor, base + offset, chunk.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw BundleError(.io, "cannot write \"\(path)\" while unpacking \(bundle.lastPathComponent) (\(String(cString: strerror(errno))))", entry: path)
                }
                offset += written
            }
        }
    }

    /// Renames the finished root to `destination` (atomic on one file system) and stops tracking it.
    func moveRoot(to destination: URL) throws {
        guard rename(root.path, destination.path) == 0 else {
            throw BundleError(.io, "cannot move the unpacked \(bundle.lastPathComponent) to \(destination.path) (\(String(cString: strerror(errno)))); check that it does not exist and is on the same file system")
        }
        ScratchFiles.untrack(tracked)
    }

    func removeAll() {
        ScratchFiles.remove(tracked)
    }
}
