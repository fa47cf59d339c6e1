import CraftCore
import Foundation

/// The one error type of CraftTraining: a code callers can switch on and one clear sentence.
///
/// Messages say what failed, where (file and line for datasets, tensor names for checkpoints) and
/// what to do about it.
public struct TrainingError: CraftError, Sendable, Equatable {
    /// What kind of failure this is; extensible.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The stable name of the code.
        public let rawValue: String
        /// Creates a code.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        /// A loss got inputs of the wrong shape or content.
        public static let invalidLossInput = Code("invalid-loss-input")
        /// A parameter set, gradient set or optimiser state does not match.
        public static let parameterMismatch = Code("parameter-mismatch")
        /// A dataset file or one of its lines is malformed.
        public static let invalidDataset = Code("invalid-dataset")
        /// A file could not be read or written.
        public static let io = Code("io")
        /// A checkpoint is malformed or does not match the run.
        public static let invalidCheckpoint = Code("invalid-checkpoint")
        /// A training option is out of range.
        public static let invalidConfiguration = Code("invalid-configuration")
        /// The description is the raw value.
        public var description: String { rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// One sentence: what failed, where, what to do.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        (self.code, self.message) = (code, message)
    }
}

extension TrainingError {
    /// The category behind the command-line exit code (docs/cli.md).
    ///
    /// Bad input data or options (`invalidDataset`, `invalidConfiguration`) are usage errors (exit 64);
    /// a malformed checkpoint is an integrity failure (exit 4); I/O failures, mismatched parameters,
    /// bad loss inputs and any code added later are other errors (exit 1).
    public var category: ErrorCategory {
        switch code {
        case .invalidDataset, .invalidConfiguration: .usage
        case .invalidCheckpoint: .integrity
        default: .other
        }
    }
}
