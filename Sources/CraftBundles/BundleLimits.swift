// Limits that bound the work and disk space a hostile bundle can cost (docs/bundle-format.md).

/// Limits applied when reading (and packing) bundles.
///
/// Every bundle is treated as hostile: these bound the entry count, path lengths, sizes and the
/// compression ratio before any byte is trusted. The defaults suit real encoder and backend bundles
/// (a few GB); lower them for untrusted sources, raise them for very large language models.
///
/// ```swift
/// var limits = BundleLimits.default
/// limits.maxTotalSize = 64 << 20
/// let verified = try BundleArchive.verify(url, limits: limits)
/// ```
public struct BundleLimits: Sendable, Equatable {
    /// Most entries (files and directories, `craft.json` included). Default 10,000.
    public var maxEntries: Int
    /// Longest entry path in bytes. Default 255.
    public var maxPathLength: Int
    /// Largest single file in bytes. Default 16 GiB.
    public var maxFileSize: Int64
    /// Largest sum of all file sizes (uncompressed), and largest `.craft` file. Default 64 GiB.
    public var maxTotalSize: Int64
    /// Largest ratio of uncompressed bytes to compressed bytes read. Default 1,000.
    public var maxCompressionRatio: Double
    /// Uncompressed bytes always allowed before the ratio is enforced (tiny bundles compress very
    /// well, zip bombs only matter at scale). Default 16 MiB.
    public var compressionRatioGrace: Int64
    /// Largest `craft.json` in bytes. Default 1 MiB.
    public var maxManifestSize: Int64

    public init(
        maxEntries: Int = 10_000, maxPathLength: Int = 255, maxFileSize: Int64 = 16 << 30,
        maxTotalSize: Int64 = 64 << 30, maxCompressionRatio: Double = 1_000, compressionRatioGrace: Int64 = 16 << 20,
        maxManifestSize: Int64 = 1 << 20
    ) {
        self.maxEntries = maxEntries
        self.maxPathLength = maxPathLength
        self.maxFileSize = maxFileSize
        self.maxTotalSize = maxTotalSize
        self.maxCompressionRatio = maxCompressionRatio
        self.compressionRatioGrace = compressionRatioGrace
        self.maxManifestSize = maxManifestSize
    }

    /// The most bytes a bundle's gzip member may decompress to, counted over the whole member (tar
    /// headers, padding and anything after the end-of-archive blocks included): ``maxTotalSize`` plus
    /// ``maxManifestSize``, 4 KiB of headers and padding per entry (``maxEntries``) and one 10 KiB tar
    /// record. Derived, so raising ``maxTotalSize`` raises it.
    public var maxUncompressedSize: Int64 {
        let parts: [Int64] = [
            maxTotalSize, maxManifestSize, Int64(max(maxEntries, 0)).multipliedReportingOverflow(by: 4_096).overflow
                ? .max : Int64(max(maxEntries, 0)) * 4_096,
            10_240,
        ]
        return parts.reduce(Int64(0)) { total, part in
            let (sum, overflow) = total.addingReportingOverflow(max(part, 0))
            return overflow ? .max : sum
        }
    }

    /// The documented defaults.
    public static let `default` = BundleLimits()
}
