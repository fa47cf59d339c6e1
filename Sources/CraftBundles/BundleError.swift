// The one error type of CraftBundles.
import CraftCore
import Foundation

/// An error about a bundle: its manifest, its archive, its files, or loading it with a runtime.
///
/// Callers switch on ``code``; ``entry`` names the archive entry or manifest field concerned when
/// there is one; ``message`` is one sentence saying what is wrong, where, and what to do.
public struct BundleError: CraftError, Sendable {
    /// The kind of failure. Extensible: new codes may be added in later versions.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The manifest is not valid JSON, misses a field, or a field has a bad value.
        public static let invalidManifest = Code("invalid-manifest")
        /// A version or version range does not parse.
        public static let invalidVersion = Code("invalid-version")
        /// The file is not a gzip-compressed tar, or it is truncated or corrupt.
        public static let corruptArchive = Code("corrupt-archive")
        /// An entry is of a forbidden type (link, device, FIFO) or has a forbidden path.
        public static let unsafeEntry = Code("unsafe-entry")
        /// The same path appears twice.
        public static let duplicateEntry = Code("duplicate-entry")
        /// An entry (or a file in a directory being packed) is not listed in the manifest.
        public static let unlistedEntry = Code("unlisted-entry")
        /// A file listed in the manifest is missing.
        public static let missingEntry = Code("missing-entry")
        /// `craft.json` is missing or is not the first entry.
        public static let manifestNotFirst = Code("manifest-not-first")
        /// A file's size differs from the manifest.
        public static let sizeMismatch = Code("size-mismatch")
        /// A file's SHA-256 differs from the manifest.
        public static let digestMismatch = Code("digest-mismatch")
        /// A limit of ``BundleLimits`` was exceeded.
        public static let limitExceeded = Code("limit-exceeded")
        /// The declared codebook hash differs from the one recomputed from the codebook tensor.
        public static let codebookHashMismatch = Code("codebook-hash-mismatch")
        /// No registered runtime can load the bundle.
        public static let unknownRuntime = Code("unknown-runtime")
        /// A runtime failed to build a model from a bundle.
        public static let runtimeFailed = Code("runtime-failed")
        /// A file or directory could not be read, written or renamed.
        public static let io = Code("io")
        /// A file named by the caller does not exist.
        public static let notFound = Code("not-found")
    }

    public var code: Code
    /// The archive entry or manifest field path concerned (`files[2].sha256`, `weights/model.safetensors`).
    public var entry: String?
    public var message: String
    /// The underlying error, when another layer failed.
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, entry: String? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.entry = entry
        self.cause = cause
    }
}

extension BundleError {
    public var category: ErrorCategory {
        switch code {
        case .notFound, .unknownRuntime: .notFound
        case .invalidVersion: .usage
        case .io, .runtimeFailed: .other
        default: .integrity
        }
    }
}
