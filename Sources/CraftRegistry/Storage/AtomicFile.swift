import CraftBundles
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files so that readers see either the old content or the new one, never a partial file.
///
/// The data goes to a uniquely named temporary file in the same directory (``RegistryScratch``), is flushed with `fsync`,
/// and is then renamed over the destination (`rename(2)` is atomic within one file system).
enum AtomicFile {
    /// Atomically replaces (or creates) `url` with `data`, creating parent directories as needed.
    static func write(_ data: Data, to url: URL, permissions: mode_t = 0o644) throws {
        let directory = url.deletingLastPathComponent()
        try createDirectory(directory)
        // `.NAME.tmp-PID-UUID`: removed on SIGINT/SIGTERM/SIGHUP, swept by the next writer after a kill.
        let temporary = RegistryScratch.temporary(for: url)
        let tracked = ScratchFiles.track(temporary)
        defer { ScratchFiles.untrack(tracked) }
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        guard descriptor >= 0 else {
            throw RegistryError(
                .io, "cannot create \(temporary.path) (\(String(cString: strerror(errno)))); check that \(directory.path) is writable")
        }
        var succeeded = false
        defer {
            if !succeeded { unlink(temporary.path) }
        }
        do {
            defer { close(descriptor) }
            // The umask may have narrowed the mode given to open(2); set it exactly.
            fchmod(descriptor, permissions)
            try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc_write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw RegistryError(
                            .io, "cannot write \(temporary.path) (\(String(cString: strerror(errno)))); check free disk space")
                    }
                    offset += written
                }
            }
            guard fsync(descriptor) == 0 else {
                throw RegistryError(.io, "cannot flush \(temporary.path) (\(String(cString: strerror(errno))))")
            }
        }
        guard rename(temporary.path, url.path) == 0 else {
            throw RegistryError(
                .io, "cannot move \(temporary.lastPathComponent) into place as \(url.path) (\(String(cString: strerror(errno))))")
        }
        succeeded = true
    }

    /// Moves `source` to `destination` with `rename(2)`: atomic, and cheap for large files, but both
    /// must be on one file system (the registry's staging directory is inside the registry for that).
    static func move(_ source: URL, to destination: URL) throws {
        try createDirectory(destination.deletingLastPathComponent())
        guard rename(source.path, destination.path) == 0 else {
            throw RegistryError(
                .io, "cannot move \(source.lastPathComponent) into place as \(destination.path) (\(String(cString: strerror(errno))))")
        }
    }

    static func createDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw RegistryError(
                .io, "cannot create the directory \(url.path) (\(error.localizedDescription)); check permissions", cause: error)
        }
    }
}

/// `write(2)` under a name that does not clash with `FileHandle.write`.
private func Glibc_write(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}
