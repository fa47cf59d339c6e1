// The one error type of TensorCore: problems in data (indices, values) rather than programmer errors.
import Foundation

/// An error caused by data handed to TensorCore, such as an index outside the table it addresses.
///
/// Shape mismatches between tensors the program itself builds are programmer errors and stop with a
/// precondition failure instead; values that come from files or users are checked and reported here.
public struct TensorError: Error, Sendable, Equatable, LocalizedError {
    /// A stable kind callers can switch on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        /// An index (token id, code id, class target) lies outside the range it addresses.
        public static let indexOutOfRange = Code(rawValue: "index-out-of-range")
        /// A shape read from data does not fit the operation.
        public static let invalidShape = Code(rawValue: "invalid-shape")
        public var description: String { rawValue }
    }

    /// The kind of error.
    public let code: Code
    /// One sentence: what is wrong, where, and what to do.
    public let message: String

    /// Creates an error with a kind and a one-sentence message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var errorDescription: String? { message }
}
