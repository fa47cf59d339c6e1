// Errors for loading and running Hugging Face tokenizers (tokenizer.json).
import CraftCore
import Foundation

/// An error from loading a `tokenizer.json` file or from encoding text with it.
///
/// Every error carries a ``Code`` that callers can switch on and a one-sentence ``message`` that
/// says what is wrong, where (the file and the JSON path), and what to do.
public struct TokenizerError: CraftError, Sendable {
    /// The kind of failure.
    public enum Code: String, Sendable, Hashable {
        /// The file could not be read.
        case unreadableFile
        /// The bytes are not valid JSON.
        case invalidJSON
        /// A required field is missing or has the wrong JSON type or an invalid value.
        case invalidField
        /// A component (`model`, `normalizer`, `pre_tokenizer`, `post_processor`, `decoder`) has a
        /// type this implementation does not support.
        case unsupportedComponent
        /// The vocabulary, merges or added tokens contradict each other.
        case inconsistentVocabulary
        /// A regular expression in the file could not be compiled.
        case invalidPattern
        /// Encoding failed: a word is not in the vocabulary and no unknown token is usable.
        case unknownToken
        /// The file, or a size it declares (padding or truncation length, vocabulary, merges, added
        /// tokens), is over Craft's limits (``TokenizerLimits``).
        case limitExceeded
        /// A regular expression from the file needed more than its step budget on one input (it
        /// backtracks catastrophically, e.g. `(a|aa)+$`); the text was not tokenized.
        case patternTooSlow
    }

    /// The kind of failure.
    public let code: Code
    /// One sentence: what failed, on which input, what to do.
    public let message: String

    /// Creates an error with a code and a message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

extension TokenizerError {
    /// The exit-code category: a malformed, oversized or hostile tokenizer file is an integrity
    /// failure; text outside a WordLevel vocabulary is a usage error; an unreadable file is "other".
    public var category: ErrorCategory {
        switch code {
        case .unreadableFile: .other
        case .unknownToken: .usage
        case .invalidJSON, .invalidField, .unsupportedComponent, .inconsistentVocabulary, .invalidPattern,
            .limitExceeded, .patternTooSlow:
            .integrity
        }
    }
}
