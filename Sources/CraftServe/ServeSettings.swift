// What craft serve accepts and how it batches: limits with documented defaults (docs/serve.md).
import Foundation

/// The server's limits and policies. Every value has a documented default; `craft serve` sets them
/// from its options.
public struct ServeSettings: Sendable {
    /// The address to bind: loopback unless asked otherwise.
    public var host = "127.0.0.1"
    /// The port; 0 picks a free one (printed at start-up).
    public var port = 8080
    /// The largest request body, in bytes (16 MiB).
    public var maximumBodyBytes = 16 << 20
    /// The largest decoded image, in pixels (width x height; 16.7 million, 4096 x 4096).
    public var maximumImagePixels = 4096 * 4096
    /// The most tokens a request may ask for; also what it gets when it does not say.
    public var maximumTokens = 256
    /// The most seconds a request may take from arrival to its last token; 504 after that.
    public var requestTimeout: Double = 300
    /// The most requests waiting for a decoding slot per pair; 429 with `Retry-After` beyond it.
    public var maximumQueue = 256
    /// The most sequences decoded together per pair.
    public var maximumBatch = 16
    /// A directory whose files requests may name as images (`file://` URLs or absolute paths);
    /// `nil` refuses local paths.
    public var allowedFiles: URL?
    /// Whether `http(s)://` image URLs are fetched (refused by default).
    public var allowRemoteImages = false
    /// The largest remote image, in bytes, and how long to wait for it.
    public var maximumRemoteImageBytes = 16 << 20
    public var remoteImageTimeout: Double = 20

    /// Default settings.
    public init() {}
}
