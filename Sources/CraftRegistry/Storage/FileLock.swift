import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive advisory lock on a file, held with `flock(2)` for the duration of a closure.
///
/// `flock` locks belong to an open file description, so two opens of the same lock file conflict
/// whether they come from two processes or two threads of one process: concurrent publishers are
/// serialised either way. The lock file itself is never deleted (deleting it would let a second
/// writer lock a fresh inode while the first still holds the old one).
enum FileLock {
    /// Runs `body` while holding an exclusive lock on `url`, creating the lock file when missing.
    static func withExclusiveLock<T>(at url: URL, _ body: () throws -> T) throws -> T {
        let descriptor = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw RegistryError(
                .io, "cannot open the registry lock file \(url.path) (\(String(cString: strerror(errno)))); check that the registry directory is writable")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            throw RegistryError(
                .io, "cannot lock \(url.path) (\(String(cString: strerror(errno)))); check that the file system supports flock")
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    /// Runs `body` while holding a shared lock on `url`, when the lock file exists and can be opened
    /// for reading; otherwise (a registry no writer ever locked, or a read-only copy) without a lock.
    ///
    /// Readers take no lock in the normal case; they use this only to tell a writer's intermediate
    /// state (a new bundle whose shard is not written yet) from real damage. Never call it while
    /// holding the exclusive lock: the two open file descriptions would wait for each other.
    static func withSharedLock<T>(at url: URL, _ body: () throws -> T) throws -> T {
        let descriptor = open(url.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return try body() }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_SH) != 0 {
            if errno == EINTR { continue }
            return try body()
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }
}
