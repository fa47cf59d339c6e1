// The one error type of the model runtimes (loading checkpoints, running models, generating).
import CraftCore
import Foundation

/// An error from loading or running a model: a bad `config.json`, a checkpoint whose tensors do not
/// match the configuration, or an input the model cannot take.
///
/// Callers switch on ``code``; ``message`` is one sentence saying what is wrong, where, and what to do.
public struct ModelError: CraftError, Sendable {
    /// The kind of failure. Extensible: new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The stable name of the code.
        public let rawValue: String
        /// Creates a code from its stable name.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A file the model needs (`config.json`, weights) does not exist.
        public static let notFound = Code("not-found")
        /// `config.json` is malformed or describes an impossible model.
        public static let invalidConfiguration = Code("invalid-configuration")
        /// The configuration names an architecture or option this runtime does not implement.
        public static let unsupported = Code("unsupported")
        /// The checkpoint lacks a tensor the configuration needs.
        public static let missingTensor = Code("missing-tensor")
        /// The checkpoint holds a tensor the configuration does not use.
        public static let unexpectedTensor = Code("unexpected-tensor")
        /// A tensor's shape differs from the one the configuration implies.
        public static let shapeMismatch = Code("shape-mismatch")
        /// The weights file cannot be read.
        public static let unreadableWeights = Code("unreadable-weights")
        /// An input (token ids, pixels, embeddings, generation settings) is not valid for the model.
        public static let invalidInput = Code("invalid-input")
        /// A model directory or one of its files cannot be written.
        public static let writeFailed = Code("write-failed")
    }

    /// The kind of failure.
    public var code: Code
    /// One sentence: what failed, on which input, what to do.
    public var message: String
    /// The underlying error, when there is one.
    public var cause: (any Error)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        (self.code, self.message, self.cause) = (code, message, cause)
    }
}

extension ModelError {
    /// The exit-code category (docs/cli.md).
    public var category: ErrorCategory {
        switch code {
        case .notFound: .notFound
        case .invalidConfiguration, .missingTensor, .unexpectedTensor, .shapeMismatch, .unreadableWeights: .integrity
        case .invalidInput, .unsupported: .usage
        default: .other
        }
    }
}
