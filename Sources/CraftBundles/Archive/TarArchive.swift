// The only file that touches libarchive: reproducible gzip pax tar writing, and streaming reading.
// C types and return codes stay here; ARCHIVE_FATAL/FAILED become BundleError, ARCHIVE_WARN is success.
import CArchive
import Foundation

/// What kind of entry a tar header describes.
enum TarEntryType: Equatable, CustomStringConvertible {
    case regular
    case directory
    case symbolicLink(target: String)
    case hardLink(target: String)
    case characterDevice
    case blockDevice
    case fifo
    case socket
    case sparse
    case unknown(mode: UInt32)

    var description: String {
        switch self {
        case .regular: "regular file"
        case .directory: "directory"
        case .symbolicLink(let target): "symbolic link to \"\(target)\""
        case .hardLink(let target): "hard link to \"\(target)\""
        case .characterDevice: "character device"
        case .blockDevice: "block device"
        case .fifo: "FIFO"
        case .socket: "socket"
        case .sparse: "sparse file"
        case .unknown(let mode): "entry of unknown type (mode \(String(mode, radix: 8)))"
        }
    }
}

/// One tar header, as read.
struct TarEntryHeader {
    var path: String
    var type: TarEntryType
    /// The declared data size, when the header sets one.
    var size: Int64?
    /// Metadata, for layout checks (readers ignore it).
    var modificationTime: Int = 0
    var userID: Int64 = 0
    var groupID: Int64 = 0
    var userName: String = ""
    var groupName: String = ""
    var permissions: UInt32 = 0
}

/// Libarchive return codes, kept inside this file.
private enum Status {
    static let ok = ARCHIVE_OK
    static let eof = ARCHIVE_EOF
    static let warn = ARCHIVE_WARN

    /// Whether a return code is success (OK or WARN: a diagnostic, not a failure).
    static func succeeded(_ code: Int32) -> Bool { code == ok || code == warn }
}

// File type bits of `archive_entry_filetype` (the AE_IF* macros, which Swift cannot import).
private let fileTypeMask: UInt32 = 0o170000
private let typeRegular: UInt32 = 0o100000
private let typeDirectory: UInt32 = 0o040000
private let typeSymlink: UInt32 = 0o120000
private let typeCharacter: UInt32 = 0o020000
private let typeBlock: UInt32 = 0o060000
private let typeFIFO: UInt32 = 0o010000
private let typeSocket: UInt32 = 0o140000

private func errorText(_ archive: OpaquePointer?) -> String {
    guard let archive, let text = archive_error_string(archive) else { return "unknown libarchive error" }
    return String(cString: text)
}

/// Streams entries out of a gzip-compressed tar file. Only gzip and tar formats are enabled.
final class TarReader {
    private let archive: OpaquePointer
    private let source: String
    /// The entry whose data is being read, for messages.
    private(set) var currentPath: String?

    init(url: URL) throws {
        source = url.lastPathComponent
        guard let archive = archive_read_new() else {
            throw BundleError(.io, "cannot allocate an archive reader for \(url.lastPathComponent)")
        }
        archive_read_support_filter_gzip(archive)
        archive_read_support_format_tar(archive)
        let code = url.withUnsafeFileSystemRepresentation { path in
            archive_read_open_filename(archive, path, 64 * 1024)
        }
        guard Status.succeeded(code) else {
            let reason = errorText(archive)
            archive_read_free(archive)
            throw BundleError(.corruptArchive, "\(url.lastPathComponent) cannot be read as a gzip-compressed tar archive (\(reason)); it is corrupt, truncated or not a bundle: download or pack it again", entry: nil)
        }
        // Assigned last: a throwing initializer never leaves a half-made reader for deinit to free.
        self.archive = archive
    }

    deinit {
        archive_read_free(archive)
    }

    /// Compressed bytes consumed from the file so far.
    var compressedBytesRead: Int64 { archive_filter_bytes(archive, -1) }
    /// Uncompressed bytes produced so far.
    var uncompressedBytesRead: Int64 { archive_filter_bytes(archive, 0) }

    /// The next header, or `nil` at the end of the archive.
    func nextEntry() throws -> TarEntryHeader? {
        var entryPointer: OpaquePointer?
        let code = archive_read_next_header(archive, &entryPointer)
        if code == Status.eof { return nil }
        guard Status.succeeded(code), let entry = entryPointer else {
            throw BundleError(.corruptArchive, "\(source) is corrupt or truncated after \(currentPath.map { "entry \"\($0)\"" } ?? "the start") (\(errorText(archive))); download or pack it again", entry: currentPath)
        }
        var path: String?
        if let raw = archive_entry_pathname_utf8(entry) {
            path = String(cString: raw)
        } else if let raw = archive_entry_pathname(entry) {
            path = String(decoding: Data(bytes: raw, count: strlen(raw)), as: UTF8.self)
        }
        guard var path else {
            throw BundleError(.unsafeEntry, "\(source) has an entry without a readable path after \(currentPath.map { "\"\($0)\"" } ?? "the start"); the bundle is not usable", entry: currentPath)
        }
        currentPath = path
        let type: TarEntryType
        if let link = archive_entry_hardlink(entry) {
            type = .hardLink(target: String(cString: link))
        } else {
            switch UInt32(archive_entry_filetype(entry)) & fileTypeMask {
            case typeRegular: type = archive_entry_sparse_count(entry) > 0 ? .sparse : .regular
            case typeDirectory: type = .directory
            case typeSymlink: type = .symbolicLink(target: archive_entry_symlink(entry).map { String(cString: $0) } ?? "")
            case typeCharacter: type = .characterDevice
            case typeBlock: type = .blockDevice
            case typeFIFO: type = .fifo
            case typeSocket: type = .socket
            default: type = .unknown(mode: UInt32(archive_entry_filetype(entry)))
            }
        }
        if type == .directory, path.count > 1, path.hasSuffix("/") { path.removeLast() }
        let size: Int64? = archive_entry_size_is_set(entry) != 0 ? archive_entry_size(entry) : nil
        return TarEntryHeader(
            path: path, type: type, size: size, modificationTime: Int(archive_entry_mtime(entry)),
            userID: archive_entry_uid(entry), groupID: archive_entry_gid(entry),
            userName: archive_entry_uname(entry).map { String(cString: $0) } ?? "",
            groupName: archive_entry_gname(entry).map { String(cString: $0) } ?? "",
            permissions: UInt32(archive_entry_perm(entry)))
    }

    /// Reads up to `buffer.count` bytes of the current entry's data; 0 at its end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = archive_read_data(archive, buffer.baseAddress, buffer.count)
        if count < 0 {
            if count == Int(Status.warn) { return 0 }
            throw BundleError(.corruptArchive, "\(source) is corrupt or truncated inside entry \"\(currentPath ?? "?")\" (\(errorText(archive))); download or pack it again", entry: currentPath)
        }
        return count
    }
}

/// Checks the gzip trailer of a bundle: the CRC-32 and length of the whole uncompressed stream.
///
/// libarchive's gzip reader does not verify its trailer ("XXX TODO: Verify the length and CRC" in
/// `archive_read_support_filter_gzip.c`), and a tar reader stops at the end-of-archive blocks, so a
/// bundle with a damaged trailer or trailing garbage would otherwise verify while its digest changed.
/// Bundles are one gzip member (as `pack` writes them); the stream is decompressed again through
/// libarchive's raw format and compared with the last 8 bytes of the file.
enum GzipTrailer {
    static func check(_ url: URL) throws {
        let name = url.lastPathComponent
        guard let archive = archive_read_new() else {
            throw BundleError(.io, "cannot allocate an archive reader for \(name)")
        }
        defer { archive_read_free(archive) }
        archive_read_support_filter_gzip(archive)
        archive_read_support_format_raw(archive)
        let opened = url.withUnsafeFileSystemRepresentation { archive_read_open_filename(archive, $0, 64 * 1024) }
        var entry: OpaquePointer?
        guard Status.succeeded(opened), Status.succeeded(archive_read_next_header(archive, &entry)) else {
            throw BundleError(.corruptArchive, "\(name) cannot be read as a gzip stream (\(errorText(archive))); download or pack it again")
        }
        var crc = CRC32()
        var length: UInt64 = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
            if count == 0 { break }
            guard count > 0 else {
                throw BundleError(.corruptArchive, "\(name) is corrupt or truncated (\(errorText(archive))); download or pack it again")
            }
            buffer.withUnsafeBytes { crc.update(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            length += UInt64(count)
        }
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: url) } catch {
            throw BundleError(.io, "cannot open \(name) (\(error.localizedDescription))")
        }
        defer { try? handle.close() }
        let trailer: [UInt8]
        do {
            let end = try handle.seekToEnd()
            guard end >= 18 else { throw BundleError(.corruptArchive, "\(name) is too short to be a gzip file") }
            try handle.seek(toOffset: end - 8)
            trailer = [UInt8](try handle.read(upToCount: 8) ?? Data())
        } catch let error as BundleError {
            throw error
        } catch {
            throw BundleError(.io, "cannot read \(name) (\(error.localizedDescription))")
        }
        guard trailer.count == 8 else {
            throw BundleError(.corruptArchive, "\(name) ends before its gzip trailer; download or pack it again")
        }
        func little(_ offset: Int) -> UInt32 {
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(trailer[offset + $1]) << (8 * UInt32($1)) }
        }
        guard little(0) == crc.value, little(4) == UInt32(truncatingIfNeeded: length) else {
            throw BundleError(.corruptArchive, "\(name) fails its gzip integrity check (the trailer's CRC-32 or length does not match the content, or bytes follow the compressed stream); it is corrupt or was tampered with: download or pack it again")
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as gzip uses), table-driven.
struct CRC32 {
    private static let table: [UInt32] = (0..<256).map { index -> UInt32 in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }
    private var state: UInt32 = 0xFFFF_FFFF
    var value: UInt32 { state ^ 0xFFFF_FFFF }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var crc = state
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        state = crc
    }
}

/// Writes a reproducible gzip-compressed pax tar: mtime 0, uid/gid 0, empty owner names, fixed modes,
/// and a gzip header without timestamp or file name.
final class TarWriter {
    private let archive: OpaquePointer
    private let destination: String
    private var closed = false

    init(url: URL) throws {
        destination = url.path
        guard let archive = archive_write_new() else {
            throw BundleError(.io, "cannot allocate an archive writer for \(url.path)")
        }
        func check(_ code: Int32, _ what: String) throws {
            guard Status.succeeded(code) else {
                let reason = errorText(archive)
                archive_write_free(archive)
                throw BundleError(.io, "cannot \(what) for \(url.path) (\(reason))")
            }
        }
        try check(archive_write_set_format_pax_restricted(archive), "select the pax tar format")
        try check(archive_write_add_filter_gzip(archive), "enable gzip compression")
        // No timestamp in the gzip header (value NULL means "!timestamp"); no name is ever stored.
        try check(archive_write_set_filter_option(archive, "gzip", "timestamp", nil), "turn off the gzip timestamp")
        try check(archive_write_set_filter_option(archive, "gzip", "compression-level", "9"), "set the gzip level")
        let code = url.withUnsafeFileSystemRepresentation { path in archive_write_open_filename(archive, path) }
        try check(code, "open the output file")
        self.archive = archive
    }

    deinit {
        if !closed { archive_write_close(archive) }
        archive_write_free(archive)
    }

    private func header(path: String, isDirectory: Bool, size: Int64) throws {
        guard let entry = archive_entry_new() else { throw BundleError(.io, "cannot allocate an archive entry for \(path)") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname_utf8(entry, path)
        archive_entry_set_filetype(entry, isDirectory ? typeDirectory : typeRegular)
        archive_entry_set_perm(entry, isDirectory ? 0o755 : 0o644)
        archive_entry_set_size(entry, isDirectory ? 0 : size)
        archive_entry_set_mtime(entry, 0, 0)
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        let code = archive_write_header(archive, entry)
        guard Status.succeeded(code) else {
            throw BundleError(.io, "cannot write the tar header of \"\(path)\" to \(destination) (\(errorText(archive)))", entry: path)
        }
    }

    fileprivate var archiveHandle: OpaquePointer { archive }

    fileprivate func writeRawHeader(_ entry: OpaquePointer, path: String) throws {
        guard Status.succeeded(archive_write_header(archive, entry)) else {
            throw BundleError(.io, "cannot write the tar header of \"\(path)\" (\(errorText(archive)))", entry: path)
        }
    }

    /// Adds a directory entry.
    func addDirectory(path: String) throws {
        try header(path: path, isDirectory: true, size: 0)
    }

    /// Adds a regular file whose `size` bytes are produced by `produce`, which is called with a sink
    /// until it returns; the byte count must match `size`.
    func addFile(path: String, size: Int64, produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        try header(path: path, isDirectory: false, size: size)
        var written: Int64 = 0
        try produce { chunk in
            guard chunk.count > 0 else { return }
            let count = archive_write_data(archive, chunk.baseAddress, chunk.count)
            guard count == chunk.count else {
                throw BundleError(.io, "cannot write the data of \"\(path)\" to \(destination) (\(errorText(archive)))", entry: path)
            }
            written += Int64(count)
        }
        guard written == size else {
            throw BundleError(.io, "\"\(path)\" changed while being packed (expected \(size) bytes, read \(written)); pack again", entry: path)
        }
    }

    /// Writes the end of the archive and closes the file.
    func finish() throws {
        closed = true
        let code = archive_write_close(archive)
        guard Status.succeeded(code) else {
            throw BundleError(.io, "cannot finish writing \(destination) (\(errorText(archive)))")
        }
    }
}

/// An arbitrary entry, for tests that build hostile archives (links, devices, bad paths...).
struct RawTarEntry {
    enum Kind {
        case file(Data)
        case directory
        case symbolicLink(target: String)
        case hardLink(target: String)
        case characterDevice
        case fifo
    }
    var path: String
    var kind: Kind
}

extension TarWriter {
    /// Writes any entry as given, with no checks (tests only: the packer never calls this).
    func addRaw(_ raw: RawTarEntry) throws {
        guard let entry = archive_entry_new() else { throw BundleError(.io, "cannot allocate an archive entry") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname_utf8(entry, raw.path)
        archive_entry_set_perm(entry, 0o644)
        archive_entry_set_mtime(entry, 0, 0)
        var data = Data()
        switch raw.kind {
        case .file(let bytes):
            archive_entry_set_filetype(entry, typeRegular)
            archive_entry_set_size(entry, Int64(bytes.count))
            data = bytes
        case .directory:
            archive_entry_set_filetype(entry, typeDirectory)
        case .symbolicLink(let target):
            archive_entry_set_filetype(entry, typeSymlink)
            archive_entry_set_symlink(entry, target)
        case .hardLink(let target):
            archive_entry_set_filetype(entry, typeRegular)
            archive_entry_set_hardlink(entry, target)
            archive_entry_set_size(entry, 0)
        case .characterDevice:
            archive_entry_set_filetype(entry, typeCharacter)
            archive_entry_set_rdev(entry, 0x0103)
        case .fifo:
            archive_entry_set_filetype(entry, typeFIFO)
        }
        try writeRawHeader(entry, path: raw.path)
        if !data.isEmpty {
            try data.withUnsafeBytes { bytes in
                guard archive_write_data(archiveHandle, bytes.baseAddress, bytes.count) == bytes.count else {
                    throw BundleError(.io, "cannot write raw data for \(raw.path)")
                }
            }
        }
    }
}
