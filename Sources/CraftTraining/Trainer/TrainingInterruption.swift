// Stopping a training run cleanly: a flag that a signal handler (craft train sets it from
// ScratchFiles' first SIGINT/SIGTERM/SIGHUP) or a caller sets, and the trainer checks between steps;
// the trainer then writes its checkpoint and throws `interrupted`.
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
/// let interruption = TrainingInterruption()
/// ScratchFiles.setInterruptionHandler { interruption.request(signal: $0) }   // craft train does this
/// do { summary = try trainer.train(..., checkpointDirectory: checkpoint, interruption: interruption) }
/// catch let error as TrainingError where error.code == .interrupted {
///     exit(128 + (interruption.signal ?? SIGINT))   // 130 for SIGINT, 143 for SIGTERM
/// }
/// ```
public final class TrainingInterruption: @unchecked Sendable {
    private let lock = NSLock()
    private var requested: Int32?

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
}
