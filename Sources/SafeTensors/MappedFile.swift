// A read-only memory mapping of a whole file, unmapped when the last reference goes away.
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of one file, mapped read-only and private.
///
/// Immutable after creation, so it is safe to share across threads. Mapping means opening a file
/// touches only the pages actually read (the header), not its tensor data. A file truncated by
/// another process *while mapped* can still fault on access; that is outside what a reader can
/// guard against.
package final class MappedFile: @unchecked Sendable {
    package let path: String
    package let count: Int
    private let base: UnsafeRawPointer?

    package init(path: String) throws(SafeTensorsError) {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            let code: SafeTensorsError.Code = errno == ENOENT ? .notFound : .io
            throw SafeTensorsError(
                code, file: path,
                message: "Cannot open safetensors file \(path): \(reason); check the path and its permissions.")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            throw SafeTensorsError(.io, file: path, message: "Cannot read the size of \(path): \(reason).")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw SafeTensorsError(
                .io, file: path, message: "\(path) is not a regular file; pass the path of a .safetensors file.")
        }
        guard let size = Int(exactly: status.st_size), size >= 0 else {
            throw SafeTensorsError(.io, file: path, message: "\(path) reports an invalid size.")
        }
        count = size
        if size == 0 {
            base = nil
            return
        }
        let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let mapping, mapping != MAP_FAILED else {
            let reason = String(cString: strerror(errno))
            throw SafeTensorsError(.io, file: path, message: "Cannot memory-map \(path): \(reason).")
        }
        base = UnsafeRawPointer(mapping)
    }

    deinit {
        if let base {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        }
    }

    /// Calls `body` with the bytes in `range`, which the caller has checked lies within the file.
    package func withBytes<Result>(
        in range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> Result
    ) rethrows -> Result {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range checked by the caller")
        guard let base, !range.isEmpty else {
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return try body(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
    }
}
