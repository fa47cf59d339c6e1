// The one error type of the GGUF module.
import CraftCore

/// Why a GGUF file cannot be read: one sentence naming the file and the key or tensor at fault.
public struct GGUFError: CraftError, Equatable {
    /// The kinds of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let description: String
        /// The file does not exist.
        public static let notFound = Code(description: "not-found")
        /// The file cannot be opened or mapped.
        public static let io = Code(description: "io")
        /// The bytes are not a valid GGUF file (truncated, bad magic, counts or offsets out of range).
        public static let malformed = Code(description: "malformed")
        /// Valid GGUF, but something Craft does not read (a version, a tensor type, a value type).
        public static let unsupported = Code(description: "unsupported")
        /// A key or tensor asked for is absent.
        public static let missing = Code(description: "missing")
    }

    public let code: Code
    public let message: String
    /// The file, when known.
    public let file: String?

    public init(_ code: Code, _ message: String, file: String? = nil) {
        self.code = code
        self.message = message
        self.file = file
    }

    public var category: ErrorCategory {
        switch code {
        case .notFound, .missing: .notFound
        case .malformed: .integrity
        case .unsupported: .usage
        default: .other
        }
    }
}
