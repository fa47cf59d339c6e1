import Crypto
import Foundation

/// The distance a codebook is searched with.
public enum CodebookMetric: String, Codable, Sendable, CaseIterable {
    /// Squared Euclidean distance.
    case l2
    /// Cosine distance: vectors and codes are compared after L2 normalisation.
    case cosine

    /// The value written into the codebook hash (docs/codebook-hash.md).
    var hashCode: UInt32 { self == .l2 ? 0 : 1 }
}

/// The codebook hash, the identity that decides whether an encoder and a backend can be paired.
///
/// `"sha256:" + hex(SHA-256(bytes))` where the bytes are, in order (docs/codebook-hash.md; MUST stay
/// stable; worked example in `docs/codebook-hash.md`):
/// 1. ASCII `CRAFT-CODEBOOK` and one zero byte;
/// 2. UInt32 little-endian format version 1;
/// 3. UInt32 LE metric (0 = l2, 1 = cosine);
/// 4. UInt32 LE depth, UInt64 LE entries K, UInt64 LE dimension D;
/// 5. `depth·K·D` Float32 LE values, row-major `[depth][K][D]`, with -0.0 written as +0.0.
///
/// A codebook holding NaN or infinity has no hash: it is rejected.
public enum CodebookHash {
    /// The current format version written into the hash.
    public static let formatVersion: UInt32 = 1

    /// The bytes the hash is computed over (exposed for documentation and tests).
    public static func canonicalBytes(
        values: some Collection<Float>, entries: Int, dimension: Int, depth: Int, metric: CodebookMetric
    ) throws -> [UInt8] {
        guard entries > 0, dimension > 0, depth > 0 else {
            throw CraftCoreError(
                .invalidCodebook,
                "a codebook needs at least one entry, one dimension and one level (got K=\(entries), D=\(dimension), depth=\(depth))")
        }
        guard values.count == depth * entries * dimension else {
            throw CraftCoreError(
                .invalidCodebook,
                "the codebook holds \(values.count) values but depth × K × D = \(depth) × \(entries) × \(dimension) = \(depth * entries * dimension)")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(15 + 4 * 3 + 8 * 2 + values.count * 4)
        bytes.append(contentsOf: Array("CRAFT-CODEBOOK".utf8))
        bytes.append(0)
        func append<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        append(formatVersion)
        append(metric.hashCode)
        append(UInt32(depth))
        append(UInt64(entries))
        append(UInt64(dimension))
        for (index, value) in values.enumerated() where !value.isFinite {
            throw CraftCoreError(
                .invalidCodebook,
                "the codebook holds \(value) at level \(index / (entries * dimension)), entry \((index / dimension) % entries), component \(index % dimension); codebooks must be finite")
        }
        for value in values {
            let canonical: Float = value == 0 ? 0 : value  // -0.0 hashes as +0.0
            append(canonical.bitPattern)
        }
        return bytes
    }

    /// The hash of a codebook given as `depth·K·D` values in row-major `[depth][K][D]` order.
    ///
    /// - Throws: ``CraftCoreError/Code/invalidCodebook`` when sizes disagree or a value is not finite.
    public static func compute(
        values: some Collection<Float>, entries: Int, dimension: Int, depth: Int = 1, metric: CodebookMetric
    ) throws -> String {
        let bytes = try canonicalBytes(values: values, entries: entries, dimension: dimension, depth: depth, metric: metric)
        computations?.increment()
        return "sha256:" + SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// Counts the hashes computed in the current task while bound, so tests can prove that a run
    /// hashes its codebook once (the opener's hash is reused by the checker and the runtimes):
    ///
    /// ```swift
    /// let count = CodebookHash.Count()
    /// try CodebookHash.$computations.withValue(count) { try openCheckAndLoad() }
    /// #expect(count.value == 1)
    /// ```
    @TaskLocal package static var computations: Count?

    /// A thread-safe count of hash computations (``computations``).
    package final class Count: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0

        /// A count at zero.
        package init() {}

        /// The hashes counted so far.
        package var value: Int { lock.withLock { count } }

        func increment() { lock.withLock { count += 1 } }
    }
}
