// A seeded random token pruner: the control for test-time pruning comparisons (docs/token-pruning.md).

import TensorCore

/// Keeps a uniformly random subset of `round(keepRatio · N)` tokens, reproducibly for a seed.
///
/// The control against which ``TokenPruner`` is compared: same interface, same count, no knowledge
/// of codes. The generator is SplitMix64 seeded with ``seed`` at every call, so the same inputs
/// give the same selection on every platform.
public struct RandomPruner: VisualTokenPruner {
    /// The seed of the generator.
    public let seed: UInt64

    /// Creates a pruner with `seed`.
    public init(seed: UInt64) { self.seed = seed }

    /// A random subset of the tokens, ascending.
    ///
    /// - Throws: ``CraftCoreError`` when the ratio is outside `(0, 1]` or the inputs disagree.
    public func select(
        codes: [Int], residualNorms: [Float], positions: [GridPosition], grid: (rows: Int, columns: Int), keepRatio: Double
    ) throws -> [Int] {
        let target = try prunedTokenCount(of: codes.count, keepRatio: keepRatio)
        try validatePruningInputs(codes: codes, residualNorms: residualNorms, positions: positions, grid: grid)
        var generator = SplitMix64(seed: seed)
        var indices = Array(codes.indices)
        // Partial Fisher–Yates: the first `target` slots become a uniform sample.
        for slot in 0..<target {
            let remaining = UInt64(indices.count - slot)
            let pick = slot + Int(generator.next() % remaining)
            indices.swapAt(slot, pick)
        }
        return indices.prefix(target).sorted()
    }
}
