// The pruning table of the miniature (docs/experiment.md, docs/token-pruning.md): a ladder of pruners
// at each keep ratio, from the random control (several seeds) through rarity alone and rarity with the
// residual term to the full pruner, and the full pruner with the kept tokens' original position ids.
import CraftCore
import CraftTraining
import Foundation

extension PrunerKind {
    /// The terms of ``TokenPruner`` this rung uses (`nil` for the random control).
    public var components: PruningComponents? {
        switch self {
        case .craft: .all
        case .rarity: [.rarity]
        case .rarityResidual: [.rarity, .residual]
        case .random: nil
        }
    }

    /// Prunes an image's tokens to `keepRatio` with this rung: `prune(tokens, imageIndex)`. The random
    /// control draws each image's subset from its own generator, seeded by `seed` and the image's index
    /// (so different seeds never share a subset by an offset of images); a ratio of 1 keeps everything.
    func pruning(
        frequencies: CodeFrequencies, keepRatio: Double, seed: UInt64
    ) throws -> (VisualTokens, Int) throws -> VisualTokens {
        _ = try prunedTokenCount(of: 1, keepRatio: keepRatio)
        if keepRatio >= 1 { return { tokens, _ in tokens } }
        guard let components else {
            return { tokens, image in try tokens.pruned(by: RandomPruner(seed: seed << 32 &+ UInt64(image)), keepRatio: keepRatio) }
        }
        let pruner = try TokenPruner(frequencies: frequencies, components: components)
        return { tokens, _ in try tokens.pruned(by: pruner, keepRatio: keepRatio) }
    }
}

/// The pruning ladder: which pruners run at which keep ratio, and the rows they give.
public enum PruningLadder {
    /// The table section of the ladder's rows.
    public static let section = "pruning"

    /// The row condition of the full pruner with original position ids.
    public static let originalPositionsCondition = "craft+positions"

    /// The rungs below keep ratio 1, in table order, each with the position ids it runs with.
    public static let rungs: [(pruner: PrunerKind, positions: VisualPositionIDs)] = [
        (.random, .consecutive), (.rarity, .consecutive), (.rarityResidual, .consecutive), (.craft, .consecutive), (.craft, .original),
    ]

    /// The condition a row of `pruner` with `positions` is filed under.
    public static func condition(_ pruner: PrunerKind, _ positions: VisualPositionIDs) -> String {
        positions == .original ? originalPositionsCondition : pruner.rawValue
    }

    /// Scores every rung at every keep ratio of the settings for one pair: at keep 1 one row (nothing
    /// pruned), below it the random control once per ``ExperimentSettings/pruningRandomSeeds`` and
    /// every other rung once. Only the full pruner with consecutive ids is timed (latency column).
    ///
    /// - Parameters:
    ///   - variant: the adaptation run whose encoder is scored (its seed and command label the rows).
    ///   - backendName: `A` or `B`.
    public static func rows(
        encoder: URL, variant: AdaptationVariant, backendName: String, backend: URL, test: TrainingDataset, pixels: PixelCache,
        context: ExperimentContext
    ) throws -> [ResultRow] {
        let settings = context.settings
        let pair = try LoadedPair(encoder: encoder, backend: backend)
        var rows: [ResultRow] = []
        func score(_ keep: Double, _ pruner: PrunerKind, _ positions: VisualPositionIDs, seed: UInt64 = 0) throws {
            let timed = pruner == .craft && positions == .consecutive ? settings.latencyImages : 0
            let result = try pair.score(
                test, pixels: pixels, keepRatio: keep, pruner: pruner, seed: seed, timedImages: timed, visualPositionIDs: positions)
            let flag = positions == .original ? " --keep-position-ids" : ""
            rows.append(ResultRow(
                section: section, condition: keep >= 1 ? "none" : condition(pruner, positions), backend: backendName,
                domain: Domain.strong.rawValue, seed: variant.seed, score: result,
                command: variant.command + " && craft eval --keep-ratio \(keep)\(flag)"))
            context.log(String(format: "pruning %@ keep %.1f %@%@: %.1f %%", backendName, keep, condition(pruner, positions),
                               pruner == .random ? " seed \(seed)" : "", 100 * result.accuracy))
        }
        for keep in settings.pruningKeepRatios {
            if keep >= 1 {
                try score(keep, .craft, .consecutive)
                continue
            }
            for (pruner, positions) in rungs {
                if pruner == .random {
                    for seed in settings.pruningRandomSeeds { try score(keep, pruner, positions, seed: seed) }
                } else {
                    try score(keep, pruner, positions)
                }
            }
        }
        return rows
    }

    /// The mean of `values` with a two-sided 95% confidence interval of the mean (Student's t with
    /// `n − 1` degrees of freedom: `mean ± t · s / √n`); `nil` bounds for fewer than two values.
    public static func meanWithInterval(_ values: [Double]) -> (mean: Double, low: Double?, high: Double?)? {
        guard !values.isEmpty else { return nil }
        let n = Double(values.count)
        let mean = values.reduce(0, +) / n
        guard values.count > 1 else { return (mean, nil, nil) }
        let deviation = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)).squareRoot()
        let half = studentT975(degreesOfFreedom: values.count - 1) * deviation / n.squareRoot()
        return (mean, mean - half, mean + half)
    }

    /// The 0.975 quantile of Student's t distribution (1.960, the normal one, beyond 30 degrees).
    static func studentT975(degreesOfFreedom: Int) -> Double {
        let table: [Double] = [
            12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
            2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
            2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
        ]
        return (1...table.count).contains(degreesOfFreedom) ? table[degreesOfFreedom - 1] : 1.960
    }
}
