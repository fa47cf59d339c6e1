// Stopping a training run cleanly on SIGINT or SIGTERM: a flag that signal sources set and the
// trainer checks between steps; the trainer then writes its checkpoint and throws `interrupted`.
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The signal caught by ``catchSignal(_:)``'s handler (0 for none). Written only by the handler.
nonisolated(unsafe) private var caughtSignal: Int32 = 0

/// Replaces `number`'s default action with a handler that records it (a second one ends the process
/// with `128 + signal`): it runs when the signal reaches a thread that does not block it. Threads that
/// block it (Dispatch blocks signals it has sources for) leave it to the Dispatch sources.
private func catchSignal(_ number: Int32) {
    _ = caughtSignal  // initialised before any handler runs
    signal(number) { number in
        if caughtSignal != 0 { _exit(128 + number) }
        caughtSignal = number
    }
}

extension TrainingError.Code {
    /// The run was asked to stop (SIGINT, SIGTERM or ``TrainingInterruption/request(signal:)``); the
    /// checkpoint holds the last step taken.
    public static let interrupted = TrainingError.Code("interrupted")
}

/// A request to stop training, checked by ``Trainer`` before every optimiser step and before every
/// epoch's validation: the trainer then writes its checkpoint (when it has a checkpoint directory)
/// and throws ``TrainingError`` `interrupted`.
///
/// ```swift
/// let interruption = TrainingInterruption.installingSignalHandlers()   // SIGINT, SIGTERM
/// do { summary = try trainer.train(..., checkpointDirectory: checkpoint, interruption: interruption) }
/// catch let error as TrainingError where error.code == .interrupted {
///     exit(128 + (interruption.signal ?? SIGINT))   // 130 for SIGINT, 143 for SIGTERM
/// }
/// ```
public final class TrainingInterruption: @unchecked Sendable {
    private let lock = NSLock()
    private var requested: Int32?
    private var sources: [any DispatchSourceSignal] = []
    private var listening = false

    /// A flag nothing has set yet.
    public init() {}

    /// The signal that asked the run to stop (the first one), or `nil`.
    public var signal: Int32? {
        lock.lock()
        defer { lock.unlock() }
        if requested == nil, listening, caughtSignal != 0 { requested = caughtSignal }
        return requested
    }

    /// Whether a stop was requested.
    public var isRequested: Bool { signal != nil }

    /// Asks the run to stop, as if `signal` had arrived (the first request is kept).
    public func request(signal: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if requested == nil { requested = signal }
    }

    /// The conventional exit status of a process stopped by the requested signal: `128 + signal`
    /// (130 for SIGINT, 143 for SIGTERM); `nil` when nothing was requested.
    public var exitStatus: Int32? { signal.map { 128 + $0 } }

    /// `SIGINT`, `SIGTERM`, or `signal N`.
    public static func name(of signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(signal)"
        }
    }

    /// A flag set by `signals` (default SIGINT and SIGTERM) through Dispatch signal sources. The first
    /// signal only sets the flag, so the trainer can finish its step and write the checkpoint; a second
    /// one ends the process at once with `128 + signal` (the checkpoint on disk is then the previous
    /// complete one: checkpoints are renamed into place). The signals' default action is replaced by a
    /// handler that records them too, for the threads that do not block them (Dispatch sources only
    /// see signals that are blocked where they arrive); call ``cancel()`` to stop listening.
    public static func installingSignalHandlers(_ signals: [Int32] = [SIGINT, SIGTERM]) -> TrainingInterruption {
        let interruption = TrainingInterruption()
        for number in signals {
            catchSignal(number)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global(qos: .userInitiated))
            source.setEventHandler { [weak interruption] in
                guard let interruption else { return }
                interruption.lock.lock()
                let first = interruption.requested == nil
                if first { interruption.requested = number }
                interruption.lock.unlock()
                if !first { _exit(128 + number) }
            }
            source.resume()
            interruption.sources.append(source)
        }
        interruption.listening = true
        return interruption
    }

    /// Stops listening for signals (a request already made stays).
    public func cancel() {
        lock.lock()
        let sources = self.sources
        self.sources = []
        listening = false
        lock.unlock()
        for source in sources { source.cancel() }
    }

    deinit {
        for source in sources { source.cancel() }
    }
}
