// One running plugin: its process, the pipes to it, deadlines on every read and write, the tail of
// its stderr, and a stop that always reaps it (docs/runtime-protocol.md, "Trust boundaries").
import CSpawn
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The C library's `write` and `read` (the class's own methods share their names).
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int { write(descriptor, bytes, count) }
private func systemRead(_ descriptor: Int32, _ bytes: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(descriptor, bytes, count) }

/// A started plugin executable speaking over its stdin and stdout.
///
/// Every read and write has a deadline; a plugin that misses one, exits, or writes something that is
/// not the protocol is stopped (SIGTERM, then SIGKILL after a short grace) and reaped, and the error
/// carries the tail of what it wrote to stderr. Thread-safe: one call at a time (a lock), so a model
/// used from several tasks sends its requests in turn.
final class PluginProcess: @unchecked Sendable {
    let executable: URL
    private let pid: pid_t
    private let inputDescriptor: Int32
    private let outputDescriptor: Int32
    private var inputOpen = true
    private let errorTail: StderrTail
    private var buffer: [UInt8] = []
    private var exitStatus: Int32?
    private var stopped = false
    let lock = NSLock()

    /// Starts `executable` in `directory` (its working directory), spawned and reaped by Craft itself
    /// (posix_spawn, waitpid) so no exit goes unnoticed and no process is left behind.
    init(executable: URL, directory: URL?) throws(PluginError) {
        Self.ignoreBrokenPipes
        self.executable = executable
        var child: Int32 = 0, input: Int32 = -1, output: Int32 = -1, error: Int32 = -1
        var status = craft_spawn(executable.path, directory?.path, &child, &input, &output, &error)
        // ETXTBSY: the file was just written, and a process forked meanwhile by another thread still
        // holds it open for writing until it execs. That passes within milliseconds; wait up to 2 s.
        for _ in 0..<40 where status == ETXTBSY {
            usleep(50_000)
            status = craft_spawn(executable.path, directory?.path, &child, &input, &output, &error)
        }
        guard status == 0 else {
            throw PluginError(.notStarted, "cannot start the runtime plugin \(executable.path): \(String(cString: strerror(status))); check that it is an executable file")
        }
        pid = child
        inputDescriptor = input
        outputDescriptor = output
        errorTail = StderrTail(descriptor: error)
        _ = fcntl(inputDescriptor, F_SETFL, fcntl(inputDescriptor, F_GETFL) | O_NONBLOCK)
        _ = fcntl(outputDescriptor, F_SETFL, fcntl(outputDescriptor, F_GETFL) | O_NONBLOCK)
    }

    deinit { stop() }

    /// Writing to a plugin that has exited must be an error, not a signal that ends Craft.
    private static let ignoreBrokenPipes: Void = { signal(SIGPIPE, SIG_IGN) }()

    /// The last bytes the plugin wrote to stderr, as text (for error messages).
    var stderrTail: String { errorTail.text }

    /// Whether ``stop(grace:)`` has run (its descriptors are closed).
    var isStopped: Bool { stopped }

    /// The process id (tests check no process is left behind).
    var processIdentifier: Int32 { pid }

    /// Whether the process still runs; reaps it (and records its status) once it has exited.
    private var isRunning: Bool {
        guard exitStatus == nil else { return false }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid || (result < 0 && errno == ECHILD) {
            exitStatus = result == pid ? status : 0
            return false
        }
        return true
    }

    // MARK: Reading and writing with deadlines

    /// Writes all of `bytes` before `deadline`.
    func write(_ bytes: [UInt8], deadline: Date, while doing: String) throws(PluginError) {
        // Once stopped, the descriptor numbers may belong to someone else: never touch them again.
        guard !stopped, inputOpen else {
            throw PluginError(.crashed, "the runtime plugin \(executable.lastPathComponent) was already stopped when Craft was \(doing)")
        }
        var offset = 0
        while offset < bytes.count {
            try wait(for: inputDescriptor, events: Int16(POLLOUT), deadline: deadline, doing: doing)
            let written = bytes[offset...].withUnsafeBytes { systemWrite(inputDescriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                let ended = exitDescription
                throw failure(.crashed, ended.isEmpty
                    ? "the runtime plugin \(executable.lastPathComponent) stopped reading while \(doing)"
                    : "the runtime plugin \(executable.lastPathComponent) exited while \(doing)\(ended)")
            }
            offset += written
        }
    }

    /// Reads one line (without its newline), at most `limit` bytes, before `deadline`.
    func readLine(limit: Int, deadline: Date, while doing: String) throws(PluginError) -> [UInt8] {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return line
            }
            guard buffer.count <= limit else {
                throw failure(.protocolViolation, "the runtime plugin \(executable.lastPathComponent) wrote a line over \(limit) bytes while \(doing); it does not speak craft.runtime/v1")
            }
            try fill(deadline: deadline, doing: doing)
        }
    }

    /// Reads exactly `count` bytes before `deadline`.
    func readBytes(_ count: Int, deadline: Date, while doing: String) throws(PluginError) -> [UInt8] {
        while buffer.count < count { try fill(deadline: deadline, doing: doing) }
        let bytes = Array(buffer[..<count])
        buffer.removeSubrange(..<count)
        return bytes
    }

    private func fill(deadline: Date, doing: String) throws(PluginError) {
        guard !stopped else {
            throw PluginError(.crashed, "the runtime plugin \(executable.lastPathComponent) was already stopped when Craft was \(doing)")
        }
        try wait(for: outputDescriptor, events: Int16(POLLIN), deadline: deadline, doing: doing)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let count = chunk.withUnsafeMutableBytes { systemRead(outputDescriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            throw failure(.crashed, "cannot read from the runtime plugin \(executable.lastPathComponent) while \(doing)")
        }
        if count == 0 {
            throw failure(.crashed, "the runtime plugin \(executable.lastPathComponent) exited while \(doing)\(exitDescription)")
        }
        buffer += chunk[..<count]
    }

    private func wait(for descriptor: Int32, events: Int16, deadline: Date, doing: String) throws(PluginError) {
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                throw failure(.timedOut, "the runtime plugin \(executable.lastPathComponent) did not answer within its time limit while \(doing); it was stopped")
            }
            var poller = pollfd(fd: descriptor, events: events, revents: 0)
            let ready = poll(&poller, 1, Int32(min(remaining * 1000, 1000).rounded(.up)))
            if ready > 0 { return }
            if ready < 0 && errno != EINTR {
                throw failure(.crashed, "cannot wait for the runtime plugin \(executable.lastPathComponent) while \(doing)")
            }
        }
    }

    /// A description of how the process ended, once it has (" (exit status 3)").
    private var exitDescription: String {
        // Give a process that closed its output a moment to finish exiting.
        let end = Date().addingTimeInterval(0.5)
        while isRunning && Date() < end { usleep(5_000) }
        guard let status = exitStatus, !isRunning else { return "" }
        let signal = status & 0x7f
        return signal != 0 ? " (killed by signal \(signal))" : " (exit status \((status >> 8) & 0xff))"
    }

    /// Stops the plugin and returns the error to throw, with the tail of its stderr.
    func failure(_ code: PluginError.Code, _ message: String) -> PluginError {
        stop()
        errorTail.waitForEnd(timeout: 0.5)
        let tail = stderrTail.trimmingCharacters(in: .whitespacesAndNewlines)
        return PluginError(code, tail.isEmpty ? message : "\(message); its stderr ends: \(tail)")
    }

    // MARK: Stopping

    /// Closes the plugin's input (a well-behaved plugin exits at end of input), then SIGTERM after
    /// `grace` seconds and SIGKILL after as many again; always reaps the process. Idempotent.
    func stop(grace: TimeInterval = 1) {
        guard !stopped else { return }
        stopped = true
        if inputOpen {
            close(inputDescriptor)
            inputOpen = false
        }
        var end = Date().addingTimeInterval(grace)
        while isRunning && Date() < end { usleep(5_000) }
        if isRunning {
            // The whole process group: a plugin's own children go too.
            kill(-pid, SIGTERM)
            end = Date().addingTimeInterval(grace)
            while isRunning && Date() < end { usleep(5_000) }
        }
        if isRunning {
            kill(-pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            exitStatus = status
        }
        close(outputDescriptor)
    }
}

/// The last 4 KiB a plugin wrote to stderr, read on a thread of its own until the pipe closes.
final class StderrTail: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [UInt8] = []
    private static let limit = 4096

    private let ended = DispatchSemaphore(value: 0)

    /// Waits until the plugin's stderr has been read to its end (it has exited), at most `timeout`.
    func waitForEnd(timeout: TimeInterval) {
        if ended.wait(timeout: .now() + timeout) == .success { ended.signal() }
    }

    init(descriptor: Int32) {
        let thread = Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = chunk.withUnsafeMutableBytes { systemRead(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                lock.lock()
                bytes += chunk[..<count]
                if bytes.count > Self.limit { bytes.removeFirst(bytes.count - Self.limit) }
                lock.unlock()
            }
            close(descriptor)
            ended.signal()
        }
        thread.start()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
