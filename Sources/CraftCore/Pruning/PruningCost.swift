// Counted FLOPs of a decoder forward pass, to report what test-time token pruning saves
// (docs/token-pruning.md, "Cost").

/// The shape of a decoder-only language model, as far as its forward cost is concerned.
public struct DecoderShape: Sendable, Equatable, Codable {
    /// The number of transformer blocks.
    public var layers: Int
    /// The hidden size h.
    public var hidden: Int
    /// The number of query heads.
    public var heads: Int
    /// The number of key/value heads (grouped-query attention; equal to ``heads`` for plain MHA).
    public var kvHeads: Int
    /// The MLP's intermediate size f.
    public var mlpSize: Int
    /// The vocabulary size of the output head.
    public var vocabulary: Int
    /// Whether the MLP is gated (SwiGLU as in Llama: three h×f matrices) rather than two (GPT-2).
    public var gatedMLP: Bool
    /// The width of one attention head when the model sets it apart from `hidden / heads` (Llama's
    /// `head_dim`); `nil` means `hidden / heads`.
    public var headDimension: Int?

    /// Creates a shape.
    public init(
        layers: Int, hidden: Int, heads: Int, kvHeads: Int, mlpSize: Int, vocabulary: Int, gatedMLP: Bool = true,
        headDimension: Int? = nil
    ) {
        self.layers = layers
        self.hidden = hidden
        self.heads = heads
        self.kvHeads = kvHeads
        self.mlpSize = mlpSize
        self.vocabulary = vocabulary
        self.gatedMLP = gatedMLP
        self.headDimension = headDimension
    }

    /// The width of one attention head: ``headDimension``, else `hidden / heads`.
    public var effectiveHeadDimension: Int { headDimension ?? hidden / max(heads, 1) }
}

/// Counted floating-point operations of a decoder forward over a prompt of text and visual tokens.
///
/// Only matrix products are counted, at `2·m·n·k` FLOPs for an `m×k` by `k×n` product (one
/// multiply and one add per term); norms, activations, softmax, rotary embeddings and the visual
/// projector are lower-order and left out. For a prompt of `n = T + V` tokens, head size
/// `d` (``DecoderShape/effectiveHeadDimension``, `hidden / heads` unless the model sets it), query
/// width `h_q = heads · d` and key/value width `h_kv = kvHeads · d`, each layer costs
///
/// - query and output projections: `2 · 2·n·h·h_q` (`h_q = h` for most models)
/// - key and value projections: `2 · 2·n·h·h_kv`
/// - attention scores `Q·Kᵀ` and weighted values `A·V`, over the full `n×n` square as dense
///   kernels compute it: `2 · 2·n·n·h_q`
/// - MLP: `3 · 2·n·h·f` when gated, `2 · 2·n·h·f` otherwise
///
/// plus the output head `2·h·vocabulary` per position that produces logits (the last one for
/// generation, every one for ``LanguageBackend/logits(for:)``).
public struct PruningCost: Sendable, Equatable {
    /// The decoder whose cost is counted.
    public let shape: DecoderShape

    /// Creates a cost model, checking the shape.
    ///
    /// - Throws: ``CraftCoreError`` (`invalidParameter`) when a size is not positive, the hidden size
    ///   is not a multiple of the heads, or the heads are not a multiple of the key/value heads.
    public init(shape: DecoderShape) throws {
        let sizes = [shape.layers, shape.hidden, shape.heads, shape.kvHeads, shape.mlpSize, shape.vocabulary]
        guard sizes.allSatisfy({ $0 > 0 }), (shape.headDimension ?? 1) > 0 else {
            throw CraftCoreError(.invalidParameter, "decoder shape \(shape) has a size that is not positive; every size must be at least 1")
        }
        guard shape.headDimension != nil || shape.hidden % shape.heads == 0, shape.heads % shape.kvHeads == 0 else {
            throw CraftCoreError(
                .invalidParameter,
                "decoder shape has hidden \(shape.hidden), \(shape.heads) heads and \(shape.kvHeads) key/value heads; hidden must be a multiple of heads and heads of key/value heads")
        }
        self.shape = shape
    }

    /// The counted FLOPs of one forward pass over `textTokens + visualTokens` positions.
    ///
    /// - Parameter logitsAtEveryPosition: count the output head at every position (scoring a whole
    ///   prompt) instead of the last one only (generation's prefill).
    /// - Throws: ``CraftCoreError`` (`invalidParameter`) when a token count is negative.
    public func forwardFLOPs(textTokens: Int, visualTokens: Int, logitsAtEveryPosition: Bool = false) throws -> Double {
        guard textTokens >= 0, visualTokens >= 0 else {
            throw CraftCoreError(.invalidParameter, "token counts \(textTokens) (text) and \(visualTokens) (visual) must not be negative")
        }
        let n = Double(textTokens + visualTokens)
        guard n > 0 else { return 0 }
        let h = Double(shape.hidden), f = Double(shape.mlpSize)
        let d = shape.effectiveHeadDimension
        let q = Double(shape.heads * d), kv = Double(shape.kvHeads * d)
        let projections = 2 * (2 * n * h * q) + 2 * (2 * n * h * kv)
        let attention = 2 * (2 * n * n * q)
        let mlp = Double(shape.gatedMLP ? 3 : 2) * (2 * n * h * f)
        let head = (logitsAtEveryPosition ? n : 1) * 2 * h * Double(shape.vocabulary)
        return Double(shape.layers) * (projections + attention + mlp) + head
    }

    /// The forward cost with all `visualTokens` and with `round(keepRatio · visualTokens)` of them.
    ///
    /// - Returns: the full and pruned FLOPs and the saved fraction `1 − pruned / full`.
    /// - Throws: ``CraftCoreError`` when the ratio is outside `(0, 1]` or a count is negative.
    public func savings(textTokens: Int, visualTokens: Int, keepRatio: Double, logitsAtEveryPosition: Bool = false) throws
        -> (full: Double, pruned: Double, savedFraction: Double)
    {
        guard visualTokens >= 0 else {
            throw CraftCoreError(.invalidParameter, "visual token count \(visualTokens) must not be negative")
        }
        let kept = try prunedTokenCount(of: visualTokens, keepRatio: keepRatio)
        let full = try forwardFLOPs(textTokens: textTokens, visualTokens: visualTokens, logitsAtEveryPosition: logitsAtEveryPosition)
        let pruned = try forwardFLOPs(textTokens: textTokens, visualTokens: kept, logitsAtEveryPosition: logitsAtEveryPosition)
        return (full, pruned, full > 0 ? 1 - pruned / full : 0)
    }
}
