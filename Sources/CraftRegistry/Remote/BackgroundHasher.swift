// SHA-256 of a file being downloaded, on a thread of its own: the download thread only receives and
// writes (what `curl -o` does), and this thread reads the new bytes back from the page cache and
// hashes them behind it. Verifying a bundle as it streams then costs the transfer almost nothing
// on a machine with a second core (docs/benchmarks.md, "Remote registries: pull against curl").
import Crypto
import Foundation

/// The SHA-256 of a file's first bytes as they are written, computed on another thread.
final class BackgroundHasher {
    /// What the writing thread and the hashing thread share (the hashing thread keeps it alive until it ends).
    private final class Shared: @unchecked Sendable {
        let condition = NSCondition()
        let descriptor: Int32
        var hasher: SHA256
        /// Bytes written to the file so far, and bytes hashed.
        var written: Int64
        var hashed: Int64
        var failure: String?
        var finished = false
        /// Someone waits for the hash to catch up: hash whatever is there, however little.
        var draining = 0
        /// The hashing thread sleeps until this many bytes are waiting (fewer wake-ups).
        static let batch: Int64 = 1 << 20
        var sleeping = false

        var hasWork: Bool { written - hashed >= Self.batch || (written > hashed && (draining > 0 || finished)) }

        init(descriptor: Int32, hasher: SHA256, offset: Int64) {
            self.descriptor = descriptor
            self.hasher = hasher
            written = offset
            hashed = offset
        }

        deinit { close(descriptor) }

        func work() {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
            defer { buffer.deallocate() }
            condition.lock()
            while true {
                while !hasWork && !finished {
                    sleeping = true
                    condition.wait()
                    sleeping = false
                }
                if !hasWork {  // finished
                    condition.unlock()
                    return
                }
                let (start, end) = (hashed, written)
                var state = hasher
                condition.unlock()
                var position = start
                var problem: String?
                while position < end {
                    let count = pread(descriptor, buffer.baseAddress, Int(min(Int64(buffer.count), end - position)), off_t(position))
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else {
                        problem = count < 0 ? String(cString: strerror(errno)) : "it is shorter than what was written to it"
                        break
                    }
                    state.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                    position += Int64(count)
                }
                condition.lock()
                hasher = state
                hashed = position
                if let problem {
                    failure = problem
                    hashed = written  // nothing more can be hashed; finalize reports it
                }
                condition.broadcast()
            }
        }
    }

    private let shared: Shared
    private let file: URL

    /// Hashes `file` from `offset` on, continuing `initial` (the hash of its first `offset` bytes).
    init(following file: URL, from offset: Int64, continuing initial: SHA256) throws {
        let descriptor = open(file.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw RegistryError(.io, "cannot read \(file.path) back to hash it (\(String(cString: strerror(errno)))); check the cache directory (CRAFT_CACHE)")
        }
        self.file = file
        shared = Shared(descriptor: descriptor, hasher: initial, offset: offset)
        let thread = Thread { [shared] in shared.work() }
        thread.name = "craft-sha256"
        thread.start()
    }

    deinit {
        shared.condition.lock()
        shared.finished = true
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    /// Says that the file's bytes up to `count` are written.
    func written(_ count: Int64) {
        shared.condition.lock()
        shared.written = count
        if shared.sleeping && shared.hasWork { shared.condition.broadcast() }
        shared.condition.unlock()
    }

    /// Waits until every written byte is hashed.
    private func catchUp() {
        shared.draining += 1
        shared.condition.broadcast()
        while shared.hashed != shared.written { shared.condition.wait() }
        shared.draining -= 1
    }

    /// Forgets every byte: the file is about to start over from empty. Call before truncating it.
    func restart() {
        shared.condition.lock()
        catchUp()
        shared.hasher = SHA256()
        (shared.written, shared.hashed, shared.failure) = (0, 0, nil)
        shared.condition.unlock()
    }

    /// The digest of the file's written bytes, once the hashing thread has caught up.
    func finalize() throws -> SHA256.Digest {
        shared.condition.lock()
        defer { shared.condition.unlock() }
        catchUp()
        if let failure = shared.failure {
            throw RegistryError(.io, "cannot read \(file.path) back to hash it (\(failure)); check the cache directory (CRAFT_CACHE)")
        }
        return shared.hasher.finalize()
    }
}
