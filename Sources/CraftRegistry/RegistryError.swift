// CraftRegistry: directory registries with a sharded index (docs/registry.md) and detached
// Ed25519 signatures over bundle digests. Format: docs/registry.md.
import CraftCore
import Foundation

/// Errors raised by `CraftRegistry`: missing bundles, broken index files, refused publishes, bad
/// signatures.
///
/// Callers switch on ``code``; ``message`` is one sentence saying what is wrong, on which input, and
/// what to do. ``category`` maps the error to the command-line exit codes (docs/cli.md).
public struct RegistryError: CraftError {
    /// The kind of failure. Extensible: new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// No bundle (or version, or key) by that name exists in the registry.
        public static let notFound = Code(name: "not-found")
        /// The registry directory itself does not exist or is not a registry.
        public static let noRegistry = Code(name: "no-registry")
        /// An index file (top-level or shard) is unreadable or malformed.
        public static let corruptIndex = Code(name: "corrupt-index")
        /// A different bundle is already published under the same name and version.
        public static let conflict = Code(name: "conflict")
        /// A bundle reference (`NAME`, `NAME@VERSION`, `NAME@RANGE`) is malformed.
        public static let badReference = Code(name: "bad-reference")
        /// A bundle's bytes do not match the digest recorded for it.
        public static let digestMismatch = Code(name: "digest-mismatch")
        /// A bundle declares a codebook hash (or shape) that its codebook tensor does not have.
        public static let codebookMismatch = Code(name: "codebook-hash-mismatch")
        /// A signature is malformed, or does not verify against the bundle digest.
        public static let badSignature = Code(name: "bad-signature")
        /// A signature is required but the bundle is unsigned or signed only by untrusted keys.
        public static let untrusted = Code(name: "untrusted")
        /// A key file is malformed.
        public static let badKey = Code(name: "bad-key")
        /// A file-system operation failed.
        public static let io = Code(name: "io")
        /// The caller asked for something impossible (bad option value).
        public static let usage = Code(name: "usage")
        /// A remote registry could not be reached, or answered with an HTTP error.
        public static let network = Code(name: "network")
        /// `--offline` asked for a file of a remote registry that is not in the cache.
        public static let notCached = Code(name: "not-cached")
        /// A served registry refused a published bundle that failed its verification.
        public static let invalidBundle = Code(name: "invalid-bundle")
    }

    /// What kind of failure this is.
    public var code: Code
    /// One sentence: what failed, on which input, what to do.
    public var message: String
    /// The underlying error, when there is one.
    public var cause: Error?

    /// An error with its code, message and optional cause.
    public init(_ code: Code, _ message: String, cause: Error? = nil) {
        (self.code, self.message, self.cause) = (code, message, cause)
    }
}

extension RegistryError {
    public var category: ErrorCategory {
        switch code {
        case .notFound, .noRegistry, .notCached: .notFound
        case .corruptIndex, .conflict, .digestMismatch, .codebookMismatch, .badSignature, .untrusted, .badKey, .invalidBundle: .integrity
        case .badReference, .usage: .usage
        default: .other
        }
    }
}
