import Foundation

/// Errors raised by `CraftCore`: invalid codebooks, shape mismatches, failed compatibility wiring.
///
/// Callers switch on ``code``; ``message`` is one sentence saying what is wrong, on which input, and
/// what to do.
public struct CraftCoreError: CraftError {
    /// The kind of failure. Extensible: new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// A codebook holds NaN or infinity, or its sizes are inconsistent.
        public static let invalidCodebook = Code(name: "invalid-codebook")
        /// An input's shape does not match what the operation expects.
        public static let shapeMismatch = Code(name: "shape-mismatch")
        /// A file or tensor that was asked for does not exist.
        public static let notFound = Code(name: "not-found")
        /// An encoder and a backend do not share a codebook, or a check failed.
        public static let incompatible = Code(name: "incompatible")
        /// A file's content is malformed.
        public static let malformed = Code(name: "malformed")
    }

    public var code: Code
    public var message: String
    public var cause: Error?

    public init(_ code: Code, _ message: String, cause: Error? = nil) {
        (self.code, self.message, self.cause) = (code, message, cause)
    }
}

extension CraftCoreError {
    public var category: ErrorCategory {
        switch code {
        case .notFound: .notFound
        case .incompatible: .incompatible
        case .invalidCodebook, .malformed: .integrity
        case .invalidParameter: .usage
        default: .other
        }
    }
}
