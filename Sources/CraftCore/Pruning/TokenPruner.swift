// Codebook-rarity test-time token pruning (reconstructed from the CRAFT paper; the algorithm is
// written out in docs/token-pruning.md).

/// Which terms of ``TokenPruner``'s selection are switched on (docs/token-pruning.md, "Switches").
///
/// ```swift
/// let rarityOnly = try TokenPruner(frequencies: stats, components: .rarity)
/// let full = try TokenPruner(frequencies: stats)            // .all
/// ```
public struct PruningComponents: OptionSet, Sendable, Hashable, Codable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Codes rare in the domain get larger quotas. Off: every code weighs the same (uniform quotas).
    public static let rarity = PruningComponents(rawValue: 1 << 0)
    /// Within a code, tokens the codebook represents worst (large residual, relative to the image's
    /// mean residual) come first. Off: no residual term.
    public static let residual = PruningComponents(rawValue: 1 << 1)
    /// Within a code, tokens whose 4-neighbours carry other codes come first. Off: no isolation term.
    public static let isolation = PruningComponents(rawValue: 1 << 2)
    /// Rarity, residual and isolation: the paper's pruner.
    public static let all: PruningComponents = [.rarity, .residual, .isolation]
}

/// Keeps the visual tokens whose codes are rare in the domain, and within a code the tokens the
/// codebook represents worst or that stand out from their neighbours.
///
/// For an image of `N` tokens and a keep ratio, the pruner keeps exactly `M = round(keepRatio · N)`:
///
/// 1. Each code `k` gets a rarity `ρ_k = 1 / p_dom(k)` from ``CodeFrequencies`` (smoothed); with
///    ``PruningComponents/rarity`` off every code gets the same rarity.
/// 2. Each code present in the image gets a quota `q_k(γ) = min(c_k, ⌊γ · ρ_k⌋)`, where `c_k` is its
///    count in the image: its `j`-th token becomes available when `γ ≥ j / ρ_k = j · p_k`. Quotas are
///    monotone in `γ`, so a bisection over the breakpoints `j · p_k` finds the smallest `γ` whose
///    quotas total at least `M`.
/// 3. If that `γ` overshoots (several codes reach a breakpoint together), the extra tokens are
///    dropped from the codes with the largest domain probability first (then the largest code index).
/// 4. Within a code, tokens are ranked by the scale-free score `r / r̄ + isolationWeight · d`, where
///    `r̄` is the mean residual norm over the image's tokens (so scaling every residual by `c > 0`
///    changes nothing) and `d` the number of 4-neighbours on the grid carrying a different code; each
///    term can be switched off. Ties go to the lower index.
///
/// The result is deterministic and its indices ascend, so kept tokens keep their order and grid positions.
///
/// ```swift
/// let pruner = try TokenPruner(frequencies: stats)
/// let kept = try pruner.select(codes: codes, residualNorms: norms, grid: (rows: 16, columns: 16), keepRatio: 0.8)
/// ```
public struct TokenPruner: VisualTokenPruner {
    /// The domain code frequencies behind the rarity weights.
    public let frequencies: CodeFrequencies
    /// Which terms are on.
    public let components: PruningComponents
    /// The score added per differing 4-neighbour, in units of the image's mean residual norm.
    public let isolationWeight: Float
    /// The additive smoothing constant of the domain probabilities.
    public let smoothing: Double

    /// The default ``isolationWeight``: 0.1 of the image's mean residual per differing 4-neighbour.
    ///
    /// A token whose four neighbours all carry other codes gains 0.4 mean residuals: enough to move
    /// it ahead of same-code tokens whose residuals are up to 40% of the mean larger (residual norms
    /// within an image typically spread over ±40% of their mean), never enough to beat a token whose
    /// residual is twice its own.
    public static let defaultIsolationWeight: Float = 0.1

    /// Creates a pruner.
    ///
    /// - Parameters:
    ///   - frequencies: code counts over a domain set (``CodeFrequencies``).
    ///   - components: the terms to use (all by default; see ``PruningComponents``).
    ///   - isolationWeight: the score per differing 4-neighbour, in units of the image's mean residual
    ///     norm (``defaultIsolationWeight`` by default; 0 ranks by residual alone).
    ///   - smoothing: the pseudo-count added to every code's domain count.
    /// - Throws: ``CraftCoreError`` (`invalidParameter`) when the weight is negative or not finite, or
    ///   the smoothing is not positive and finite.
    public init(
        frequencies: CodeFrequencies, components: PruningComponents = .all, isolationWeight: Float = defaultIsolationWeight,
        smoothing: Double = CodeFrequencies.defaultSmoothing
    ) throws {
        guard isolationWeight >= 0, isolationWeight.isFinite else {
            throw CraftCoreError(.invalidParameter, "isolation weight \(isolationWeight) must be finite and not negative; use 0.1 (the default) or 0 to ignore neighbours")
        }
        guard smoothing > 0, smoothing.isFinite else {
            throw CraftCoreError(.invalidParameter, "smoothing \(smoothing) must be positive and finite so unseen codes get a finite rarity")
        }
        self.frequencies = frequencies
        self.components = components
        self.isolationWeight = isolationWeight
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
        let scores = withinCodeScores(codes: codes, residualNorms: residualNorms, positions: positions)
        var groups: [(code: Int, probability: Double, ranked: [Int])] = []
        for (code, indices) in members {
            let ranked = indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            let probability = components.contains(.rarity) ? try frequencies.probability(of: code, smoothing: smoothing) : 1
            groups.append((code, probability, ranked))
        }
        groups.sort { $0.code < $1.code }

        let quotas = Self.quotas(counts: groups.map(\.ranked.count), probabilities: groups.map(\.probability), target: target)
        var kept: [Int] = []
        kept.reserveCapacity(target)
        for (group, quota) in zip(groups, quotas) { kept += group.ranked.prefix(quota) }
        return kept.sorted()
    }

    /// Each token's within-code score: `r / r̄` (residual on) plus `isolationWeight · d` (isolation on).
    ///
    /// `r̄` is the mean residual norm of the image's tokens, or 1 when that is 0 (every residual 0).
    /// Computed in `Double` so that the ranking does not hinge on `Float` rounding.
    func withinCodeScores(codes: [Int], residualNorms: [Float], positions: [GridPosition]) -> [Double] {
        var scores = [Double](repeating: 0, count: codes.count)
        if components.contains(.residual), !residualNorms.isEmpty {
            let mean = residualNorms.reduce(0.0) { $0 + Double($1) } / Double(residualNorms.count)
            let scale = mean > 0 && mean.isFinite ? mean : 1
            for index in scores.indices { scores[index] = Double(residualNorms[index]) / scale }
        }
        if components.contains(.isolation), isolationWeight > 0 {
            var codeAt: [GridPosition: Int] = [:]
            for (position, code) in zip(positions, codes) { codeAt[position] = code }
            for index in scores.indices {
                let p = positions[index]
                let neighbours = [
                    GridPosition(row: p.row - 1, column: p.column), GridPosition(row: p.row + 1, column: p.column),
                    GridPosition(row: p.row, column: p.column - 1), GridPosition(row: p.row, column: p.column + 1),
                ]
                let differing = neighbours.filter { codeAt[$0].map { $0 != codes[index] } ?? false }.count
                scores[index] += Double(isolationWeight) * Double(differing)
            }
        }
        return scores
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
