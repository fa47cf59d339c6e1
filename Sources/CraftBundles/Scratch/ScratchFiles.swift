// Temporary files and directories that commands write: named so that a later command can tell
// whose they are, removed when the command is interrupted, and swept when their writer is gone.
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Scratch paths of this process: unpack directories, downloads, staging copies, packing output.
///
/// Every scratch name carries the writer's process id (``name(_:)``: `PREFIX-PID-UUID`), so that
///
/// - ``track(_:)`` paths are removed when the process gets SIGINT, SIGTERM or SIGHUP (the
///   executables call ``installSignalHandlers()``; the process then dies of the same signal);
/// - ``sweep(_:prefix:)`` removes names left by processes that no longer exist (a SIGKILL, a power
///   cut): the next command cleans up after the one that could not.
///
/// ```swift
/// let temporary = ScratchFiles.directory.appendingPathComponent(ScratchFiles.name("craft-run"))
/// let tracked = ScratchFiles.track(temporary)
/// defer { ScratchFiles.remove(tracked) }
/// ```
public enum ScratchFiles {
    /// A path registered for removal on interruption.
    public struct Tracked: Sendable {
        public let url: URL
        let id: Int
    }

    /// The directory for scratch files outside registries and caches: `$TMPDIR` or `/tmp`.
    public static var directory: URL { FileManager.default.temporaryDirectory }

    /// A fresh scratch name: `PREFIX-PID-UUID`. `prefix` must not end in a digit.
    public static func name(_ prefix: String) -> String {
        "\(prefix)-\(getpid())-\(UUID().uuidString)"
    }

    /// Registers `url` for removal if the process is interrupted; returns the registration.
    @discardableResult
    public static func track(_ url: URL) -> Tracked {
        state.lock.lock()
        defer { state.lock.unlock() }
        state.next += 1
        state.paths[state.next] = url
        return Tracked(url: url, id: state.next)
    }

    /// Forgets a registration without removing anything (the path was renamed into place).
    public static func untrack(_ tracked: Tracked) {
        state.lock.lock()
        defer { state.lock.unlock() }
        state.paths[tracked.id] = nil
    }

    /// Removes a tracked path (if it still exists) and forgets it.
    public static func remove(_ tracked: Tracked) {
        untrack(tracked)
        try? FileManager.default.removeItem(at: tracked.url)
    }

    /// Installs handlers for SIGINT, SIGTERM and SIGHUP that remove every tracked path, then let the
    /// signal end the process as it would have. Call once, from an executable's main thread (it
    /// unblocks the three signals there, in case the parent started the process with them blocked).
    public static func installSignalHandlers() {
        state.lock.lock()
        defer { state.lock.unlock() }
        guard state.sources.isEmpty else { return }
        // A parent may have started us with these signals blocked (a process spawned from a
        // Dispatch thread inherits its mask, and Dispatch blocks them): take them on this thread.
        var handled = sigset_t()
        sigemptyset(&handled)
        for number in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&handled, number) }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global(qos: .userInitiated))
            source.setEventHandler {
                state.lock.lock()
                // A command that stops cleanly by itself (training checkpoints first) takes the
                // first signal; a second one ends the process as usual.
                if let handler = state.interruptionHandler, !state.handedOver {
                    state.handedOver = true
                    state.lock.unlock()
                    handler(number)
                    return
                }
                state.interrupted = true
                state.lock.unlock()
                removeTracked()
                signal(number, SIG_DFL)
                // To the process, not this thread: Dispatch's threads block signals.
                kill(getpid(), number)
            }
            source.resume()
            state.sources.append(source)
        }
    }

    /// Hands the first SIGINT, SIGTERM or SIGHUP to `handler` instead of removing the tracked paths
    /// and ending the process: for a command that stops cleanly by itself (`craft train` writes a
    /// checkpoint at the step reached, then exits 128 + signal). A second signal ends the process
    /// as usual. `nil` restores the default.
    public static func setInterruptionHandler(_ handler: (@Sendable (Int32) -> Void)?) {
        state.lock.lock()
        defer { state.lock.unlock() }
        state.interruptionHandler = handler
        state.handedOver = false
    }

    /// Whether a signal is being handled: the process is about to die of it.
    public static var isInterrupted: Bool {
        state.lock.lock()
        defer { state.lock.unlock() }
        return state.interrupted
    }

    /// Waits for the signal handler to end the process when a signal arrived, so that a command
    /// whose files were pulled from under it dies of the signal rather than exiting with the error
    /// that caused. Returns at once otherwise. Executables call it before `exit`.
    public static func waitIfInterrupted() {
        while isInterrupted { pause() }
    }

    /// Removes every tracked path now (what the signal handlers do).
    public static func removeTracked() {
        state.lock.lock()
        let paths = Array(state.paths.values)
        state.paths.removeAll()
        state.lock.unlock()
        for url in paths { try? FileManager.default.removeItem(at: url) }
    }

    /// Removes the entries of `directory` named `PREFIX-PID-UUID` (for any prefix in `prefixes`, with
    /// or without a leading dot) whose process no longer exists. Returns what it removed. Entries of
    /// living processes, and names not made by ``name(_:)``, are left alone.
    @discardableResult
    public static func sweep(_ directory: URL, prefixes: [String]) -> [URL] {
        sweep(directory) { prefix in prefixes.contains { $0[...] == prefix } }
    }

    /// Removes what interrupted Craft commands left in ``directory`` (`$TMPDIR`): names
    /// `craft-WORD-PID-UUID` of processes that no longer exist. Commands call it when they start.
    @discardableResult
    public static func sweepTemporaryDirectory() -> [URL] {
        // Only names starting craft- are parsed: $TMPDIR can hold thousands of other entries, and
        // every command starts with this sweep.
        sweep(directory, names: { $0.hasPrefix("craft-") || $0.hasPrefix(".craft-") }) { prefix in
            prefix.hasPrefix("craft-") && prefix.count > 6
                && prefix.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || $0 == UInt8(ascii: "-") }
        }
    }

    private static func sweep(_ directory: URL, names candidate: (String) -> Bool = { _ in true },
                              where accepts: (Substring) -> Bool) -> [URL] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return [] }
        var removed: [URL] = []
        for name in names where candidate(name) {
            guard let (prefix, pid) = parse(name), accepts(prefix), pid != getpid(), !isAlive(pid) else { continue }
            let url = directory.appendingPathComponent(name)
            if (try? FileManager.default.removeItem(at: url)) != nil { removed.append(url) }
        }
        return removed
    }

    /// The prefix and process id of a name made by ``name(_:)`` (optionally with a leading dot and
    /// an extension after the UUID), or nil.
    static func parse(_ name: String) -> (prefix: Substring, pid: pid_t)? {
        var rest = name.hasPrefix(".") ? Substring(name.dropFirst()) : Substring(name)
        if let dot = rest.lastIndex(of: "."), rest.distance(from: dot, to: rest.endIndex) <= 12,
           !rest[dot...].contains("-") {
            rest = rest[..<dot]
        }
        guard rest.count > 38 else { return nil }
        let uuid = rest.suffix(36)
        guard UUID(uuidString: String(uuid)) != nil else { return nil }
        rest = rest.dropLast(37)
        guard rest.count >= 2, rest.last != "-" else { return nil }
        let digits = rest.reversed().prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, digits.count <= 10, let pid = pid_t(String(digits.reversed())), pid > 0 else { return nil }
        let prefixEnd = rest.index(rest.endIndex, offsetBy: -digits.count)
        guard prefixEnd > rest.startIndex, rest[rest.index(before: prefixEnd)] == "-" else { return nil }
        let prefix = rest[..<rest.index(before: prefixEnd)]
        guard !prefix.isEmpty else { return nil }
        return (prefix, pid)
    }

    /// Whether a process exists (a process we may not signal still exists).
    static func isAlive(_ pid: pid_t) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var next = 0
        var paths: [Int: URL] = [:]
        var sources: [any DispatchSourceSignal] = []
        var interrupted = false
        var interruptionHandler: (@Sendable (Int32) -> Void)?
        var handedOver = false
    }

    private static let state = State()
}
