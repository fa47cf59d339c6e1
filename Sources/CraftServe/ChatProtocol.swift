// The OpenAI chat-completions wire format craft serve reads and writes (docs/serve.md): requests with
// text and image_url content parts, responses, streamed chunks, models and error objects.
import Foundation

/// A `POST /v1/chat/completions` body, as OpenAI defines it, with Craft's `craft` extension.
///
/// Fields Craft cannot honour (`n` above 1, `top_p` below 1, `logprobs`, `tools`) are refused by
/// ``ChatRequestReader`` rather than ignored; unknown fields are ignored as OpenAI's own server does.
struct ChatCompletionRequest: Decodable, Sendable {
    var model: String
    var messages: [ChatMessage]
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var temperature: Double?
    var topK: Int?
    var topP: Double?
    var seed: Int64?
    var stop: StopSequences?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var n: Int?
    var logprobs: Bool?
    var tools: [JSONValue]?
    var craft: CraftRequestExtension?

    enum CodingKeys: String, CodingKey {
        case model, messages, temperature, seed, stop, stream, n, logprobs, tools, craft
        case maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", topK = "top_k", topP = "top_p"
        case streamOptions = "stream_options"
    }

    struct StreamOptions: Decodable, Sendable {
        var includeUsage: Bool?
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }
}

/// Craft's request extension: `"craft": {"keep_ratio": 0.5}` (the openai client's `extra_body`).
struct CraftRequestExtension: Decodable, Sendable {
    var keepRatio: Double?
    enum CodingKeys: String, CodingKey { case keepRatio = "keep_ratio" }
}

/// `stop`: one string or a list of strings.
struct StopSequences: Decodable, Sendable {
    var values: [String]

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(String.self) {
            values = [one]
        } else {
            values = try container.decode([String].self)
        }
    }
}

/// One chat message: a role and content that is a string or a list of parts.
struct ChatMessage: Decodable, Sendable {
    var role: String
    var content: [ContentPart]

    enum CodingKeys: String, CodingKey { case role, content }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        role = try container.decode(String.self, forKey: .role)
        if let text = try? container.decode(String.self, forKey: .content) {
            content = [.text(text)]
        } else if try container.decodeNil(forKey: .content) {
            content = []
        } else {
            content = try container.decode([ContentPart].self, forKey: .content)
        }
    }
}

/// A content part: `{"type": "text", "text": …}` or `{"type": "image_url", "image_url": {"url": …}}`;
/// any other type is kept by name so that the reader can refuse it with a sentence.
enum ContentPart: Decodable, Sendable {
    case text(String)
    case imageURL(String)
    case unsupported(String)

    enum CodingKeys: String, CodingKey { case type, text, imageURL = "image_url" }
    struct ImageURL: Decodable { var url: String }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .type) {
        case "text": self = .text(try container.decode(String.self, forKey: .text))
        case "image_url":
            if let url = try? container.decode(String.self, forKey: .imageURL) {
                self = .imageURL(url)
            } else {
                self = .imageURL(try container.decode(ImageURL.self, forKey: .imageURL).url)
            }
        case let other: self = .unsupported(other)
        }
    }
}

/// Any JSON value (for fields Craft only checks for presence).
struct JSONValue: Decodable, Sendable {
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { return }
        if (try? container.decode(Bool.self)) != nil { return }
        if (try? container.decode(Double.self)) != nil { return }
        if (try? container.decode(String.self)) != nil { return }
        if (try? container.decode([JSONValue].self)) != nil { return }
        _ = try container.decode([String: JSONValue].self)
    }
}

// MARK: - Responses

/// A whole (non-streamed) completion.
struct ChatCompletion: Encodable, Sendable {
    var id: String
    var object = "chat.completion"
    var created: Int
    var model: String
    var systemFingerprint: String
    var choices: [Choice]
    var usage: Usage
    var craft: InferenceReport

    enum CodingKeys: String, CodingKey {
        case id, object, created, model, choices, usage, craft
        case systemFingerprint = "system_fingerprint"
    }

    struct Choice: Encodable, Sendable {
        var index = 0
        var message: Message
        var finishReason: String
        var logprobs: String? = nil
        enum CodingKeys: String, CodingKey { case index, message, logprobs, finishReason = "finish_reason" }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(index, forKey: .index)
            try container.encode(message, forKey: .message)
            try container.encodeNil(forKey: .logprobs)
            try container.encode(finishReason, forKey: .finishReason)
        }
    }

    struct Message: Encodable, Sendable {
        var role = "assistant"
        var content: String
    }
}

/// Token counts, as OpenAI reports them.
struct Usage: Encodable, Sendable {
    var promptTokens: Int
    var completionTokens: Int
    var totalTokens: Int { promptTokens + completionTokens }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(promptTokens, forKey: .promptTokens)
        try container.encode(completionTokens, forKey: .completionTokens)
        try container.encode(totalTokens, forKey: .totalTokens)
    }
}

/// Craft's response extension `craft`: what the answer cost (docs/serve.md).
public struct InferenceReport: Encodable, Sendable, Equatable {
    /// The visual tokens the encoder produced.
    public var visualTokensBefore: Int
    /// The visual tokens given to the backend, after pruning to ``keepRatio``.
    public var visualTokensAfter: Int
    /// The keep ratio applied.
    public var keepRatio: Double
    /// Prompt positions that are not visual tokens.
    public var textTokens: Int
    /// Counted prefill FLOPs with every visual token (`null` when the backend gives no decoder shape).
    public var prefillFlopsFull: Double?
    /// Counted prefill FLOPs with the kept visual tokens.
    public var prefillFlopsPruned: Double?
    /// The codebook hash the pair was checked on.
    public var codebookHash: String
    /// Milliseconds from the request's arrival to its first token (or its end).
    public var timeToFirstTokenMs: Double?
    /// Milliseconds from the request's arrival to its end.
    public var latencyMs: Double?

    enum CodingKeys: String, CodingKey {
        case visualTokensBefore = "visual_tokens_before", visualTokensAfter = "visual_tokens_after", keepRatio = "keep_ratio"
        case textTokens = "text_tokens", prefillFlopsFull = "prefill_flops_full", prefillFlopsPruned = "prefill_flops_pruned"
        case codebookHash = "codebook_hash", timeToFirstTokenMs = "time_to_first_token_ms", latencyMs = "latency_ms"
    }

    /// Every key always present (unknown values as `null`), so the keys are stable.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(visualTokensBefore, forKey: .visualTokensBefore)
        try container.encode(visualTokensAfter, forKey: .visualTokensAfter)
        try container.encode(keepRatio, forKey: .keepRatio)
        try container.encode(textTokens, forKey: .textTokens)
        try container.encode(prefillFlopsFull, forKey: .prefillFlopsFull)
        try container.encode(prefillFlopsPruned, forKey: .prefillFlopsPruned)
        try container.encode(codebookHash, forKey: .codebookHash)
        try container.encode(timeToFirstTokenMs, forKey: .timeToFirstTokenMs)
        try container.encode(latencyMs, forKey: .latencyMs)
    }
}

/// One server-sent chunk of a streamed completion.
struct ChatCompletionChunk: Encodable, Sendable {
    var id: String
    var object = "chat.completion.chunk"
    var created: Int
    var model: String
    var systemFingerprint: String
    var choices: [Choice]
    /// Only in the last chunk, when the request asked for `stream_options.include_usage`.
    var usage: Usage?
    /// Only in the chunk that ends the answer.
    var craft: InferenceReport?

    enum CodingKeys: String, CodingKey {
        case id, object, created, model, choices, usage, craft
        case systemFingerprint = "system_fingerprint"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(object, forKey: .object)
        try container.encode(created, forKey: .created)
        try container.encode(model, forKey: .model)
        try container.encode(systemFingerprint, forKey: .systemFingerprint)
        try container.encode(choices, forKey: .choices)
        if let usage { try container.encode(usage, forKey: .usage) }
        if let craft { try container.encode(craft, forKey: .craft) }
    }

    struct Choice: Encodable, Sendable {
        var index = 0
        var delta: Delta
        var finishReason: String?

        enum CodingKeys: String, CodingKey { case index, delta, logprobs, finishReason = "finish_reason" }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(index, forKey: .index)
            try container.encode(delta, forKey: .delta)
            try container.encodeNil(forKey: .logprobs)
            try container.encode(finishReason, forKey: .finishReason)
        }
    }

    struct Delta: Encodable, Sendable {
        var role: String?
        var content: String?
    }
}

/// `GET /v1/models`.
struct ModelList: Encodable, Sendable {
    var object = "list"
    var data: [ModelEntry]
}

/// One served pair in `GET /v1/models`.
struct ModelEntry: Encodable, Sendable {
    var id: String
    var object = "model"
    var created: Int
    var ownedBy = "craft"
    var craft: PairDescription

    enum CodingKeys: String, CodingKey { case id, object, created, craft, ownedBy = "owned_by" }
}

/// What a served pair is: its two bundles and the codebook they were checked on.
struct PairDescription: Encodable, Sendable {
    var encoder: String
    var backend: String
    var codebookHash: String
    var contextLength: Int

    enum CodingKeys: String, CodingKey {
        case encoder, backend, codebookHash = "codebook_hash", contextLength = "context_length"
    }
}

/// An OpenAI error object: `{"error": {"message", "type", "param", "code"}}`.
struct ErrorBody: Encodable, Sendable {
    var error: Detail

    struct Detail: Encodable, Sendable {
        var message: String
        var type: String
        var param: String?
        var code: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(message, forKey: .message)
            try container.encode(type, forKey: .type)
            try container.encode(param, forKey: .param)
            try container.encode(code, forKey: .code)
        }

        enum CodingKeys: String, CodingKey { case message, type, param, code }
    }
}
