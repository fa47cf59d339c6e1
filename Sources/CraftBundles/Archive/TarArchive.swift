// The only file that touches libarchive (and zlib): reproducible gzip pax tar writing, and one-pass
// streaming reading.
// C types and return codes stay here; ARCHIVE_FATAL/FAILED become BundleError, ARCHIVE_WARN is success.
import CArchive
import Crypto
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

/// The one read of a bundle file: a single open file descriptor, read once from start to end, every
/// byte hashed (SHA-256, the bundle digest) as it is read and inflated as **exactly one gzip member**.
///
/// This is the compressed side of every reader (``TarReader`` pulls its tar bytes from here), so
///
/// - every decompressed byte of the member, including any after the tar's end-of-archive blocks and
///   any inside entries libarchive skips, counts against ``BundleLimits/maxCompressionRatio`` (after
///   ``BundleLimits/compressionRatioGrace``) and ``BundleLimits/maxUncompressedSize``, checked after
///   every inflated chunk: a bomb trips within the limits instead of after decompressing everything;
/// - zlib checks the gzip header and trailer (CRC-32 and length), and the member must end the file:
///   a second member (even an empty one before the bundle) or appended bytes are refused;
/// - the digest is of exactly the bytes that were decompressed, so `expectedDigest` checks cannot be
///   raced by renaming another file over the path (check-then-use).
final class BundleStream {
    /// The user's file name, for messages.
    let name: String
    let limits: BundleLimits
    /// The file's size when it was opened.
    let fileSize: Int64
    /// The entry being read, for messages (set by ``TarReader``).
    var currentEntry: String?
    /// An error raised inside a libarchive read callback, rethrown by ``TarReader``.
    var failure: BundleError?

    private let descriptor: Int32
    private var hasher = SHA256()
    private(set) var compressedBytes: Int64 = 0
    private(set) var uncompressedBytes: Int64 = 0
    /// Offset of the last non-zero uncompressed byte (-1: none yet).
    private(set) var lastNonZero: Int64 = -1
    /// Whether the gzip member ended (trailer checked, nothing after it).
    private(set) var memberEnded = false
    private var inputEnded = false
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawBufferPointer
    private let output: UnsafeMutableRawBufferPointer

    /// Bytes read from the file, and inflated bytes handed on, per step (limits are checked per step).
    static let bufferSize = 64 * 1024

    init(url: URL, limits: BundleLimits) throws {
        name = url.lastPathComponent
        self.limits = limits
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below, after fstat).
        let descriptor = url.withUnsafeFileSystemRepresentation { path in
            path.map { open($0, O_RDONLY | O_CLOEXEC | O_NONBLOCK) } ?? -1
        }
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR {
                throw BundleError(.notFound, "there is no bundle file at \(url.path); check the path")
            }
            throw BundleError(.io, "cannot open \(url.path) for reading (\(String(cString: strerror(code)))); check its permissions")
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw BundleError(.io, "cannot read \(url.path) (\(reason))")
        }
        let type = status.st_mode & S_IFMT
        guard type == S_IFREG else {
            close(descriptor)
            if type == S_IFDIR { throw BundleError(.notFound, "there is no bundle file at \(url.path) (it is a directory); check the path") }
            throw BundleError(.corruptArchive, "\(url.path) is not a regular file (a device, FIFO or socket), so it is not a .craft bundle")
        }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
        fileSize = Int64(status.st_size)
        guard fileSize <= limits.maxTotalSize else {
            close(descriptor)
            throw BundleError(.limitExceeded, "\(name) is \(fileSize) bytes, more than the limit of \(limits.maxTotalSize); raise BundleLimits.maxTotalSize if you trust it")
        }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // windowBits 15 + 16: a gzip wrapper only (no zlib, no raw deflate); zlib checks the trailer.
        guard inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            stream.deallocate()
            close(descriptor)
            throw BundleError(.io, "cannot start decompressing \(name) (zlib could not be initialised)")
        }
        self.descriptor = descriptor
        self.stream = stream
        input = .allocate(byteCount: Self.bufferSize, alignment: 16)
        output = .allocate(byteCount: Self.bufferSize, alignment: 16)
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        input.deallocate()
        output.deallocate()
        close(descriptor)
    }

    /// `"sha256:" + hex` of every byte read so far (the whole file once ``memberEnded``).
    var digest: String { "sha256:" + FileDigest.hex(hasher.finalize()) }

    private func fail(_ code: BundleError.Code, _ message: String) -> BundleError {
        BundleError(code, message, entry: currentEntry)
    }

    /// Reads the next block of the file into `input`; sets `inputEnded` at the end of the file.
    private func fill() throws {
        var count: Int
        repeat {
            count = read(descriptor, input.baseAddress, input.count)
        } while count < 0 && errno == EINTR
        guard count >= 0 else {
            throw fail(.io, "cannot read \(name) (\(String(cString: strerror(errno))))")
        }
        if count == 0 {
            inputEnded = true
        } else {
            let chunk = UnsafeRawBufferPointer(rebasing: input[0..<count])
            if compressedBytes == 0 {
                guard count >= 2, chunk[0] == 0x1F, chunk[1] == 0x8B else {
                    throw fail(.corruptArchive, "\(name) is not gzip-compressed, so it is not a .craft bundle; bundles are made by `craft-registry pack`")
                }
            }
            hasher.update(bufferPointer: chunk)
            compressedBytes += Int64(count)
        }
        stream.pointee.next_in = input.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = uInt(count)
    }

    /// The next inflated chunk (valid until the next call), or an empty one once the member ended.
    func next() throws -> UnsafeRawBufferPointer {
        if memberEnded { return UnsafeRawBufferPointer(start: nil, count: 0) }
        while true {
            if stream.pointee.avail_in == 0, !inputEnded { try fill() }
            if inputEnded, compressedBytes == 0 {
                throw fail(.corruptArchive, "\(name) is empty, so it is not a .craft bundle; bundles are made by `craft-registry pack`")
            }
            stream.pointee.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(output.count)
            let code = inflate(stream, Z_NO_FLUSH)
            let produced = output.count - Int(stream.pointee.avail_out)
            switch code {
            case Z_STREAM_END:
                memberEnded = true
                try checkNothingFollows()
            case Z_OK:
                break
            case Z_BUF_ERROR:
                if inputEnded, stream.pointee.avail_in == 0 {
                    throw fail(.corruptArchive, "\(name) is truncated (its gzip stream ends early\(currentEntry.map { ", inside entry \"\($0)\"" } ?? "")); download or pack it again")
                }
            default:
                let reason = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(code)"
                throw fail(.corruptArchive, "\(name) fails its gzip integrity check (\(reason)\(currentEntry.map { ", at entry \"\($0)\"" } ?? "")); it is corrupt or was tampered with: download or pack it again")
            }
            if produced > 0 || memberEnded {
                let chunk = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(output)[0..<produced])
                try account(chunk)
                return chunk
            }
        }
    }

    /// The member ended: the file must end with it (no second member, no appended bytes).
    private func checkNothingFollows() throws {
        var extra = Int(stream.pointee.avail_in) > 0
        if !extra, !inputEnded {
            try fill()
            extra = !inputEnded
        }
        if extra {
            throw fail(.corruptArchive, "\(name) has bytes after its gzip member (a second gzip member or appended data); a bundle is exactly one gzip member, as `craft-registry pack` writes it: download or pack it again")
        }
    }

    /// Counts a decompressed chunk against the limits and remembers its last non-zero byte.
    private func account(_ chunk: UnsafeRawBufferPointer) throws {
        let start = uncompressedBytes
        uncompressedBytes += Int64(chunk.count)
        var index = chunk.count - 1
        while index >= 0, chunk[index] == 0 { index -= 1 }
        if index >= 0 { lastNonZero = start + Int64(index) }
        let at = currentEntry.map { " (at entry \"\($0)\")" } ?? ""
        if uncompressedBytes > limits.compressionRatioGrace,
           Double(uncompressedBytes) > limits.maxCompressionRatio * Double(max(compressedBytes, 1)) {
            throw fail(.limitExceeded, "\(name) expands more than \(Int(limits.maxCompressionRatio))×\(at): \(uncompressedBytes) bytes from \(compressedBytes); it looks like a decompression bomb; raise BundleLimits.maxCompressionRatio only if you trust it")
        }
        if uncompressedBytes > limits.maxUncompressedSize {
            throw fail(.limitExceeded, "\(name) decompresses to more than \(limits.maxUncompressedSize) bytes\(at); raise BundleLimits.maxTotalSize if you trust it")
        }
    }

    /// After the tar reader met the end-of-archive blocks ending at `tarEnd`: inflates the rest of the
    /// member (bounded) and checks the trailing-bytes rule: only zero bytes may follow, up to the next
    /// multiple of ``TarLayout/recordSize``.
    func finish(tarEnd: Int64) throws {
        let record = TarLayout.recordSize
        let allowed = (tarEnd + record - 1) / record * record
        currentEntry = nil
        while !memberEnded {
            _ = try next()
            if uncompressedBytes > allowed { break }
        }
        guard uncompressedBytes <= allowed, lastNonZero < tarEnd else {
            throw fail(.corruptArchive, "\(name) holds data after the end of its tar archive (\(uncompressedBytes - tarEnd) bytes\(lastNonZero >= tarEnd ? ", not all zero" : "") after offset \(tarEnd)); only zero padding up to the \(record)-byte tar record is allowed: the bundle is corrupt or was tampered with")
        }
    }
}

/// Layout constants of the tar stream inside a bundle.
enum TarLayout {
    /// The tar record size (20 blocks of 512 bytes): zero padding after the end-of-archive blocks up
    /// to the next multiple of it is accepted; anything else after them is refused.
    static let recordSize: Int64 = 10_240
    /// Room per entry for its header, a pax extended header and data padding, in
    /// ``BundleLimits/maxUncompressedSize``.
    static let entryOverhead: Int64 = 4_096
}

/// Streams entries out of a bundle: libarchive's tar reader (tar formats only, no filters) over the
/// bytes ``BundleStream`` inflates from the one open file.
final class TarReader {
    private let archive: OpaquePointer
    let stream: BundleStream
    private var source: String { stream.name }
    /// The entry whose data is being read, for messages.
    private(set) var currentPath: String? {
        didSet { stream.currentEntry = currentPath }
    }

    /// Opens `url` for one pass (see ``BundleStream``).
    convenience init(url: URL, limits: BundleLimits = .default) throws {
        try self.init(stream: BundleStream(url: url, limits: limits))
    }

    init(stream: BundleStream) throws {
        self.stream = stream
        guard let archive = archive_read_new() else {
            throw BundleError(.io, "cannot allocate an archive reader for \(stream.name)")
        }
        archive_read_support_format_tar(archive)
        let context = Unmanaged.passUnretained(stream).toOpaque()
        let code = archive_read_open(archive, context, nil, { _, context, buffer in
            guard let context, let buffer else { return -1 }
            let stream = Unmanaged<BundleStream>.fromOpaque(context).takeUnretainedValue()
            do {
                let chunk = try stream.next()
                buffer.pointee = chunk.baseAddress.map { UnsafeRawPointer($0) }
                return chunk.count
            } catch let error as BundleError {
                stream.failure = error
                return -1
            } catch {
                stream.failure = BundleError(.io, "cannot read \(stream.name) (\(error))")
                return -1
            }
        }, nil)
        guard Status.succeeded(code) else {
            let reason = errorText(archive)
            archive_read_free(archive)
            if let failure = stream.failure { throw failure }
            throw BundleError(.corruptArchive, "\(stream.name) cannot be read as a gzip-compressed tar archive (\(reason)); it is corrupt, truncated or not a bundle: download or pack it again", entry: nil)
        }
        // Assigned last: a throwing initializer never leaves a half-made reader for deinit to free.
        self.archive = archive
    }

    deinit {
        archive_read_free(archive)
    }

    /// The error to throw for a failed libarchive call: the one raised while reading the file, if any.
    private func failure(_ fallback: @autoclosure () -> BundleError) -> BundleError {
        stream.failure ?? fallback()
    }

    /// The next header, or `nil` at the end of the archive.
    func nextEntry() throws -> TarEntryHeader? {
        var entryPointer: OpaquePointer?
        let code = archive_read_next_header(archive, &entryPointer)
        if code == Status.eof {
            if let failure = stream.failure { throw failure }
            return nil
        }
        guard Status.succeeded(code), let entry = entryPointer else {
            throw failure(BundleError(.corruptArchive, "\(source) is corrupt or truncated after \(currentPath.map { "entry \"\($0)\"" } ?? "the start") (\(errorText(archive))); download or pack it again", entry: currentPath))
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
            if count == Int(Status.warn), stream.failure == nil { return 0 }
            throw failure(BundleError(.corruptArchive, "\(source) is corrupt or truncated inside entry \"\(currentPath ?? "?")\" (\(errorText(archive))); download or pack it again", entry: currentPath))
        }
        if count == 0, let failure = stream.failure { throw failure }
        return count
    }

    /// After ``nextEntry()`` returned `nil`: reads the rest of the gzip member and applies the
    /// trailing-bytes rule (``BundleStream/finish(tarEnd:)``); the file has then been read whole.
    func finish() throws {
        currentPath = nil
        try stream.finish(tarEnd: archive_filter_bytes(archive, 0))
    }
}

/// Writes a reproducible gzip-compressed pax tar: mtime 0, uid/gid 0, empty owner names, fixed modes,
/// and a gzip header without timestamp or file name.
final class TarWriter {
    private let archive: OpaquePointer
    private let destination: String
    private var closed = false

    /// Writes to `url`; messages name `shownAs` (the user's output file when `url` is a scratch file).
    init(url: URL, shownAs: String? = nil) throws {
        destination = shownAs ?? url.path
        guard let archive = archive_write_new() else {
            throw BundleError(.io, "cannot allocate an archive writer for \(shownAs ?? url.path)")
        }
        func check(_ code: Int32, _ what: String) throws {
            guard Status.succeeded(code) else {
                let reason = errorText(archive)
                archive_write_free(archive)
                throw BundleError(.io, "cannot \(what) for \(shownAs ?? url.path) (\(reason))")
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

/// Raw gzip members, for tests that build hostile streams (bytes after the tar end, several members,
/// data on directory entries); readers and the packer never call this.
enum GzipCodec {
    /// A piece of a member's content: bytes, or a run of zero bytes generated while compressing.
    enum Part {
        case bytes(Data)
        case zeros(Int64)
    }

    /// One gzip member (level 9, no name, no timestamp) holding `parts` in order.
    static func member(_ parts: [Part]) throws -> Data {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { deflateEnd(stream); stream.deinitialize(count: 1); stream.deallocate() }
        guard deflateInit2_(stream, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw BundleError(.io, "cannot start a gzip member")
        }
        var result = Data()
        var output = [UInt8](repeating: 0, count: 1 << 16)
        func run(_ input: UnsafeRawBufferPointer, flush: Int32) throws {
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(input.count)
            repeat {
                let code = output.withUnsafeMutableBytes { buffer -> Int32 in
                    stream.pointee.next_out = buffer.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_out = uInt(buffer.count)
                    return deflate(stream, flush)
                }
                guard code != Z_STREAM_ERROR else { throw BundleError(.io, "cannot compress a gzip member") }
                result.append(contentsOf: output[0..<(output.count - Int(stream.pointee.avail_out))])
            } while stream.pointee.avail_out == 0
        }
        let zeros = Data(count: 1 << 20)
        for part in parts {
            switch part {
            case .bytes(let data):
                try data.withUnsafeBytes { try run($0, flush: Z_NO_FLUSH) }
            case .zeros(var count):
                while count > 0 {
                    let chunk = Int(min(count, Int64(zeros.count)))
                    try zeros.withUnsafeBytes { try run(UnsafeRawBufferPointer(rebasing: $0[0..<chunk]), flush: Z_NO_FLUSH) }
                    count -= Int64(chunk)
                }
            }
        }
        try run(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FINISH)
        return result
    }

    /// The content of the first gzip member of `data` (no limits: tests only).
    static func content(of data: Data) throws -> Data {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { inflateEnd(stream); stream.deinitialize(count: 1); stream.deallocate() }
        guard inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw BundleError(.io, "cannot start inflating")
        }
        var result = Data()
        var output = [UInt8](repeating: 0, count: 1 << 16)
        var code: Int32 = Z_OK
        try data.withUnsafeBytes { input in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(input.count)
            while code == Z_OK {
                code = output.withUnsafeMutableBytes { buffer -> Int32 in
                    stream.pointee.next_out = buffer.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_out = uInt(buffer.count)
                    return inflate(stream, Z_NO_FLUSH)
                }
                result.append(contentsOf: output[0..<(output.count - Int(stream.pointee.avail_out))])
            }
            guard code == Z_STREAM_END else { throw BundleError(.corruptArchive, "not a complete gzip member") }
        }
        return result
    }
}
