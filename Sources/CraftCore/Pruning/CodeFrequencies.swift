// Code frequencies over a domain set: the p_dom(k) behind the rarity weights of test-time token
// pruning (docs/token-pruning.md).

extension CraftCoreError.Code {
    /// A parameter is outside its valid range (a keep ratio, a smoothing constant, a decoder shape).
    public static let invalidParameter = CraftCoreError.Code(name: "invalid-parameter")
}

/// How often each code of a codebook occurs over a domain set of images.
///
/// Pruning weighs a code by its rarity `ρ_k = 1 / p_dom(k)`. Counts are collected with
/// ``add(codes:)`` (for example by `craft stats` over a folder of images) and stored in an encoder
/// bundle as JSON, `{"entries": K, "counts": [...], "total": N}`. ``probability(of:smoothing:)`` uses
/// additive (Laplace) smoothing so a code never seen in the domain still has a finite rarity.
///
/// ```swift
/// var frequencies = CodeFrequencies(entries: 1024)
/// try frequencies.add(codes: [3, 3, 17])
/// let rarity = 1 / frequencies.probability(of: 17)
/// ```
public struct CodeFrequencies: Sendable, Equatable, Codable {
    /// The number of codes K.
    public let entries: Int
    /// How many times each code was seen, `entries` values.
    public private(set) var counts: [Int]
    /// The number of codes seen, the sum of ``counts``.
    public private(set) var total: Int

    /// The additive smoothing constant used when none is given (Laplace: one pseudo-count per code).
    public static let defaultSmoothing: Double = 1

    /// Creates empty counts for a codebook of `entries` codes.
    ///
    /// - Precondition: `entries > 0` (a programming error, not data).
    public init(entries: Int) {
        precondition(entries > 0, "a codebook has at least one entry")
        self.entries = entries
        self.counts = Array(repeating: 0, count: entries)
        self.total = 0
    }

    /// Creates frequencies from stored counts, validating them.
    ///
    /// - Throws: ``CraftCoreError`` (`malformed`) when `entries` is not positive, `counts` does not
    ///   hold `entries` values, a count is negative, or the counts overflow.
    public init(entries: Int, counts: [Int]) throws {
        guard entries > 0 else {
            throw CraftCoreError(.malformed, "code frequencies declare \(entries) entries; a codebook has at least one entry")
        }
        guard counts.count == entries else {
            throw CraftCoreError(
                .malformed, "code frequencies declare \(entries) entries but hold \(counts.count) counts; recompute them with `craft stats`")
        }
        var total = 0
        for (code, count) in counts.enumerated() {
            guard count >= 0 else {
                throw CraftCoreError(.malformed, "code frequencies hold a negative count \(count) for code \(code); recompute them")
            }
            let (sum, overflow) = total.addingReportingOverflow(count)
            guard !overflow else { throw CraftCoreError(.malformed, "code frequencies overflow when summed; recompute them") }
            total = sum
        }
        self.entries = entries
        self.counts = counts
        self.total = total
    }

    /// Counts each of `codes` once.
    ///
    /// - Throws: ``CraftCoreError`` (`shapeMismatch`) when a code is outside `0..<entries`; nothing
    ///   is counted then.
    public mutating func add(codes: some Sequence<Int>) throws {
        let codes = Array(codes)
        if let bad = codes.first(where: { !(0..<entries).contains($0) }) {
            throw CraftCoreError(.shapeMismatch, "code \(bad) is outside the codebook's 0..<\(entries); count codes of the same codebook")
        }
        for code in codes { counts[code] += 1 }
        total += codes.count
    }

    /// The smoothed domain probability `(count_k + α) / (total + α·K)` of `code`.
    ///
    /// - Parameters:
    ///   - code: a code in `0..<entries`.
    ///   - smoothing: the pseudo-count α added to every code, positive and finite.
    /// - Throws: ``CraftCoreError`` when the code is out of range or α is not positive and finite.
    public func probability(of code: Int, smoothing: Double = CodeFrequencies.defaultSmoothing) throws -> Double {
        guard (0..<entries).contains(code) else {
            throw CraftCoreError(.shapeMismatch, "code \(code) is outside the codebook's 0..<\(entries)")
        }
        guard smoothing > 0, smoothing.isFinite else {
            throw CraftCoreError(.invalidParameter, "smoothing \(smoothing) must be positive and finite so unseen codes get a finite rarity")
        }
        return (Double(counts[code]) + smoothing) / (Double(total) + smoothing * Double(entries))
    }

    /// The rarity `ρ_k = 1 / p_dom(k)` of `code` (smoothed, so always finite).
    public func rarity(of code: Int, smoothing: Double = CodeFrequencies.defaultSmoothing) throws -> Double {
        1 / (try probability(of: code, smoothing: smoothing))
    }

    private enum CodingKeys: String, CodingKey {
        case entries, counts, total
    }

    /// Decodes `{"entries": K, "counts": [...], "total": N}`, checking that there are K non-negative
    /// counts summing to N.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let entries = try container.decode(Int.self, forKey: .entries)
        let counts = try container.decode([Int].self, forKey: .counts)
        let total = try container.decode(Int.self, forKey: .total)
        do {
            try self.init(entries: entries, counts: counts)
        } catch let error as CraftCoreError {
            throw DecodingError.dataCorruptedError(forKey: .counts, in: container, debugDescription: error.message)
        }
        guard self.total == total else {
            throw DecodingError.dataCorruptedError(
                forKey: .total, in: container,
                debugDescription: "code frequencies declare a total of \(total) but their counts sum to \(self.total); recompute them")
        }
    }

    /// Encodes `{"entries": K, "counts": [...], "total": N}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(entries, forKey: .entries)
        try container.encode(counts, forKey: .counts)
        try container.encode(total, forKey: .total)
    }
}
