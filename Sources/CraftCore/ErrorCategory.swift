import Foundation

/// How a failure is classified for callers and for the command-line exit codes
/// (docs/cli.md: 2 not found, 3 incompatible pair, 4 integrity or signature failure, 64 usage).
///
/// Every module's error type above `CraftCore` conforms to ``CategorizedError`` so the tools can map
/// any error to its documented exit code without knowing each module.
public enum ErrorCategory: String, Sendable, Codable {
    /// A named thing (bundle, version, file, tensor, runtime) does not exist.
    case notFound = "not-found"
    /// An encoder and a backend cannot be wired together.
    case incompatible
    /// A file is corrupt, malformed, tampered with, or its signature does not verify.
    case integrity
    /// The caller asked for something impossible (bad reference, bad option value).
    case usage
    /// Anything else (I/O, internal).
    case other
}

/// An error that knows its ``ErrorCategory``.
public protocol CategorizedError: Error {
    var category: ErrorCategory { get }
}

/// The shared body of Craft's module errors: a ``code`` callers switch on, one sentence ``message``
/// (what is wrong, where, what to do) and the ``CategorizedError/category`` behind the exit code.
///
/// A conforming error type declares only its codes, its stored fields and its category mapping;
/// `errorDescription` and `description` both come from here and are the message.
public protocol CraftError: CategorizedError, LocalizedError, CustomStringConvertible {
    /// The type of ``code``: a small extensible struct of named constants.
    associatedtype Code: Hashable
    /// The kind of failure.
    var code: Code { get }
    /// One sentence: what failed, on which input, what to do.
    var message: String { get }
}

extension CraftError {
    /// The message.
    public var errorDescription: String? { message }
    /// The message.
    public var description: String { message }
}
