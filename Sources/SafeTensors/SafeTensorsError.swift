// The one error type of the SafeTensors module (struct with an extensible code, as swift-nio's FileSystemError).
import Foundation

/// An error reading, validating or writing a safetensors file.
///
/// Switch on ``code`` to react to a kind of failure; ``message`` is one sentence that says what is
/// wrong, where (``file``, ``tensor``) and what to do.
public struct SafeTensorsError: Error, LocalizedError, CustomStringConvertible, Sendable {
    /// The kind of failure. New codes may be added; match the ones you handle and keep a default.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable identifier, e.g. `"truncated"`.
        public let rawValue: String
        /// Creates a code from its identifier.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The file ends before its 8-byte header length, its header, or the tensor data its header describes.
        public static let truncated = Code("truncated")
        /// The header length field exceeds the configured cap (100 MB by default).
        public static let headerTooLarge = Code("headerTooLarge")
        /// The header is not UTF-8, not JSON, not an object, or an entry lacks or mistypes a field.
        public static let invalidHeader = Code("invalidHeader")
        /// An entry names a dtype this module does not know or support.
        public static let unknownDType = Code("unknownDType")
        /// A shape holds a negative or non-integer dimension.
        public static let invalidShape = Code("invalidShape")
        /// The product of a shape's dimensions (or a byte count) does not fit in `Int`.
        public static let overflow = Code("overflow")
        /// The shape × dtype width differs from the entry's byte range, or from the values given.
        public static let shapeMismatch = Code("shapeMismatch")
        /// A data offset is negative or too large to address, or a byte range begins after it ends.
        public static let outOfBounds = Code("outOfBounds")
        /// Two tensors' byte ranges overlap.
        public static let overlap = Code("overlap")
        /// Bytes of the data section are covered by no tensor.
        public static let gap = Code("gap")
        /// Two tensors (or two header keys) share a name.
        public static let duplicate = Code("duplicate")
        /// A tensor or file that was asked for does not exist.
        public static let notFound = Code("notFound")
        /// The tensor's dtype cannot be read as the requested type (e.g. F32 as Int64).
        public static let dtypeMismatch = Code("dtypeMismatch")
        /// A value does not fit the requested integer type (e.g. an I64 value read as Int32).
        public static let valueOutOfRange = Code("valueOutOfRange")
        /// A sharded checkpoint's index file is malformed or names an unsafe shard path.
        public static let invalidIndex = Code("invalidIndex")
        /// A writer argument is invalid (empty or reserved name, negative dimension).
        public static let invalidArgument = Code("invalidArgument")
        /// The operating system failed to open, map, write or rename a file.
        public static let io = Code("io")
        /// Reading the tensor needs more memory than the system will allocate now (a huge tensor, for
        /// example a sparse or zero-filled file that declares billions of values).
        public static let insufficientMemory = Code("insufficientMemory")
    }

    /// The kind of failure.
    public let code: Code
    /// The path of the file concerned, when there is one.
    public let file: String?
    /// The name of the tensor concerned, when there is one.
    public let tensor: String?
    /// One sentence: what is wrong, where, and what to do.
    public let message: String
    /// The underlying error, when this one wraps another.
    public let cause: (any Error & Sendable)?

    /// Creates an error.
    public init(
        _ code: Code, file: String? = nil, tensor: String? = nil, message: String,
        cause: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.file = file
        self.tensor = tensor
        self.message = message
        self.cause = cause
    }

    public var errorDescription: String? { message }
    public var description: String { "SafeTensorsError(\(code)): \(message)" }
}
