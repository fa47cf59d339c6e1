// Packing a directory into a reproducible `.craft` bundle.
import Crypto
import Foundation

extension BundleArchive {
    /// Packs a directory holding `craft.json` and the files it lists into a `.craft` bundle.
    ///
    /// The directory's `craft.json` lists every file by `path`; `size` and `sha256` may be omitted
    /// there and are always computed (streamed). Packing refuses, with an error naming the file:
    /// a file present but not listed (dotfiles included: list it or delete it; nothing is packed
    /// silently), a listed file that is missing, symbolic links and special files, an invalid manifest,
    /// a bundle that would break `limits`, and, for a manifest naming a codebook tensor (every encoder),
    /// a declared codebook hash that differs from the one recomputed from the tensor (the error names
    /// both). A backend's hash names the codebook it was trained to read and cannot be recomputed from
    /// its files, so it is taken as declared.
    ///
    /// The archive is reproducible: `craft.json` first (canonical JSON), then directories and files
    /// sorted by path, mtime 0, uid/gid 0, no owner names, modes 0644/0755, gzip level 9 without
    /// timestamp or name. It is written to a temporary file next to the output, then renamed.
    ///
    /// - Parameters:
    ///   - directory: The directory to pack.
    ///   - output: The `.craft` file to write, or an existing directory to write `NAME-VERSION.craft`
    ///     into; by default `NAME-VERSION.craft` next to `directory`.
    ///   - limits: The limits the packed bundle must respect (so that readers accept it).
    public static func pack(directory: URL, to output: URL? = nil, limits: BundleLimits = .default) throws -> PackedBundle {
        let present = try listRegularFiles(in: directory)
        let manifestURL = directory.appendingPathComponent(BundleManifest.fileName)
        guard present.contains(BundleManifest.fileName) else {
            throw BundleError(.notFound, "\(directory.path) holds no craft.json; write the manifest first (see docs/bundle-format.md)", entry: BundleManifest.fileName)
        }
        var manifest = try loadPackingManifest(manifestURL, limits: limits)

        let listed = Set(manifest.files.map(\.path))
        if let extra = present.sorted().first(where: { !listed.contains($0) && $0 != BundleManifest.fileName }) {
            throw BundleError(.unlistedEntry, "\(directory.path) holds \"\(extra)\", which craft.json does not list; list it in files or remove it (packing never includes unlisted files)", entry: extra)
        }
        if let missing = manifest.files.first(where: { !present.contains($0.path) }) {
            throw BundleError(.missingEntry, "craft.json lists \"\(missing.path)\" but \(directory.path) does not hold it; add the file or remove it from files", entry: missing.path)
        }

        // Sizes first (from the file system, without reading), so that limits refuse a huge or sparse
        // file before it is hashed; then digests, streamed; files sorted by path bytes.
        manifest.files.sort { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
        for index in manifest.files.indices {
            manifest.files[index].size = try fileSize(directory.appendingPathComponent(manifest.files[index].path), entry: manifest.files[index].path)
        }
        try checkPackingLimits(manifest, directoryCount: parentDirectories(of: manifest.files.map(\.path)).count, limits: limits)
        for index in manifest.files.indices {
            let (hex, size) = try FileDigest.sha256(of: directory.appendingPathComponent(manifest.files[index].path))
            manifest.files[index].size = size
            manifest.files[index].sha256 = hex
        }
        try manifest.validate()
        let directories = parentDirectories(of: manifest.files.map(\.path))
        try checkPackingLimits(manifest, directoryCount: directories.count, limits: limits)
        if manifest.codebook.tensor != nil {
            try CodebookVerification.verify(manifest, in: directory)
        }
        let manifestBytes = try manifest.canonicalJSON()
        guard Int64(manifestBytes.count) <= limits.maxManifestSize else {
            throw BundleError(.limitExceeded, "craft.json of \(manifest.reference) would be \(manifestBytes.count) bytes, more than the limit of \(limits.maxManifestSize); move large data out of config and provenance into files", entry: BundleManifest.fileName)
        }

        let destination = try resolveOutput(output, directory: directory, manifest: manifest)
        let temporary = destination.deletingLastPathComponent().appendingPathComponent("." + ScratchFiles.name(ScratchPrefix.pack))
        let scratch = ScratchFiles.track(temporary)
        do {
            let writer = try TarWriter(url: temporary, shownAs: destination.path)
            try writer.addFile(path: BundleManifest.fileName, size: Int64(manifestBytes.count)) { write in
                try manifestBytes.withUnsafeBytes { try write($0) }
            }
            let files = Dictionary(manifest.files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
            let entries = (Array(directories) + manifest.files.map(\.path))
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            for path in entries {
                guard let file = files[path] else {
                    try writer.addDirectory(path: path)
                    continue
                }
                var hasher = SHA256()
                try writer.addFile(path: path, size: file.size) { write in
                    try FileDigest.stream(directory.appendingPathComponent(path)) { chunk in
                        hasher.update(bufferPointer: chunk)
                        try write(chunk)
                    }
                }
                guard FileDigest.hex(hasher.finalize()) == file.sha256 else {
                    throw BundleError(.io, "\"\(path)\" in \(directory.path) changed while being packed; pack again", entry: path)
                }
            }
            try writer.finish()
            // Checked again just before the rename: only a regular file (or nothing) is ever replaced.
            try checkReplaceable(destination)
            guard rename(temporary.path, destination.path) == 0 else {
                throw BundleError(.io, "cannot move the packed bundle to \(destination.path) (\(String(cString: strerror(errno))))")
            }
            ScratchFiles.untrack(scratch)
        } catch {
            ScratchFiles.remove(scratch)
            throw error
        }
        let (hex, size) = try FileDigest.sha256(of: destination)
        return PackedBundle(url: destination, manifest: manifest, digest: "sha256:" + hex, size: size)
    }

    /// Whether `directory` holds a bundle *source*: a `craft.json` that is valid once its file
    /// entries get the `size` and `sha256` that `craft-registry pack` fills in, but lacks some. Such a
    /// directory is packed, not opened (commands say so instead of reporting a missing field).
    public static func isPackingSource(_ directory: URL) -> Bool {
        let url = directory.appendingPathComponent(BundleManifest.fileName)
        guard let data = try? BundleManifest.readFile(url, limit: BundleLimits.default.maxManifestSize),
              (try? BundleManifest.decode(data, source: url.path)) == nil else { return false }
        return (try? loadPackingManifest(url)) != nil
    }

    /// Decodes the directory's manifest, accepting file entries without `size` or `sha256`.
    static func loadPackingManifest(_ url: URL, limits: BundleLimits = .default) throws -> BundleManifest {
        let data = try BundleManifest.readFile(url, limit: limits.maxManifestSize)
        try JSONDuplicateKeys.check(data, source: url.path)
        guard var json = try? JSONDecoder().decode(JSONValue.self, from: data), case .object(var top) = json else {
            // Let the regular decoder produce the precise error.
            _ = try BundleManifest.decode(data, source: url.path)
            throw BundleError(.invalidManifest, "\(url.path) is not a JSON object; see docs/bundle-format.md", entry: BundleManifest.fileName)
        }
        if case .array(let files)? = top["files"] {
            top["files"] = .array(files.map { entry in
                guard case .object(var members) = entry else { return entry }
                if members["size"] == nil { members["size"] = .integer(0) }
                if members["sha256"] == nil { members["sha256"] = .string(String(repeating: "0", count: 64)) }
                return .object(members)
            })
        }
        json = .object(top)
        let filled: Data
        do {
            filled = try JSONEncoder().encode(json)
        } catch {
            throw BundleError(.invalidManifest, "\(url.path) holds values that cannot be re-encoded (\(error.localizedDescription))", entry: BundleManifest.fileName)
        }
        return try BundleManifest.decode(filled, source: url.path)
    }

    /// Every directory that is a parent of one of `paths`.
    static func parentDirectories(of paths: [String]) -> Set<String> {
        var result: Set<String> = []
        for path in paths {
            var components = path.split(separator: "/").dropLast()
            while !components.isEmpty {
                result.insert(components.joined(separator: "/"))
                components = components.dropLast()
            }
        }
        return result
    }

    static func checkPackingLimits(_ manifest: BundleManifest, directoryCount: Int, limits: BundleLimits) throws {
        let entries = 1 + directoryCount + manifest.files.count
        if entries > limits.maxEntries {
            throw BundleError(.limitExceeded, "\(manifest.reference) would have \(entries) entries, more than the limit of \(limits.maxEntries)")
        }
        var total: Int64 = 0
        for file in manifest.files {
            if file.path.utf8.count > limits.maxPathLength {
                throw BundleError(.limitExceeded, "\"\(file.path)\" is longer than the path limit of \(limits.maxPathLength) bytes; shorten it", entry: file.path)
            }
            if file.size > limits.maxFileSize {
                throw BundleError(.limitExceeded, "\"\(file.path)\" is \(file.size) bytes, more than the per-file limit of \(limits.maxFileSize)", entry: file.path)
            }
            total += file.size
        }
        if total > limits.maxTotalSize {
            throw BundleError(.limitExceeded, "\(manifest.reference) would hold \(total) bytes, more than the limit of \(limits.maxTotalSize)")
        }
    }

    /// The size of a listed file from the file system (regular files only, checked by the caller).
    static func fileSize(_ url: URL, entry: String) throws -> Int64 {
        var status = stat()
        guard lstat(url.path, &status) == 0 else {
            throw BundleError(.notFound, "cannot read \(url.path) (\(String(cString: strerror(errno)))); check that it exists", entry: entry)
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw BundleError(.unsafeEntry, "\(url.path) is not a regular file; bundles hold only regular files", entry: entry)
        }
        return Int64(status.st_size)
    }

    /// Refuses to replace anything at `destination` but a regular file: pack writes only regular
    /// files, and a rename over a device node, FIFO, socket, symbolic link or directory would replace it.
    static func checkReplaceable(_ destination: URL) throws {
        var status = stat()
        guard lstat(destination.path, &status) == 0 else { return }
        let type = status.st_mode & S_IFMT
        guard type == S_IFREG else {
            let kind = switch type {
            case S_IFLNK: "a symbolic link"
            case S_IFDIR: "a directory"
            case S_IFCHR: "a character device"
            case S_IFBLK: "a block device"
            case S_IFIFO: "a FIFO"
            case S_IFSOCK: "a socket"
            default: "not a regular file"
            }
            throw BundleError(.io, "cannot write the bundle to \(destination.path): it is \(kind), and pack only writes or replaces regular files; choose another output path")
        }
    }

    static func resolveOutput(_ output: URL?, directory: URL, manifest: BundleManifest) throws -> URL {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        let destination: URL
        if let output {
            if fileManager.fileExists(atPath: output.path, isDirectory: &isDirectory), isDirectory.boolValue {
                destination = output.appendingPathComponent(manifest.defaultFileName)
            } else {
                destination = output
            }
        } else {
            destination = directory.standardizedFileURL.deletingLastPathComponent().appendingPathComponent(manifest.defaultFileName)
        }
        let parent = destination.deletingLastPathComponent()
        guard fileManager.fileExists(atPath: parent.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw BundleError(.notFound, "cannot write \(destination.path): the directory \(parent.path) does not exist; create it first")
        }
        let standardDirectory = directory.standardizedFileURL.path
        if destination.standardizedFileURL.path.hasPrefix(standardDirectory + "/") {
            throw BundleError(.io, "cannot write the bundle \(destination.path) inside the directory being packed; write it elsewhere")
        }
        try checkReplaceable(destination)
        return destination
    }
}
