// The one way Craft reads a whole file into memory: a regular file, refused before reading when it
// is over a size limit, read with the POSIX calls on one descriptor (so the file checked is the file
// read), with no leak on any path.
//
// Why not `Data(contentsOf:)`: on Linux it allocates 4 KiB for an empty file and never frees it (its
// "files that report size 0" path hands the buffer to `Data()`, which drops it), so a long-running
// process that reads hostile or empty files grows without bound; it also reads a FIFO or a device,
// and takes any size. Found by fuzzing the registry index reader (docs/fuzzing.md).
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a bounded read failed; each module turns it into its own typed error with the file's role.
package enum BoundedReadFailure: Error, LocalizedError, Equatable, Sendable {
    /// Nothing is at the path.
    case notFound
    /// Something is there, but not a regular file (a directory, a FIFO, a device).
    case notRegularFile
    /// The file holds more bytes than the limit (`size` is what was seen: the size reported, or
    /// `limit + 1` when the file grew while it was read).
    case tooLarge(size: Int, limit: Int)
    /// The system refused to open or read it (permissions, I/O error); the text is the system's.
    case unreadable(String)

    /// "is N bytes, over the M-byte limit" or the system's reason, to end a sentence about the file.
    package var reason: String {
        switch self {
        case .notFound: "does not exist"
        case .notRegularFile: "is not a regular file"
        case .tooLarge(let size, let limit): "is \(size) bytes, over the \(limit)-byte limit"
        case .unreadable(let reason): "cannot be read: \(reason)"
        }
    }

    /// The same as ``reason``, so `error.localizedDescription` ends a sentence about the file.
    package var errorDescription: String? { reason }
}

/// Reads whole files with a size limit; see the file's header for why this replaces `Data(contentsOf:)`.
package enum BoundedFile {
    /// The cap for small JSON documents Craft writes itself (keys, signatures, run records, checkpoint
    /// state, preprocessing, code frequencies): 16 MiB, thousands of times their real size.
    package static let smallDocumentLimit = 16 << 20
    /// The cap for files that grow with use (registry indexes, datasets, training logs): 1 GiB.
    package static let largeDocumentLimit = 1 << 30

    /// The bytes of the regular file at `url`. A file over `limit` bytes is refused from its reported
    /// size before anything is read, and at most `limit + 1` bytes are ever read (so a file that grows
    /// meanwhile is refused too). Symbolic links are followed, as every reader of a named file does.
    package static func read(_ url: URL, limit: Int) throws(BoundedReadFailure) -> Data {
        precondition(limit >= 0, "a read limit is a byte count")
        // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat below refuses it anyway.
        let descriptor = open(url.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            throw code == ENOENT || code == ENOTDIR ? .notFound : .unreadable(String(cString: strerror(code)))
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .unreadable(String(cString: strerror(errno))) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw .notRegularFile }
        let reported = Int(clamping: Int64(status.st_size))
        guard reported <= limit else { throw .tooLarge(size: reported, limit: limit) }

        // Reported size plus one byte, so the end of file is seen without a second allocation in the
        // common case; files that report 0 but have contents (some of /proc) grow the buffer.
        var data = Data(count: reported + 1)
        var count = 0
        while true {
            if count == data.count {
                guard count <= limit else { throw .tooLarge(size: count, limit: limit) }
                data.count += min(max(count, 4096), limit + 1 - count)
            }
            let got = data.withUnsafeMutableBytes { buffer in
                systemRead(descriptor, buffer.baseAddress! + count, buffer.count - count)
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw .unreadable(String(cString: strerror(errno)))
            }
            if got == 0 { break }
            count += got
        }
        guard count <= limit else { throw .tooLarge(size: count, limit: limit) }
        data.count = count
        return data
    }
}

/// `read(2)`, named apart from the static method above.
@inline(__always)
private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Darwin)
    Darwin.read(descriptor, buffer, count)
    #elseif canImport(Musl)
    Musl.read(descriptor, buffer, count)
    #else
    Glibc.read(descriptor, buffer, count)
    #endif
}
