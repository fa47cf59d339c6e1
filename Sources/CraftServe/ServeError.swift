// Errors a request gets from craft serve, each an HTTP status and an OpenAI error object.
import CraftCore

/// Why a request failed: an HTTP status with an OpenAI-style error (`type`, `code`) and one sentence.
///
/// ```swift
/// throw ServeError(.badRequest, "messages is empty; send one user message with an image and a question", param: "messages")
/// ```
public struct ServeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kinds of failure, with their status and OpenAI type.
    public enum Kind: Sendable, Equatable {
        /// 400: malformed JSON, unsupported content or parameters.
        case badRequest
        /// 400: the prompt and the answer do not fit the backend's context.
        case contextLengthExceeded
        /// 404: no served model has that id, or no such route.
        case notFound
        /// 413: the body is larger than the server accepts.
        case tooLarge
        /// 429: the queue is full; retry later.
        case queueFull
        /// 503: the server is stopping.
        case unavailable
        /// 504: the request ran past its time limit.
        case timeout
        /// 500: the models failed.
        case internalError

        /// The HTTP status code.
        public var status: Int {
            switch self {
            case .badRequest, .contextLengthExceeded: 400
            case .notFound: 404
            case .tooLarge: 413
            case .queueFull: 429
            case .unavailable: 503
            case .timeout: 504
            case .internalError: 500
            }
        }

        /// OpenAI's error `type`.
        var type: String {
            switch self {
            case .badRequest, .contextLengthExceeded, .notFound, .tooLarge: "invalid_request_error"
            case .queueFull: "rate_limit_error"
            case .unavailable, .timeout, .internalError: "server_error"
            }
        }

        /// OpenAI's error `code`.
        var code: String {
            switch self {
            case .badRequest: "invalid_request"
            case .contextLengthExceeded: "context_length_exceeded"
            case .notFound: "not_found"
            case .tooLarge: "request_too_large"
            case .queueFull: "queue_full"
            case .unavailable: "server_stopping"
            case .timeout: "timeout"
            case .internalError: "internal_error"
            }
        }
    }

    /// What kind of failure.
    public var kind: Kind
    /// One sentence: what is wrong and what to do.
    public var message: String
    /// The request field at fault, if one is.
    public var param: String?

    /// Creates an error.
    public init(_ kind: Kind, _ message: String, param: String? = nil) {
        self.kind = kind
        self.message = message
        self.param = param
    }

    public var description: String { message }

    /// The OpenAI error body.
    var body: ErrorBody {
        ErrorBody(error: .init(message: message, type: kind.type, param: param, code: kind == .notFound && param == "model" ? "model_not_found" : kind.code))
    }
}

extension ServeError: CategorizedError {
    /// Refusals of the caller's input are usage errors (exit 64 from `craft serve`), the rest other.
    public var category: ErrorCategory {
        switch kind {
        case .badRequest, .contextLengthExceeded, .tooLarge: .usage
        case .notFound: .notFound
        default: .other
        }
    }
}
