// The key/value cache of the decoders: per layer, the keys and values of every position seen so far.
import TensorCore

/// The keys and values a decoder has computed for the positions seen so far, so that generation feeds
/// only the new tokens (mlx-swift-lm's `KVCache`, transformers' `DynamicCache`).
///
/// Create one with the model's `makeCache()`; pass it `inout` to each forward call. A value type: copy
/// it to branch a generation (the copies share storage until one of them appends: copy-on-write).
///
/// Appending during generation writes the new positions into a buffer with spare room (grown by
/// doubling, at least ``growthStep`` positions at a time) and hands out a view of the filled part, so
/// a decoding step copies only its own keys and values, not the whole history. The first call stores
/// its keys and values as they are, and an append that needs gradients concatenates instead, so
/// differentiation through a cached prefix works as before.
public struct KVCache: Sendable {
    /// Per layer: `[B, kvHeads, capacity, headDim]` keys whose first ``length`` positions are filled
    /// (capacity may equal the length), or `nil` before the first call.
    var keys: [Tensor?]
    /// Per layer: `[B, kvHeads, capacity, headDim]` values, filled as ``keys``.
    var values: [Tensor?]
    /// Per layer: how many positions of `keys` and `values` are filled.
    var filled: [Int]
    /// How many positions the cache holds.
    public private(set) var length: Int = 0
    /// The position id the next token gets: ``length`` unless a call gave explicit position ids that
    /// skip some (pruned visual tokens keeping their original ids), then one past the last id used.
    public private(set) var nextPosition: Int = 0

    /// The fewest positions a buffer grows by when it runs out of room.
    static let growthStep = 256

    /// An empty cache for a model with `layers` layers.
    public init(layers: Int) {
        keys = Array(repeating: nil, count: layers)
        values = Array(repeating: nil, count: layers)
        filled = Array(repeating: 0, count: layers)
    }

    /// Appends one layer's new keys and values (`[B, heads, T, D]`) and returns the full ones.
    mutating func update(layer: Int, keys newKeys: Tensor, values newValues: Tensor) -> (keys: Tensor, values: Tensor) {
        guard keys[layer] != nil, values[layer] != nil else {
            keys[layer] = newKeys
            values[layer] = newValues
            filled[layer] = newKeys.shape[2]
            return (newKeys, newValues)
        }
        let count = filled[layer], total = count + newKeys.shape[2]
        let needsGradients = isRecordingGradients
            && (keys[layer]!.requiresGradient || values[layer]!.requiresGradient || newKeys.requiresGradient || newValues.requiresGradient)
        if needsGradients {
            let allKeys = Tensor.concatenated([keys[layer]!.sliced(along: 2, 0..<count), newKeys], along: 2)
            let allValues = Tensor.concatenated([values[layer]!.sliced(along: 2, 0..<count), newValues], along: 2)
            keys[layer] = allKeys
            values[layer] = allValues
            filled[layer] = total
            return (allKeys, allValues)
        }
        // Move the buffers out so that they are uniquely referenced and the writes need no copy.
        var keyBuffer = keys[layer].take()!, valueBuffer = values[layer].take()!
        Self.append(newKeys, to: &keyBuffer, filled: count)
        Self.append(newValues, to: &valueBuffer, filled: count)
        keys[layer] = keyBuffer
        values[layer] = valueBuffer
        filled[layer] = total
        return (keyBuffer.sliced(along: 2, 0..<total), valueBuffer.sliced(along: 2, 0..<total))
    }

    /// Writes `new` (`[B, H, T, D]`) after the first `filled` positions of `buffer` (`[B, H, capacity,
    /// D]`), moving them to a larger buffer first when it lacks room.
    static func append(_ new: Tensor, to buffer: inout Tensor, filled: Int) {
        let (batch, heads, capacity, depth) = (buffer.shape[0], buffer.shape[1], buffer.shape[2], buffer.shape[3])
        let added = new.shape[2]
        if filled + added > capacity {
            let newCapacity = Swift.max(filled + added, capacity * 2, filled + growthStep)
            // Uninitialised: the spare room is written before it is read, and its pages are not
            // touched (resident memory grows with the positions filled, not the capacity).
            var grown = Tensor(unsafeUninitializedShape: [batch, heads, newCapacity, depth])
            buffer.sliced(along: 2, 0..<filled).withUnsafeScalars { source in
                grown.withUnsafeMutableScalars { destination in
                    for block in 0..<(batch * heads) {
                        (destination.baseAddress! + block * newCapacity * depth)
                            .update(from: source.baseAddress! + block * filled * depth, count: filled * depth)
                    }
                }
            }
            buffer = grown
        }
        let rowCapacity = buffer.shape[2]
        new.withUnsafeScalars { source in
            buffer.withUnsafeMutableScalars { destination in
                for block in 0..<(batch * heads) {
                    (destination.baseAddress! + (block * rowCapacity + filled) * depth)
                        .update(from: source.baseAddress! + block * added * depth, count: added * depth)
                }
            }
        }
    }

    /// Records that `count` positions were added (after every layer has been updated), the last with
    /// position id `nextPosition - 1`.
    mutating func advance(by count: Int, nextPosition: Int) {
        length += count
        self.nextPosition = nextPosition
    }

    /// The number of layers this cache was made for.
    public var layerCount: Int { keys.count }
}

// MARK: - Several sequences in one pass

extension KVCache {
    /// Causal attention for rows that belong to several sequences: `query` `[1, heads, T, D]`,
    /// `key`/`value` `[1, kvHeads, T, D]`, the rows of `segments[i]` extending `caches[i]` and
    /// attending to that sequence's positions only. One segment is one sequence's ordinary step.
    static func attention(
        query: Tensor, key: Tensor, value: Tensor, layer: Int, caches: inout [KVCache], segments: [Range<Int>], scale: Float? = nil
    ) -> Tensor {
        var outputs: [Tensor] = []
        outputs.reserveCapacity(segments.count)
        for (index, segment) in segments.enumerated() {
            let whole = segments.count == 1
            let q = whole ? query : query.sliced(along: 2, segment)
            let (keys, values) = caches[index].update(
                layer: layer, keys: whole ? key : key.sliced(along: 2, segment), values: whole ? value : value.sliced(along: 2, segment))
            // A block of rows is causal against the cache (row i sees the cached keys and new keys up
            // to its own); one row sees everything. The cache's keys are a view of its buffer, read in
            // place by the fused kernel.
            outputs.append(Tensor.scaledDotProductAttention(
                query: q, key: keys, value: values, causal: segment.count > 1, scale: scale))
        }
        return outputs.count == 1 ? outputs[0] : Tensor.concatenated(outputs, along: 2)
    }

    /// The row ranges of sequences whose new rows are `embeddings` (`[T_i, H]` each), concatenated.
    static func segments(_ embeddings: [Tensor]) -> [Range<Int>] {
        var start = 0
        return embeddings.map { embedding in
            defer { start += embedding.shape[0] }
            return start..<(start + embedding.shape[0])
        }
    }

    /// The last row of each sequence's rows in `hidden` (`[ΣT, H]`), as `[B, H]`.
    static func lastRows(_ hidden: Tensor, _ embeddings: [Tensor]) -> Tensor {
        let ends = segments(embeddings).map(\.upperBound)
        if ends.count == hidden.shape[0] { return hidden }  // one row per sequence (a decoding step)
        let rows = ends.map { hidden.sliced(along: 0, ($0 - 1)..<$0) }
        return rows.count == 1 ? rows[0] : Tensor.concatenated(rows, along: 0)
    }

    /// Runs `body` on `cache` as a one-sequence batch, moving it in and out (no copy of its buffers).
    static func withSingle<Result>(
        _ cache: inout KVCache, _ body: (inout [KVCache]) throws(ModelError) -> Result
    ) throws(ModelError) -> Result {
        var caches = [KVCache(layers: 0)]
        swap(&caches[0], &cache)
        defer { swap(&caches[0], &cache) }
        return try body(&caches)  // (withSubset for a single cache not held in an array)
    }

    /// Runs `body` on the caches at `indices` (in that order), moved into one array and back
    /// afterwards, also when `body` throws: no copy of their buffers, so appends stay in place.
    static func withSubset<Result>(
        _ caches: inout [KVCache], _ indices: [Int], _ body: (inout [KVCache]) throws(ModelError) -> Result
    ) throws(ModelError) -> Result {
        var group = indices.map { _ in KVCache(layers: 0) }
        for (slot, index) in indices.enumerated() { swap(&group[slot], &caches[index]) }
        defer { for (slot, index) in indices.enumerated() { swap(&group[slot], &caches[index]) } }
        return try body(&group)
    }

    /// Runs `body` (a forward pass giving `[B_pass, V]` last-position logits for the sequences at the
    /// indices it is given, with their caches) over `embeddings` in passes whose rows all take Craft's row-independent kernels: consecutive sequences are grouped
    /// while their rows total at most `Tensor.smallRowLimit`, and a longer one (a prompt) runs alone.
    /// So every sequence's logits have the bits it would get run alone, whatever else is in the batch.
    static func inPasses(
        _ embeddings: [Tensor], caches: inout [KVCache],
        _ body: (Range<Int>, inout [KVCache]) throws(ModelError) -> Tensor
    ) throws(ModelError) -> Tensor {
        guard !embeddings.isEmpty, embeddings.count == caches.count else {
            throw ModelError(.invalidInput, "a batch needs one cache per sequence and at least one sequence; got \(embeddings.count) sequences and \(caches.count) caches")
        }
        var passes: [Range<Int>] = []
        var start = 0, rows = 0
        for (index, embedding) in embeddings.enumerated() {
            let count = embedding.shape.first ?? 0
            if index > start && (rows + count > Tensor.smallRowLimit || count > Tensor.smallRowLimit) {
                passes.append(start..<index)
                (start, rows) = (index, 0)
            }
            rows += count
        }
        passes.append(start..<embeddings.count)
        var results: [Tensor] = []
        for pass in passes {
            results.append(try withSubset(&caches, Array(pass)) { group throws(ModelError) in try body(pass, &group) })
        }
        return results.count == 1 ? results[0] : Tensor.concatenated(results, along: 0)
    }
}
