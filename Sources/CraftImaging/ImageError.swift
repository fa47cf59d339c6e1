// CraftImaging's one error type (a struct with an extensible code, like every module's error).

/// An error raised while reading, writing or transforming an image.
///
/// Callers switch on ``code``; ``message`` is one sentence that says what is wrong, names the file
/// (or the label given to in-memory data), and says what to do. Decoding never crashes: every bad
/// input ends here.
public struct ImageError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure. Extensible: new codes may be added, so switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// The file does not exist.
        public static let notFound = Code(name: "not-found")
        /// The bytes are not PNG or JPEG, or use a variant Craft does not decode (for example CMYK JPEG).
        public static let unsupportedFormat = Code(name: "unsupported-format")
        /// The bytes claim to be PNG or JPEG but are malformed (bad CRC, bad Huffman data, bad header).
        public static let corrupt = Code(name: "corrupt")
        /// The data ends before the image is complete.
        public static let truncated = Code(name: "truncated")
        /// The image or file exceeds the configured ``ImageLimits``.
        public static let tooLarge = Code(name: "too-large")
        /// Reading or writing the file failed at the operating-system level.
        public static let io = Code(name: "io")
        /// A caller-supplied value is out of range (size, sample count, channel count, mean/std length).
        public static let invalidArgument = Code(name: "invalid-argument")
    }

    /// What kind of failure this is.
    public var code: Code
    /// One sentence: what failed, on which input, what to do.
    public var message: String
    /// The file path, or the label of in-memory data, that the error is about (when there is one).
    public var source: String?
    /// The lower-level error, when there was one (for example a Foundation file error).
    public var cause: (any Error)?

    /// Creates an error.
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: One sentence saying what failed, where, and what to do.
    ///   - source: The file or data label the error is about.
    ///   - cause: The underlying error, if any.
    public init(_ code: Code, _ message: String, source: String? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.source = source
        self.cause = cause
    }

    public var description: String { message }

    /// The error for an image file its codec library refused: ``Code/truncated`` when `truncation` is
    /// given (what is known of where the data ends, as text to put before the library's reason, or
    /// empty), else ``Code/corrupt`` naming the `stage` that failed.
    static func decoding(
        _ name: String, format: String, library: String, detail: String, stage: String, truncation: String?
    ) -> ImageError {
        if let truncation {
            return ImageError(
                .truncated, "\(name) is a truncated \(format) (\(truncation)\(library): \(detail)); re-download or re-export the file.",
                source: name)
        }
        return ImageError(
            .corrupt, "\(name) is a corrupt \(format): \(library) failed reading its \(stage) (\(detail)); re-export the file.",
            source: name)
    }
}

#if canImport(Foundation)
import Foundation

extension ImageError: LocalizedError {
    public var errorDescription: String? { message }
}
#endif
