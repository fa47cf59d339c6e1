/// The edit distance between short names, for "did you mean" suggestions (commands, options,
/// bundle names).
public enum EditDistance {
    /// The number of insertions, deletions and substitutions that turn `a` into `b`.
    public static func between(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// The candidate nearest to `given`: one that starts with it or that it starts with, else the
    /// nearest by edit distance when that is at most a third of its length (and at least 2); `nil`
    /// when none is near. Ties go to the alphabetically first.
    public static func nearest(to given: String, among candidates: some Sequence<String>) -> String? {
        let ranked = candidates.map { (name: $0, distance: between(given.lowercased(), $0.lowercased())) }
            .sorted { ($0.distance, $0.name) < ($1.distance, $1.name) }
        if let prefixed = ranked.first(where: { $0.name.hasPrefix(given) || given.hasPrefix($0.name) }) { return prefixed.name }
        guard let best = ranked.first, best.distance <= max(2, given.count / 3) else { return nil }
        return best.name
    }
}
