// Codebook-rarity test-time token pruning (docs/token-pruning.md, reconstructed from the CRAFT paper;
// the algorithm is written out in docs/token-pruning.md).

/// Keeps the visual tokens whose codes are rare in the domain, and within a code the tokens the
/// codebook represents worst or that stand out from their neighbours.
///
/// For an image of `N` tokens and a keep ratio, the pruner keeps exactly `M = round(keepRatio · N)`:
///
/// 1. Each code `k` gets a rarity `ρ_k = 1 / p_dom(k)` from ``CodeFrequencies`` (smoothed).
/// 2. Each code present in the image gets a quota `q_k(γ) = min(c_k, ⌊γ · ρ_k⌋)`, where `c_k` is its
///    count in the image: its `j`-th token becomes available when `γ ≥ j / ρ_k = j · p_k`. Quotas are
///    monotone in `γ`, so a bisection over the breakpoints `j · p_k` finds the smallest `γ` whose
///    quotas total at least `M`.
/// 3. If that `γ` overshoots (several codes reach a breakpoint together), the extra tokens are
///    dropped from the codes with the largest domain probability first (then the largest code index).
/// 4. Within a code, tokens are ranked by `residualNorm + isolationBonus · d`, where `d` is the number
///    of 4-neighbours on the grid carrying a different code; ties go to the lower index.
///
/// The result is deterministic and its indices ascend, so kept tokens keep their order and positions.
///
/// ```swift
/// let pruner = try TokenPruner(frequencies: stats, isolationBonus: 0.05)
/// let kept = try pruner.select(codes: codes, residualNorms: norms, grid: (rows: 16, columns: 16), keepRatio: 0.8)
/// ```
public struct TokenPruner: VisualTokenPruner {
    /// The domain code frequencies behind the rarity weights.
    public let frequencies: CodeFrequencies
    /// The score added per 4-neighbour with a different code, in residual-norm units.
    public let isolationBonus: Float
    /// The additive smoothing constant of the domain probabilities.
    public let smoothing: Double

    /// Creates a pruner.
    ///
    /// - Parameters:
    ///   - frequencies: code counts over a domain set (``CodeFrequencies``).
    ///   - isolationBonus: the score per differing 4-neighbour, in the units of the residual norms
    ///     (0 ranks by residual alone; a tenth of a typical residual norm is a reasonable start).
    ///   - smoothing: the pseudo-count added to every code's domain count.
    /// - Throws: ``CraftCoreError`` (`invalidParameter`) when the bonus is negative or not finite, or
    ///   the smoothing is not positive and finite.
    public init(frequencies: CodeFrequencies, isolationBonus: Float, smoothing: Double = CodeFrequencies.defaultSmoothing) throws {
        guard isolationBonus >= 0, isolationBonus.isFinite else {
            throw CraftCoreError(.invalidParameter, "isolation bonus \(isolationBonus) must be finite and not negative")
        }
        guard smoothing > 0, smoothing.isFinite else {
            throw CraftCoreError(.invalidParameter, "smoothing \(smoothing) must be positive and finite so unseen codes get a finite rarity")
        }
        self.frequencies = frequencies
        self.isolationBonus = isolationBonus
        self.smoothing = smoothing
    }

    /// The indices of the tokens to keep, ascending (see ``TokenPruner`` for the algorithm).
    ///
    /// - Throws: ``CraftCoreError`` when the ratio is outside `(0, 1]`, a code is outside the
    ///   frequencies' codebook, or the per-token inputs disagree.
    public func select(
        codes: [Int], residualNorms: [Float], positions: [GridPosition], grid: (rows: Int, columns: Int), keepRatio: Double
    ) throws -> [Int] {
        let target = try prunedTokenCount(of: codes.count, keepRatio: keepRatio)
        try validatePruningInputs(codes: codes, residualNorms: residualNorms, positions: positions, grid: grid)
        if let bad = codes.firstIndex(where: { !(0..<frequencies.entries).contains($0) }) {
            throw CraftCoreError(
                .shapeMismatch,
                "token \(bad) has code \(codes[bad]) but the code frequencies cover 0..<\(frequencies.entries); use frequencies of the encoder's codebook")
        }
        if target == codes.count { return Array(codes.indices) }
        if target == 0 { return [] }

        // Tokens per code, each code's list ranked best first.
        var members: [Int: [Int]] = [:]
        for (index, code) in codes.enumerated() { members[code, default: []].append(index) }
        let scores = isolationScores(codes: codes, residualNorms: residualNorms, positions: positions)
        var groups: [(code: Int, probability: Double, ranked: [Int])] = []
        for (code, indices) in members {
            let ranked = indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            groups.append((code, try frequencies.probability(of: code, smoothing: smoothing), ranked))
        }
        groups.sort { $0.code < $1.code }

        let quotas = Self.quotas(counts: groups.map(\.ranked.count), probabilities: groups.map(\.probability), target: target)
        var kept: [Int] = []
        kept.reserveCapacity(target)
        for (group, quota) in zip(groups, quotas) { kept += group.ranked.prefix(quota) }
        return kept.sorted()
    }

    /// Each code's score component: residual norm plus the bonus per differing 4-neighbour present.
    private func isolationScores(codes: [Int], residualNorms: [Float], positions: [GridPosition]) -> [Float] {
        var codeAt: [GridPosition: Int] = [:]
        for (position, code) in zip(positions, codes) { codeAt[position] = code }
        return codes.indices.map { index in
            let p = positions[index]
            let neighbours = [
                GridPosition(row: p.row - 1, column: p.column), GridPosition(row: p.row + 1, column: p.column),
                GridPosition(row: p.row, column: p.column - 1), GridPosition(row: p.row, column: p.column + 1),
            ]
            let differing = neighbours.reduce(0) { sum, n in
                guard let other = codeAt[n] else { return sum }
                return other == codes[index] ? sum : sum + 1
            }
            return residualNorms[index] + isolationBonus * Float(differing)
        }
    }

    /// How many tokens of each code to keep so the quotas total exactly `target`.
    ///
    /// The `j`-th token (1-based) of code `k` becomes available at `γ = j · p_k`; the bisection finds
    /// the smallest breakpoint whose quotas total at least `target`, then drops the overshoot (which
    /// sits exactly at that breakpoint, one token per code) from the most common codes first.
    static func quotas(counts: [Int], probabilities: [Double], target: Int) -> [Int] {
        func quota(_ group: Int, at gamma: Double) -> Int {
            let p = probabilities[group]
            var j = min(counts[group], max(0, Int((gamma / p).rounded(.down))))
            while j > 0, Double(j) * p > gamma { j -= 1 }
            while j < counts[group], Double(j + 1) * p <= gamma { j += 1 }
            return j
        }
        func total(at gamma: Double) -> Int { counts.indices.reduce(0) { $0 + quota($1, at: gamma) } }

        var breakpoints: [Double] = []
        for group in counts.indices where counts[group] > 0 {
            for j in 1...counts[group] { breakpoints.append(Double(j) * probabilities[group]) }
        }
        breakpoints = Array(Set(breakpoints)).sorted()
        // Bisection: total(at:) is monotone in γ and reaches the token count at the last breakpoint.
        var low = 0, high = breakpoints.count - 1
        while low < high {
            let middle = (low + high) / 2
            if total(at: breakpoints[middle]) >= target { high = middle } else { low = middle + 1 }
        }
        let gamma = breakpoints[low]
        var quotas = counts.indices.map { quota($0, at: gamma) }
        var excess = quotas.reduce(0, +) - target
        if excess > 0 {
            // The codes whose last available token became available exactly at γ, commonest first.
            let atBreakpoint = counts.indices
                .filter { quotas[$0] > 0 && Double(quotas[$0]) * probabilities[$0] == gamma }
                .sorted { probabilities[$0] != probabilities[$1] ? probabilities[$0] > probabilities[$1] : $0 > $1 }
            for group in atBreakpoint where excess > 0 {
                quotas[group] -= 1
                excess -= 1
            }
        }
        return quotas
    }
}
