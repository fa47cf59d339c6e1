import TensorCore

/// Where a visual token sits on its image's patch grid.
public struct GridPosition: Sendable, Hashable, Codable {
    /// The patch row, 0 at the top.
    public var row: Int
    /// The patch column, 0 at the left.
    public var column: Int

    /// Creates a position.
    public init(row: Int, column: Int) {
        self.row = row
        self.column = column
    }
}

/// The discrete tokens a ``VisionEncoder`` emits for one image: what a ``LanguageBackend`` reads.
///
/// Tokens are in their original (raster) order with their grid positions, which survive test-time
/// pruning (docs/token-pruning.md): a pruned set keeps the order and positions of the tokens it keeps.
public struct VisualTokens: Sendable {
    /// The hash of the codebook the codes index (``CodebookSpace/hash``).
    public var codebookHash: String
    /// The patch grid of the image before any pruning: `rows × columns` tokens.
    public var grid: (rows: Int, columns: Int)
    /// The codes, shaped `[count, depth]`.
    public var codes: IndexTensor
    /// Each token's position on the grid, `count` entries.
    public var positions: [GridPosition]
    /// `‖z_e − z_q‖` per token, `count` entries (pruning keeps large residuals first).
    public var residualNorms: [Float]
    /// The continuous codebook-space vectors, shaped `[count, D]`, when the encoder provides them:
    /// for training, the straight-through `z_q_hat` whose gradient flows back into the encoder.
    /// `nil` means a backend embeds ``codes`` through the codebook.
    public var features: Tensor?

    /// The number of tokens.
    public var count: Int { positions.count }

    /// Creates tokens, checking that every per-token field has the same count.
    ///
    /// - Throws: ``CraftCoreError`` (`shapeMismatch`) naming the field whose count differs.
    public init(
        codebookHash: String, grid: (rows: Int, columns: Int), codes: IndexTensor, positions: [GridPosition],
        residualNorms: [Float], features: Tensor? = nil
    ) throws {
        let count = positions.count
        guard codes.shape.count == 2, codes.shape[0] == count else {
            throw CraftCoreError(.shapeMismatch, "visual tokens have \(count) positions but codes shaped \(codes.shape); codes must be [\(count), depth]")
        }
        guard residualNorms.count == count else {
            throw CraftCoreError(.shapeMismatch, "visual tokens have \(count) positions but \(residualNorms.count) residual norms")
        }
        if let features, features.shape.count != 2 || features.shape[0] != count {
            throw CraftCoreError(.shapeMismatch, "visual tokens have \(count) positions but features shaped \(features.shape); features must be [\(count), D]")
        }
        for position in positions where !(0..<grid.rows).contains(position.row) || !(0..<grid.columns).contains(position.column) {
            throw CraftCoreError(.shapeMismatch, "token position (\(position.row), \(position.column)) is outside the \(grid.rows)×\(grid.columns) grid")
        }
        self.codebookHash = codebookHash
        self.grid = grid
        self.codes = codes
        self.positions = positions
        self.residualNorms = residualNorms
        self.features = features
    }

    /// The tokens at `indices`, kept in their original order (duplicates removed).
    ///
    /// - Throws: ``CraftCoreError`` (`shapeMismatch`) when an index is out of range.
    public func keeping(_ indices: some Sequence<Int>) throws -> VisualTokens {
        let kept = Array(Set(indices)).sorted()
        if let bad = kept.first(where: { !(0..<count).contains($0) }) {
            throw CraftCoreError(.shapeMismatch, "token index \(bad) is outside 0..<\(count)")
        }
        let depth = codes.shape[1]
        var codeScalars: [Int32] = []
        codeScalars.reserveCapacity(kept.count * depth)
        for index in kept { codeScalars += codes.scalars[(index * depth)..<((index + 1) * depth)] }
        var keptFeatures: Tensor?
        if let features {
            keptFeatures = Tensor.concatenated(kept.map { features.sliced(along: 0, $0..<($0 + 1)) }, along: 0)
            if kept.isEmpty { keptFeatures = Tensor.zeros([0, features.shape[1]]) }
        }
        return try VisualTokens(
            codebookHash: codebookHash, grid: grid, codes: IndexTensor(codeScalars, shape: [kept.count, depth]),
            positions: kept.map { positions[$0] }, residualNorms: kept.map { residualNorms[$0] }, features: keptFeatures)
    }
}
