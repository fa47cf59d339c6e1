import Foundation

/// One search result.
public struct SearchHit: Sendable, Equatable {
    /// The bundle (newest visible version of its name).
    public var bundle: ResolvedBundle
    /// The rank score: higher is better (tiers in ``SearchRanking``).
    public var score: Int
    /// Why it matched, e.g. `name-prefix`, `domain:radiology`.
    public var reasons: [String]
}

/// How `craft-registry search` ranks bundles.
///
/// The whole query is first compared with the name: exact name (1000) > name prefix (800) > name
/// contains (600). A query of at least 6 hex digits (optionally `sha256:`-prefixed) that prefixes
/// the codebook hash or the bundle digest scores 700. Then each whitespace-separated term scores on
/// its own: equal to a domain tag, the kind or the runtime id (300; a prefix of one: 150), a word of
/// the summary (100; a prefix of one: 50), part of the name (60). A bundle matches when the name tier
/// or hash matched, or when every term matched something; ties break by name.
public enum SearchRanking {
    public static let exactName = 1000
    public static let namePrefix = 800
    public static let hashPrefix = 700
    public static let nameContains = 600
    public static let tagEqual = 300
    public static let tagPrefix = 150
    public static let summaryWord = 100
    public static let termInName = 60
    public static let summaryPrefix = 50

    /// The score of one bundle for `query`, or `nil` when it does not match.
    public static func score(query: String, name: String, record: IndexedVersion) -> (score: Int, reasons: [String])? {
        let needle = query.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        guard !needle.isEmpty else { return (0, []) }
        var score = 0
        var reasons: [String] = []
        var wholeMatched = false
        if name == needle {
            score += exactName; reasons.append("name"); wholeMatched = true
        } else if name.hasPrefix(needle) {
            score += namePrefix; reasons.append("name-prefix"); wholeMatched = true
        } else if name.contains(needle) {
            score += nameContains; reasons.append("name-contains"); wholeMatched = true
        }
        let hex = needle.hasPrefix("sha256:") ? String(needle.dropFirst(7)) : needle
        if hex.count >= 6, hex.allSatisfy(\.isHexDigit) {
            if record.codebook.hash.lowercased().hasPrefix("sha256:" + hex) {
                score += hashPrefix; reasons.append("codebook-hash"); wholeMatched = true
            } else if record.digest.lowercased().hasPrefix("sha256:" + hex) {
                score += hashPrefix; reasons.append("digest"); wholeMatched = true
            }
        }
        let terms = needle.split(whereSeparator: \.isWhitespace).map(String.init)
        let tags: [(String, String)] = record.domains.map { ("domain", $0.lowercased()) }
            + [("kind", record.kind.rawValue), ("runtime", record.runtime.id.lowercased())]
        let summaryWords = record.summary.lowercased()
            .split { !$0.isLetter && !$0.isNumber && $0 != "-" && $0 != "_" }.map(String.init)
        var everyTermMatched = true
        for term in terms {
            var best = 0
            var reason = ""
            for (label, tag) in tags {
                if tag == term, tagEqual > best { best = tagEqual; reason = "\(label):\(tag)" }
                else if tag.hasPrefix(term), tagPrefix > best { best = tagPrefix; reason = "\(label):\(tag)" }
            }
            if best < summaryWord, summaryWords.contains(term) { best = summaryWord; reason = "summary:\(term)" }
            if best < termInName, terms.count > 1, name.contains(term) { best = termInName; reason = "name:\(term)" }
            if best < summaryPrefix, summaryWords.contains(where: { $0.hasPrefix(term) }) {
                best = summaryPrefix; reason = "summary:\(term)"
            }
            if best == 0 { everyTermMatched = false } else { score += best; reasons.append(reason) }
        }
        guard wholeMatched || everyTermMatched else { return nil }
        return (score, reasons)
    }

    /// Best first; equal scores by name.
    public static func sorted(_ hits: [SearchHit]) -> [SearchHit] {
        hits.sorted { $0.score != $1.score ? $0.score > $1.score : $0.bundle.name < $1.bundle.name }
    }
}
