// The interface shared by test-time token pruners (docs/token-pruning.md).

/// Chooses which visual tokens of an image to keep at test time.
///
/// Every pruner keeps exactly `M = round(keepRatio · N)` of the `N` tokens (halves round away from
/// zero) and returns their indices ascending, so kept tokens stay in their original order with their
/// positions. ``TokenPruner`` is the codebook-rarity pruner of the paper; ``RandomPruner`` is the
/// control for comparisons.
public protocol VisualTokenPruner: Sendable {
    /// The indices of the tokens to keep, ascending.
    ///
    /// - Parameters:
    ///   - codes: each token's code (the first residual level), `N` values.
    ///   - residualNorms: each token's quantization residual `‖z_e − z_q‖`, `N` values.
    ///   - positions: each token's grid position, `N` distinct positions inside `grid`.
    ///   - grid: the image's patch grid.
    ///   - keepRatio: the fraction of tokens to keep, in `(0, 1]`.
    /// - Throws: ``CraftCoreError`` when the ratio is outside `(0, 1]` or the inputs disagree.
    func select(codes: [Int], residualNorms: [Float], positions: [GridPosition], grid: (rows: Int, columns: Int), keepRatio: Double) throws -> [Int]
}

extension VisualTokenPruner {
    /// The indices to keep for a full raster grid: token `i` sits at row `i / columns`, column
    /// `i % columns`, and there are `rows · columns` tokens.
    ///
    /// - Throws: ``CraftCoreError`` when the ratio is outside `(0, 1]` or the counts do not match the grid.
    public func select(codes: [Int], residualNorms: [Float], grid: (rows: Int, columns: Int), keepRatio: Double) throws -> [Int] {
        guard grid.rows > 0, grid.columns > 0, grid.rows <= Int.max / grid.columns, codes.count == grid.rows * grid.columns else {
            throw CraftCoreError(
                .shapeMismatch,
                "a \(grid.rows)×\(grid.columns) grid needs \(grid.rows)×\(grid.columns) codes but got \(codes.count); pass positions for partial grids")
        }
        let positions = (0..<codes.count).map { GridPosition(row: $0 / grid.columns, column: $0 % grid.columns) }
        return try select(codes: codes, residualNorms: residualNorms, positions: positions, grid: grid, keepRatio: keepRatio)
    }
}

/// The number of tokens a keep ratio keeps out of `count`: `round(keepRatio · count)`, halves away
/// from zero.
///
/// - Throws: ``CraftCoreError`` (`invalidParameter`) when the ratio is not in `(0, 1]`.
public func prunedTokenCount(of count: Int, keepRatio: Double) throws -> Int {
    guard keepRatio > 0, keepRatio <= 1 else {
        throw CraftCoreError(.invalidParameter, "keep ratio \(keepRatio) is outside (0, 1]; pass a fraction such as 0.8 (1 keeps every token)")
    }
    return min(count, Int((keepRatio * Double(count)).rounded(.toNearestOrAwayFromZero)))
}

/// Checks the inputs every pruner shares.
func validatePruningInputs(
    codes: [Int], residualNorms: [Float], positions: [GridPosition], grid: (rows: Int, columns: Int)
) throws {
    guard residualNorms.count == codes.count, positions.count == codes.count else {
        throw CraftCoreError(
            .shapeMismatch,
            "pruning got \(codes.count) codes, \(residualNorms.count) residual norms and \(positions.count) positions; they must be one per token")
    }
    if let bad = residualNorms.firstIndex(where: { !$0.isFinite }) {
        throw CraftCoreError(.shapeMismatch, "token \(bad) has a residual norm of \(residualNorms[bad]); residual norms must be finite")
    }
    var seen = Set<GridPosition>()
    for (index, position) in positions.enumerated() {
        guard (0..<grid.rows).contains(position.row), (0..<grid.columns).contains(position.column) else {
            throw CraftCoreError(
                .shapeMismatch, "token \(index) at (\(position.row), \(position.column)) is outside the \(grid.rows)×\(grid.columns) grid")
        }
        guard seen.insert(position).inserted else {
            throw CraftCoreError(.shapeMismatch, "tokens share the grid position (\(position.row), \(position.column)); each token needs its own")
        }
    }
}

extension VisualTokens {
    /// These tokens pruned to `round(keepRatio · count)`, keeping order and positions.
    ///
    /// Pruners read the first residual level of each token's codes.
    ///
    /// ```swift
    /// let pruned = try tokens.pruned(by: TokenPruner(frequencies: stats), keepRatio: 0.8)
    /// ```
    ///
    /// - Throws: ``CraftCoreError`` when the ratio is outside `(0, 1]` or the pruner rejects the tokens.
    public func pruned(by pruner: some VisualTokenPruner, keepRatio: Double) throws -> VisualTokens {
        let depth = codes.shape[1]
        guard depth > 0 else { throw CraftCoreError(.shapeMismatch, "visual tokens have codes of depth 0; there is no code to prune by") }
        let firstLevel = (0..<count).map { Int(codes.scalars[$0 * depth]) }
        let kept = try pruner.select(codes: firstLevel, residualNorms: residualNorms, positions: positions, grid: grid, keepRatio: keepRatio)
        return try keeping(kept)
    }
}
