// The one error type of CraftAdaptation: a code, one clear sentence, and the category that gives the
// command-line exit status (docs/cli.md).
import CraftBundles
import CraftCore
import CraftTraining
import Foundation

/// A failure of ``EncoderAdaptation`` or ``CodeStatisticsJob``.
///
/// Every message says what failed, on which input (file and line for datasets, the bundle for
/// bundles) and what to do. ``category`` maps it to the documented exit status: bad data or options
/// are `usage` (64), a mismatched encoder and surrogate `incompatible` (3), a missing input `notFound` (2).
public struct AdaptationError: CraftError, Sendable {
    /// What kind of failure this is; extensible.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The stable name of the code.
        public let name: String
        /// Creates a code.
        public init(_ name: String) { self.name = name }
        /// A dataset file or one of its lines is malformed, names a missing image, or a split is empty.
        public static let invalidData = Code("invalid-data")
        /// An option or request field is out of range or contradicts another.
        public static let invalidRequest = Code("invalid-request")
        /// The encoder and the surrogate do not share a codebook (the compatibility checker failed).
        public static let incompatible = Code("incompatible")
        /// A file, bundle or registry entry does not exist.
        public static let notFound = Code("not-found")
        /// The bundle cannot be adapted this way (another runtime, no weights to train).
        public static let unsupported = Code("unsupported")
        /// Something was written wrong or changed under us (the adapted codebook hash differs).
        public static let integrity = Code("integrity")
        /// A file could not be read or written.
        public static let io = Code("io")
        /// The run was stopped by SIGINT or SIGTERM (``AdaptationRequest/interruption``); its checkpoint
        /// holds the last step, and running the same request again resumes.
        public static let interrupted = Code("interrupted")
        /// The description is the name.
        public var description: String { name }
    }

    /// The kind of failure.
    public var code: Code
    /// One sentence: what failed, where, what to do.
    public var message: String
    /// The compatibility report, for ``Code/incompatible``.
    public var report: CompatibilityReport?

    /// Creates an error.
    public init(_ code: Code, _ message: String, report: CompatibilityReport? = nil) {
        self.code = code
        self.message = message
        self.report = report
    }

    /// The exit-status category.
    public var category: ErrorCategory {
        switch code {
        case .invalidData, .invalidRequest, .unsupported: .usage
        case .incompatible: .incompatible
        case .notFound: .notFound
        case .integrity: .integrity
        default: .other
        }
    }

    /// Turns an error of the training library (which has no exit category) into one; other errors
    /// pass through unchanged.
    static func wrapping(_ error: any Error) -> any Error {
        guard let training = error as? TrainingError else { return error }
        switch training.code {
        case .invalidDataset: return AdaptationError(.invalidData, training.message)
        case .invalidConfiguration, .invalidCheckpoint: return AdaptationError(.invalidRequest, training.message)
        case .io: return AdaptationError(.io, training.message)
        default: return AdaptationError(Code(training.code.rawValue), training.message)
        }
    }

    /// Runs `body`, converting training-library errors with ``wrapping(_:)``.
    static func converting<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw wrapping(error) }
    }
}

/// One readable sentence for any error.
func describe(_ error: any Error) -> String {
    (error as? LocalizedError)?.errorDescription ?? String(describing: error)
}
