// Errors from out-of-process runtime plugins (docs/runtime-protocol.md).
import CraftCore

/// A runtime plugin that could not be found, started, or trusted: each a one-sentence message
/// naming the plugin, what it did, and the tail of its stderr when it wrote any.
public struct PluginError: CraftError, Sendable {
    /// The kind of failure.
    public enum Code: String, Sendable, Hashable {
        /// The executable could not be started.
        case notStarted
        /// The plugin exited, closed its output, or stopped reading.
        case crashed
        /// The plugin did not answer within its time limit.
        case timedOut
        /// The plugin wrote something that is not craft.runtime/v1 (bad JSON, an unknown message,
        /// a frame of the wrong size, another protocol version).
        case protocolViolation
        /// The plugin answered in the protocol but with content Craft refuses (a code outside the
        /// codebook, a wrong shape, a runtime it does not offer).
        case invalidAnswer
        /// The plugin reported an error of its own.
        case pluginFailed
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Every plugin failure is a runtime failure ("other", exit 1): the plugin, not the input, is at fault.
    public var category: ErrorCategory { .other }
}
