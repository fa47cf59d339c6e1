// The pruning ladder as a markdown table (part of ResultsMarkdown.render).
import CraftCore
import Foundation

extension PruningLadder {
    /// The pruning table of `rows` (section ``section``): per keep ratio, the random control (mean and
    /// 95% confidence interval over its seeds), rarity alone, rarity with the residual term, the full
    /// pruner (with its counted FLOPs and measured latency) and the full pruner with original position
    /// ids, for backends A and B. Empty when there are no pruning rows.
    public static func markdown(_ rows: [ResultRow], settings: ExperimentSettings) -> String {
        let pruning = rows.filter { $0.section == section }
        guard !pruning.isEmpty else { return "" }
        let seeds = Set(pruning.compactMap(\.score.prunerSeed)).count
        var out = "\n**Token pruning ladder** with the CRAFT encoder (seed \(pruning.first?.seed ?? 0)) on the strong test split "
        out += "(docs/token-pruning.md). At each keep ratio: random pruning (mean over \(seeds) seeds, 95% confidence interval of the mean in brackets, Student's t); "
        out += "codebook rarity alone; rarity with the relative residual; the full pruner (rarity, residual, isolation); the full pruner with the kept tokens' original position ids. "
        out += "FLOPs are the counted decoder FLOPs of the prompt's forward pass per question (the same for every pruner at a keep ratio); "
        out += "latency is measured wall time per question (encode, prune, answer) with the full pruner over \(settings.latencyImages) images, release build.\n\n"
        out += "| keep | pruner | visual tokens | A accuracy | B accuracy | A FLOPs | A latency (ms) | B FLOPs | B latency (ms) |\n"
        out += "|---|---|---|---|---|---|---|---|---|\n"
        let labels: [String: String] = [
            "none": "none", PrunerKind.random.rawValue: "random", PrunerKind.rarity.rawValue: "rarity",
            PrunerKind.rarityResidual.rawValue: "rarity + residual", PrunerKind.craft.rawValue: "**full** (+ isolation)",
            originalPositionsCondition: "full, original position ids",
        ]
        let conditions = ["none"] + rungs.map { condition($0.pruner, $0.positions) }
        for keep in Array(Set(pruning.map(\.score.keepRatio))).sorted(by: >) {
            for condition in conditions {
                let a = pruning.filter { $0.backend == "A" && $0.score.keepRatio == keep && $0.condition == condition }
                let b = pruning.filter { $0.backend == "B" && $0.score.keepRatio == keep && $0.condition == condition }
                guard let first = (a + b).first else { continue }
                let costs = condition == "none" || condition == PrunerKind.craft.rawValue
                out += String(format: "| %.1f | %@ | %.0f | %@ | %@ | %@ | %@ | %@ | %@ |\n", keep, labels[condition] ?? condition,
                              first.score.visualTokens, accuracy(a), accuracy(b),
                              costs ? flops(a) : "", costs ? latency(a) : "", costs ? flops(b) : "", costs ? latency(b) : "")
            }
        }
        return out
    }

    /// Accuracy in percent: one value, or the mean with its 95% interval over several seeds.
    static func accuracy(_ rows: [ResultRow]) -> String {
        guard let (mean, low, high) = meanWithInterval(rows.map { 100 * $0.score.accuracy }) else { return "—" }
        guard let low, let high else { return String(format: "%.1f", mean) }
        return String(format: "%.1f [%.1f, %.1f]", mean, low, high)
    }

    static func flops(_ rows: [ResultRow]) -> String {
        rows.first.map { String(format: "%.2f M", $0.score.decoderFLOPs / 1e6) } ?? "—"
    }

    static func latency(_ rows: [ResultRow]) -> String {
        rows.first.map { String(format: "%.2f", $0.score.latencyMilliseconds) } ?? "—"
    }
}
