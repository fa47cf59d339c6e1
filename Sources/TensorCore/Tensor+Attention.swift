// Attention helpers: rotary position embedding (transformers' Llama `rotate_half` convention), additive
// causal and padding masks, and multi-head scaled dot-product attention with grouped-query heads
// (transformers' `eager_attention_forward` with `repeat_kv`, without copying key/value heads).
import CKernels
import Foundation

/// Cosine and sine tables for rotary position embedding (RoPE), as transformers' `LlamaRotaryEmbedding`.
///
/// `inverseFrequency[i] = 1 / theta^(2i / headDimension)` for `i < headDimension / 2`; each position's
/// angles are repeated twice along the head dimension (`cat(freqs, freqs)`), matching `rotate_half`.
public struct RotaryEmbedding: Sendable {
    /// `[positions, headDimension]` cosines.
    public let cos: Tensor
    /// `[positions, headDimension]` sines.
    public let sin: Tensor

    /// Builds the tables for the given positions.
    ///
    /// - Parameters:
    ///   - headDimension: the per-head size (even).
    ///   - theta: the base (`rope_theta`, 10000 for Llama 2, 500000 for Llama 3).
    ///   - positions: the position of each token (e.g. `0..<T`).
    /// - Precondition: `headDimension` is even and positive.
    public init(headDimension: Int, theta: Float = 10000, positions: [Int]) {
        precondition(headDimension > 0 && headDimension % 2 == 0,
                     "RotaryEmbedding: head dimension \(headDimension) must be even and positive")
        self.init(inverseFrequencies: Self.inverseFrequencies(headDimension: headDimension, theta: theta), positions: positions)
    }

    /// The unscaled inverse frequencies `1 / theta^(2i / headDimension)`, `headDimension / 2` of them,
    /// in Float32 as transformers computes them.
    public static func inverseFrequencies(headDimension: Int, theta: Float) -> [Float] {
        (0..<(headDimension / 2)).map { 1 / Foundation.pow(theta, Float(2 * $0) / Float(headDimension)) }
    }

    /// Builds the tables from inverse frequencies (scaled ones for RoPE variants such as `linear` or
    /// `llama3`): the head dimension is twice their count.
    public init(inverseFrequencies inverseFrequency: [Float], positions: [Int]) {
        precondition(!inverseFrequency.isEmpty, "RotaryEmbedding: no inverse frequencies")
        let half = inverseFrequency.count
        let headDimension = 2 * half
        var cosines = [Float](repeating: 0, count: positions.count * headDimension)
        var sines = cosines
        for (row, position) in positions.enumerated() {
            for i in 0..<half {
                let angle = Float(position) * inverseFrequency[i]
                let (c, s) = (Foundation.cos(angle), Foundation.sin(angle))
                cosines[row * headDimension + i] = c
                cosines[row * headDimension + half + i] = c
                sines[row * headDimension + i] = s
                sines[row * headDimension + half + i] = s
            }
        }
        cos = Tensor(cosines, shape: [positions.count, headDimension])
        sin = Tensor(sines, shape: [positions.count, headDimension])
    }
}

extension Tensor {
    /// Rotary position embedding applied to `[..., T, headDimension]` (usually `[B, H, T, D]`):
    /// `x · cos + rotate_half(x) · sin` with `rotate_half(x) = cat(−x₂, x₁)` over the two halves.
    ///
    /// `cos` and `sin` broadcast against `self` (`[T, D]` from ``RotaryEmbedding``, or `[B, 1, T, D]` for
    /// per-sequence positions).
    public func applyingRotaryEmbedding(cos: Tensor, sin: Tensor) -> Tensor {
        let half = shape[rank - 1] / 2
        let firstHalf = sliced(along: -1, 0..<half), secondHalf = sliced(along: -1, half..<(2 * half))
        let rotated = Tensor.concatenated([-secondHalf, firstHalf], along: -1)
        return self * cos + rotated * sin
    }

    /// Applies ``RotaryEmbedding`` tables; see ``applyingRotaryEmbedding(cos:sin:)``.
    public func applyingRotaryEmbedding(_ rotary: RotaryEmbedding) -> Tensor {
        applyingRotaryEmbedding(cos: rotary.cos, sin: rotary.sin)
    }

    // MARK: - Masks

    /// The additive value that removes a position from attention: the lowest finite Float, as
    /// transformers uses `torch.finfo(dtype).min` (a fully masked row then attends uniformly instead of
    /// producing NaN).
    public static let maskedScore: Float = -Float.greatestFiniteMagnitude

    /// An additive causal mask `[queryLength, keyLength]`: 0 where query `i` may see key `j`
    /// (`j ≤ i + keyLength − queryLength`, so a query block at the end of a longer cache works), else
    /// ``maskedScore``.
    public static func causalMask(queryLength: Int, keyLength: Int) -> Tensor {
        let shift = keyLength - queryLength
        var values = [Float](repeating: 0, count: queryLength * keyLength)
        for i in 0..<queryLength {
            for j in 0..<keyLength where j > i + shift { values[i * keyLength + j] = maskedScore }
        }
        return Tensor(values, shape: [queryLength, keyLength])
    }

    /// An additive attention mask `[B, 1, T, S]` from which keys are real tokens (`keyIsValid[b][j]`,
    /// false for padding) and whether attention is causal.
    ///
    /// Each entry is either 0 or ``maskedScore`` (never a sum of the two), so adding it to scores is safe.
    /// - Precondition: every row of `keyIsValid` has the same length `S`.
    public static func attentionMask(keyIsValid: [[Bool]], queryLength: Int, causal: Bool) -> Tensor {
        let batch = keyIsValid.count
        let keyLength = keyIsValid.first?.count ?? 0
        precondition(keyIsValid.allSatisfy { $0.count == keyLength }, "attentionMask: rows of keyIsValid differ in length")
        let shift = keyLength - queryLength
        var values = [Float](repeating: 0, count: batch * queryLength * keyLength)
        for b in 0..<batch {
            for i in 0..<queryLength {
                for j in 0..<keyLength where !keyIsValid[b][j] || (causal && j > i + shift) {
                    values[(b * queryLength + i) * keyLength + j] = maskedScore
                }
            }
        }
        return Tensor(values, shape: [batch, 1, queryLength, keyLength])
    }

    // MARK: - Attention

    /// Multi-head scaled dot-product attention `softmax(q·kᵀ·scale + mask)·v`, as
    /// `F.scaled_dot_product_attention` with an additive mask, and grouped-query attention when there
    /// are fewer key/value heads than query heads.
    ///
    /// When no gradient is recorded (inference), this runs the fused kernel (CKernels'
    /// `craft_attention`: online softmax over blocks of keys, no `[T, S]` score tensor, heads split
    /// over TensorCore's threads, views read in place) and returns a `[B, Hq, T, Dv]` view of a
    /// `[B, T, Hq, Dv]` buffer, so merging the heads afterwards (`permuted([0, 2, 1, 3])` then a
    /// reshape) costs no copy. When a gradient is recorded it runs the differentiable matrix-product
    /// path. Every output row depends only on its own query row: a sequence gets the same bits alone
    /// or in a batch.
    ///
    /// - Parameters:
    ///   - query: `[B, Hq, T, D]`.
    ///   - key: `[B, Hkv, S, D]`, with `Hq` a multiple of `Hkv`; query head `h` reads key/value head
    ///     `h / (Hq / Hkv)` (transformers' `repeat_kv`), without copying key or value.
    ///   - value: `[B, Hkv, S, Dv]`.
    ///   - mask: an additive mask broadcastable to `[B, Hq, T, S]` (``causalMask(queryLength:keyLength:)``,
    ///     ``attentionMask(keyIsValid:queryLength:causal:)``), or `nil`.
    ///   - causal: whether query `i` sees only keys `j ≤ i + S − T` (a query block at the end of a
    ///     longer cache works): as adding ``causalMask(queryLength:keyLength:)``, without building it.
    ///     With a mask too, a removed key's score gets `min(mask, maskedScore)` added (transformers'
    ///     combined masks), so a row that sees no key attends uniformly.
    ///   - scale: the score scale, by default `1 / sqrt(D)`.
    /// - Returns: `[B, Hq, T, Dv]`.
    public static func scaledDotProductAttention(
        query: Tensor, key: Tensor, value: Tensor, mask: Tensor? = nil, causal: Bool = false, scale: Float? = nil
    ) -> Tensor {
        precondition(query.rank == 4 && key.rank == 4 && value.rank == 4,
                     "scaledDotProductAttention: query \(query.shape), key \(key.shape), value \(value.shape) must be [batch, heads, length, dimension]")
        let (batch, queryHeads, queryLength, depth) = (query.shape[0], query.shape[1], query.shape[2], query.shape[3])
        let (keyHeads, keyLength) = (key.shape[1], key.shape[2])
        precondition(key.shape[0] == batch && value.shape[0] == batch && key.shape[3] == depth
                     && value.shape[1] == keyHeads && value.shape[2] == keyLength,
                     "scaledDotProductAttention: query \(query.shape), key \(key.shape), value \(value.shape) do not fit together")
        precondition(keyHeads > 0 && queryHeads % keyHeads == 0,
                     "scaledDotProductAttention: \(queryHeads) query heads are not a multiple of \(keyHeads) key/value heads")
        if let mask {
            let scores = [batch, queryHeads, queryLength, keyLength]
            precondition(mask.rank <= 4 && zip(mask.shape.reversed(), scores.reversed()).allSatisfy { $0 == $1 || $0 == 1 },
                         "scaledDotProductAttention: mask \(mask.shape) does not broadcast to the scores \(scores)")
        }
        let factor = scale ?? 1 / Float(depth).squareRoot()
        let recording = gradientNeeds(query, key, value) != nil || mask.map { gradientNeeds($0) != nil } ?? false
        if !recording && AttentionSettings.shared.fused && batch * queryHeads * queryLength > 0 && keyLength > 0 {
            return fusedAttention(query: query, key: key, value: value, mask: mask, causal: causal, scale: factor)
        }
        if recording && AttentionSettings.shared.recomputes && mask.map({ gradientNeeds($0) == nil }) ?? true {
            return recomputedAttention(query: query, key: key, value: value, mask: mask, causal: causal, scale: factor)
        }
        return unfusedAttention(query: query, key: key, value: value, mask: mask, causal: causal, scale: factor)
    }

    /// The matrix-product attention, differentiable, without keeping its `[B, Hq, T, S]` scores and
    /// weights for the backward pass (activation checkpointing): the forward runs with no gradient
    /// recorded, and the backward runs it again on the same inputs, recorded, and differentiates that.
    /// The ops and their order are those of ``unfusedAttention(query:key:value:mask:causal:scale:)``
    /// and no tensor inside has two consumers, so outputs and gradients have the same bits; the cost
    /// is the attention's forward once more per backward pass. (The mask must not need a gradient.)
    static func recomputedAttention(
        query: Tensor, key: Tensor, value: Tensor, mask: Tensor?, causal: Bool, scale factor: Float
    ) -> Tensor {
        let output = withoutGradients {
            unfusedAttention(query: query, key: key, value: value, mask: mask, causal: causal, scale: factor)
        }
        let (q, k, v, m) = (query.detached(), key.detached(), value.detached(), mask?.detached())
        return output.recorded(from: [query, key, value]) { gradient in
            let leaves = [q, k, v].map { $0.requiringGradient() }
            let again = GradientRecording.$isEnabled.withValue(true) {
                unfusedAttention(query: leaves[0], key: leaves[1], value: leaves[2], mask: m, causal: causal, scale: factor)
            }
            return Tensor.gradients(of: again, withRespectTo: leaves, seed: gradient, contiguous: false)
        }
    }

    /// Whether ``scaledDotProductAttention(query:key:value:mask:causal:scale:)`` runs the fused kernel
    /// when no gradient is recorded (the default). Set it to false to run the matrix-product path
    /// everywhere, to compare the two (`craft-bench encoder --unfused-attention`).
    public static var usesFusedAttention: Bool {
        get { AttentionSettings.shared.fused }
        set { AttentionSettings.shared.fused = newValue }
    }

    /// Whether attention with a gradient recorded recomputes its scores and weights in the backward
    /// pass instead of keeping them (the default: activation checkpointing of attention, the same
    /// bits, at the cost of one more attention forward; the CRAFT step of `craft-bench train-step`
    /// peaks about 10 % lower). Set it to false to keep them (`craft-bench train-step --keep-attention`).
    public static var recomputesAttentionInBackward: Bool {
        get { AttentionSettings.shared.recomputes }
        set { AttentionSettings.shared.recomputes = newValue }
    }

    /// The instruction set of the fused attention kernel on this CPU: `avx512f`, `avx2-fma` or `portable`.
    public static var fusedAttentionKernelName: String { String(cString: craft_attention_kernel_name()) }

    /// The instruction set of the elementwise kernels (activations, softmax, norms) on this CPU:
    /// `avx512f`, `avx2-fma` or `portable`.
    public static var elementwiseKernelName: String { String(cString: craft_elementwise_kernel_name()) }

    /// The fused attention kernel (see ``scaledDotProductAttention(query:key:value:mask:causal:scale:)``),
    /// on `path` (`CRAFT_PATH_PORTABLE` or `CRAFT_PATH_AVX2`, for tests) or the CPU's own; no gradient
    /// is recorded. The shapes have been checked.
    static func fusedAttention(
        query: Tensor, key: Tensor, value: Tensor, mask: Tensor?, causal: Bool, scale: Float, path: Int32? = nil
    ) -> Tensor {
        let (batch, queryHeads, queryLength, depth) = (query.shape[0], query.shape[1], query.shape[2], query.shape[3])
        let (keyHeads, keyLength, valueDepth) = (key.shape[1], key.shape[2], value.shape[3])
        // The kernel reads rows with contiguous elements; any other view is copied first.
        func rowsContiguous(_ tensor: Tensor) -> Tensor {
            tensor.shape[3] <= 1 || tensor.strides[3] == 1 ? tensor : tensor.contiguous()
        }
        let (q, k, v) = (rowsContiguous(query), rowsContiguous(key), rowsContiguous(value))
        let scores = [batch, queryHeads, queryLength, keyLength]
        let m = mask.map { $0.shape == scores ? $0 : $0.expanded(to: scores) }
        let output = Tensor(uninitializedShape: [batch, queryLength, queryHeads, valueDepth])
        var problem = craft_attention_problem()
        problem.batch = batch
        problem.query_heads = queryHeads
        problem.kv_heads = keyHeads
        problem.query_length = queryLength
        problem.key_length = keyLength
        problem.depth = depth
        problem.value_depth = valueDepth
        problem.query = UnsafePointer(q.storage.pointer + q.offset)
        (problem.query_stride_batch, problem.query_stride_head, problem.query_stride_row) = (q.strides[0], q.strides[1], q.strides[2])
        problem.key = UnsafePointer(k.storage.pointer + k.offset)
        (problem.key_stride_batch, problem.key_stride_head, problem.key_stride_row) = (k.strides[0], k.strides[1], k.strides[2])
        problem.value = UnsafePointer(v.storage.pointer + v.offset)
        (problem.value_stride_batch, problem.value_stride_head, problem.value_stride_row) = (v.strides[0], v.strides[1], v.strides[2])
        if let m {
            problem.mask = UnsafePointer(m.storage.pointer + m.offset)
            (problem.mask_stride_batch, problem.mask_stride_head) = (m.strides[0], m.strides[1])
            (problem.mask_stride_row, problem.mask_stride_column) = (m.strides[2], m.strides[3])
        }
        problem.output = output.storage.pointer
        (problem.output_stride_batch, problem.output_stride_head, problem.output_stride_row)
            = (queryLength * queryHeads * valueDepth, valueDepth, queryHeads * valueDepth)
        problem.scale = scale
        problem.causal = causal ? 1 : 0
        let items = craft_attention_items(&problem)
        // About a million multiply-adds per chunk at least (an item: its rows against every key), so
        // a decoding step against a short cache runs inline: waking a worker costs more than it saves
        // (and competes with OpenBLAS's threads, which spin for a while after each product).
        let rowsPerItem = craft_attention_query_block(&problem) * (queryHeads / keyHeads)
        let itemWork = Swift.max(1, rowsPerItem * keyLength * (depth + valueDepth) / (causal && queryLength > 1 ? 2 : 1))
        let kernelPath = path ?? craft_attention_path()
        let frozen = problem
        withExtendedLifetime((q, k, v, m, output)) {
            parallelRanges(items, grain: Swift.max(1, (1 << 20) / itemWork)) { range in
                withUnsafePointer(to: frozen) { craft_attention_on(kernelPath, $0, range.lowerBound, range.upperBound) }
            }
        }
        return output.permuted([0, 2, 1, 3])
    }

    /// Attention by matrix products (differentiable): the scores `[B, Hq, T, S]`, the mask added, a
    /// softmax, the product with the values. The shapes have been checked.
    static func unfusedAttention(
        query: Tensor, key: Tensor, value: Tensor, mask: Tensor?, causal: Bool, scale factor: Float
    ) -> Tensor {
        let (batch, queryHeads, queryLength, depth) = (query.shape[0], query.shape[1], query.shape[2], query.shape[3])
        let (keyHeads, keyLength) = (key.shape[1], key.shape[2])
        var mask = mask
        if causal {
            let shift = keyLength - queryLength
            if let given = mask {
                // +∞ where visible (the mask as it is), maskedScore where removed: min(mask, maskedScore).
                var limit = [Float](repeating: .infinity, count: queryLength * keyLength)
                for i in 0..<queryLength {
                    for j in 0..<keyLength where j > i + shift { limit[i * keyLength + j] = maskedScore }
                }
                mask = Tensor.minimum(given, Tensor(limit, shape: [queryLength, keyLength]))
            } else {
                mask = causalMask(queryLength: queryLength, keyLength: keyLength)
            }
        }
        let group = queryHeads / keyHeads
        let valueDepth = value.shape[3]
        if group == 1 {
            // Scaling the query (T·D values) is cheaper than scaling the scores (T·S).
            var scores = query.scaled(by: factor).matmul(key.transposed())
            if let mask { scores = scores + mask }
            return scores.softmax(along: -1).matmul(value)
        }
        // Grouped heads: [B, Hkv, g, T, D] against keys broadcast over g (stride 0, no copy).
        let groupedQuery = query.splittingDimension(1, into: [keyHeads, group])
        let sharedKey = key.unsqueezed(2).expanded(to: [batch, keyHeads, group, keyLength, depth])
        let sharedValue = value.unsqueezed(2).expanded(to: [batch, keyHeads, group, keyLength, valueDepth])
        var scores = groupedQuery.scaled(by: factor).matmul(sharedKey.transposed())
            .reshaped([batch, queryHeads, queryLength, keyLength])
        if let mask { scores = scores + mask }
        let weights = scores.softmax(along: -1).reshaped([batch, keyHeads, group, queryLength, keyLength])
        return weights.matmul(sharedValue).reshaped([batch, queryHeads, queryLength, valueDepth])
    }

    /// Dimension `dimension` split into `sizes` (whose product is its size), always a view.
    public func splittingDimension(_ dimension: Int, into sizes: [Int]) -> Tensor {
        let axis = Tensor.normalize(dimension: dimension, rank: rank)
        precondition(sizes.allSatisfy { $0 > 0 } && sizes.reduce(1, *) == shape[axis],
                     "splittingDimension: sizes \(sizes) do not multiply to dimension \(dimension) (\(shape[axis])) of \(shape)")
        var newStrides: [Int] = []
        var running = strides[axis]
        for size in sizes.reversed() {
            newStrides.insert(running, at: 0)
            running *= size
        }
        let newShape = Array(shape[..<axis]) + sizes + Array(shape[(axis + 1)...])
        let allStrides = Array(strides[..<axis]) + newStrides + Array(strides[(axis + 1)...])
        let result = Tensor(storage: storage, shape: newShape, strides: allStrides, offset: offset)
        guard Tensor.gradientNeeds(self) != nil else { return result }
        let inputShape = shape
        return result.recorded(from: [self]) { g in [g.reshaped(inputShape)] }
    }
}

/// Whether attention takes the fused kernel when no gradient is recorded (``Tensor/usesFusedAttention``).
final class AttentionSettings: @unchecked Sendable {
    static let shared = AttentionSettings()
    private let lock = NSLock()
    private var value = true
    private var recompute = true

    var fused: Bool {
        get { lock.lock(); defer { lock.unlock() }; return value }
        set { lock.lock(); value = newValue; lock.unlock() }
    }

    var recomputes: Bool {
        get { lock.lock(); defer { lock.unlock() }; return recompute }
        set { lock.lock(); recompute = newValue; lock.unlock() }
    }
}
