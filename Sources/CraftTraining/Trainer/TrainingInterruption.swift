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

/// Turns `number`'s default action off so that a Dispatch source sees the signal instead.
private func ignoreDefaultAction(of number: Int32) {
    signal(number, SIG_IGN)
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

    /// A flag nothing has set yet.
    public init() {}

    /// The signal that asked the run to stop (the first one), or `nil`.
    public var signal: Int32? {
        lock.lock()
        defer { lock.unlock() }
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
    /// complete one: checkpoints are renamed into place). The signals' default action is turned off
    /// (`SIG_IGN`) for the sources to see them; call ``cancel()`` to stop listening. Call it from the
    /// main thread (as `craft train` does): Dispatch blocks the signals on the thread that starts the
    /// sources, and a signal sent to the process that the main thread neither blocks nor handles is
    /// discarded.
    public static func installingSignalHandlers(_ signals: [Int32] = [SIGINT, SIGTERM]) -> TrainingInterruption {
        let interruption = TrainingInterruption()
        for number in signals {
            ignoreDefaultAction(of: number)
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
        return interruption
    }

    /// Stops listening for signals (a request already made stays).
    public func cancel() {
        lock.lock()
        let sources = self.sources
        self.sources = []
        lock.unlock()
        for source in sources { source.cancel() }
    }

    deinit {
        for source in sources { source.cancel() }
    }
}
