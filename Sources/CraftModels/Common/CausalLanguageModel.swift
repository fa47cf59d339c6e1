// What the generation loop needs from a decoder (Llama, GPT-2).
import TensorCore

/// A decoder-only language model: token ids or input embeddings in, next-token logits out, with a
/// ``KVCache`` for incremental decoding.
public protocol CausalLanguageModel: Sendable {
    /// The number of token ids (rows of the logits' last dimension).
    var vocabularySize: Int { get }
    /// The width of the input embeddings.
    var hiddenSize: Int { get }
    /// The most positions a sequence may occupy (`max_position_embeddings`, GPT-2's `n_positions`).
    var maximumPositions: Int { get }
    /// An empty cache for this model.
    func makeCache() -> KVCache
    /// The input embeddings `[T, H]` of token ids (differentiable with respect to the table).
    ///
    /// - Throws: ``ModelError`` with code `invalidInput` for an id outside the vocabulary.
    func embed(tokens: [Int]) throws(ModelError) -> Tensor
    /// Logits `[T, V]` for input embeddings `[T, H]` following the `cache.length` positions already in
    /// `cache`, which it extends. Differentiable with respect to the embeddings.
    ///
    /// - Throws: ``ModelError`` with code `invalidInput` for a wrong shape or a sequence longer than the
    ///   model's positions.
    func logits(embeddings: Tensor, cache: inout KVCache) throws(ModelError) -> Tensor
    /// Logits `[1, V]` of the last of the input embeddings `[T, H]` only, extending `cache` with all
    /// `T` positions: a generation's prefill, which needs no logits for the other prompt positions
    /// (the `lm_head` product over the whole prompt is skipped).
    func lastLogits(embeddings: Tensor, cache: inout KVCache) throws(ModelError) -> Tensor
    /// Logits `[B, V]` of the last position of several sequences at once: `embeddings[i]` (`[T_i, H]`)
    /// follows the positions in `caches[i]`, which it extends. Decoding steps of up to
    /// `Tensor.smallRowLimit` sequences share one read of every weight, and each sequence's logits
    /// have exactly the bits it gets alone, whatever else is in the batch.
    func lastLogits(batch embeddings: [Tensor], caches: inout [KVCache]) throws(ModelError) -> Tensor
    /// The model's weights as kept in memory, by checkpoint name (empty when a model does not say).
    var weights: [String: WeightMatrix] { get }
    /// Whether the model takes explicit position ids (``lastLogits(batch:positionIDs:caches:)``). Has a
    /// default implementation (`false`).
    var acceptsPositionIDs: Bool { get }
    /// ``lastLogits(batch:caches:)`` with explicit position ids: `positionIDs[i]`, when not `nil`,
    /// numbers the rows of `embeddings[i]` (strictly increasing, from the cache's
    /// ``KVCache/nextPosition`` on, gaps allowed); `nil` numbers them consecutively from there. Has a
    /// default implementation that throws for explicit ids.
    ///
    /// - Throws: ``ModelError`` (`unsupported`) when ids are given and the model does not take them,
    ///   (`invalidInput`) when they are not one per row, increasing, after the cache, inside the model.
    func lastLogits(batch embeddings: [Tensor], positionIDs: [[Int]?], caches: inout [KVCache]) throws(ModelError) -> Tensor
    /// ``logits(embeddings:cache:)`` with explicit position ids (`nil`: consecutive), as
    /// ``lastLogits(batch:positionIDs:caches:)``. Has a default implementation that throws for explicit ids.
    func logits(embeddings: Tensor, positionIDs: [Int]?, cache: inout KVCache) throws(ModelError) -> Tensor
    /// The logits of rows `firstRows[i]...` of each sequence only (`[T_i − firstRows[i], V]`), where
    /// `embeddings[i]` (`[T_i, H]`) follows the positions in `caches[i]`, which it extends, numbered as
    /// `positionIDs[i]` says (`nil`: consecutively): what a loss over the last positions needs
    /// (transformers' `logits_to_keep`), without the output projection of the other rows. Has a
    /// default implementation (each sequence alone, every row, then a slice); a
    /// ``HiddenStateDecoder`` runs the sequences through its layers together and one output
    /// projection over all the kept rows, so each weight is read once for the batch.
    ///
    /// - Throws: as ``logits(embeddings:positionIDs:cache:)``; (`invalidInput`) when the lists differ
    ///   in length or a first row is not a row of its sequence.
    func logits(batch embeddings: [Tensor], positionIDs: [[Int]?], fromRows firstRows: [Int], caches: inout [KVCache]) throws(ModelError) -> [Tensor]
}

extension CausalLanguageModel {
    public var weights: [String: WeightMatrix] { [:] }

    public var acceptsPositionIDs: Bool { false }

    /// Consecutive ids only: throws when any are given.
    public func lastLogits(batch embeddings: [Tensor], positionIDs: [[Int]?], caches: inout [KVCache]) throws(ModelError) -> Tensor {
        try refuseExplicitPositionIDs(positionIDs)
        return try lastLogits(batch: embeddings, caches: &caches)
    }

    /// Consecutive ids only: throws when any are given.
    public func logits(embeddings: Tensor, positionIDs: [Int]?, cache: inout KVCache) throws(ModelError) -> Tensor {
        try refuseExplicitPositionIDs([positionIDs])
        return try logits(embeddings: embeddings, cache: &cache)
    }

    /// Each sequence alone: every row's logits, then rows `firstRows[i]...`.
    public func logits(batch embeddings: [Tensor], positionIDs: [[Int]?], fromRows firstRows: [Int], caches: inout [KVCache]) throws(ModelError) -> [Tensor] {
        try checkRowBatch(embeddings, positionIDs, firstRows, caches)
        var results: [Tensor] = []
        for index in embeddings.indices {
            let logits = try logits(embeddings: embeddings[index], positionIDs: positionIDs[index], cache: &caches[index])
            results.append(firstRows[index] == 0 ? logits : logits.sliced(along: 0, firstRows[index]..<logits.shape[0]))
        }
        return results
    }

    /// ``logits(batch:positionIDs:fromRows:caches:)`` of one sequence: rows `firstRow...` of its logits.
    public func logits(embeddings: Tensor, positionIDs: [Int]?, fromRow firstRow: Int, cache: inout KVCache) throws(ModelError) -> Tensor {
        try KVCache.withSingle(&cache) { caches throws(ModelError) in
            try logits(batch: [embeddings], positionIDs: [positionIDs], fromRows: [firstRow], caches: &caches)[0]
        }
    }

    /// Checks that the lists match and that each first row is a row of its sequence.
    func checkRowBatch(_ embeddings: [Tensor], _ positionIDs: [[Int]?], _ firstRows: [Int], _ caches: [KVCache]) throws(ModelError) {
        guard positionIDs.count == embeddings.count, firstRows.count == embeddings.count, caches.count == embeddings.count else {
            throw ModelError(.invalidInput, "\(embeddings.count) sequences but \(positionIDs.count) lists of position ids, \(firstRows.count) first rows and \(caches.count) caches; give one of each per sequence")
        }
        for (embedding, firstRow) in zip(embeddings, firstRows) {
            let rows = embedding.rank == 2 ? embedding.shape[0] : 0
            guard firstRow >= 0 && firstRow < rows else {
                throw ModelError(.invalidInput, "logits from row \(firstRow) were asked of \(rows) input rows; the first row kept must be one of them")
            }
        }
    }

    private func refuseExplicitPositionIDs(_ positionIDs: [[Int]?]) throws(ModelError) {
        guard positionIDs.allSatisfy({ $0 == nil }) else {
            throw ModelError(.unsupported, "\(type(of: self)) numbers positions consecutively and cannot take explicit position ids; use consecutive visual position ids with this model")
        }
    }

    /// Computes every position's logits and keeps the last (models that can do better implement it).
    public func lastLogits(embeddings: Tensor, cache: inout KVCache) throws(ModelError) -> Tensor {
        let logits = try logits(embeddings: embeddings, cache: &cache)
        return logits.sliced(along: 0, (logits.shape[0] - 1)..<logits.shape[0])
    }

    /// One sequence at a time (models that share weight reads across sequences implement it).
    public func lastLogits(batch embeddings: [Tensor], caches: inout [KVCache]) throws(ModelError) -> Tensor {
        guard !embeddings.isEmpty, embeddings.count == caches.count else {
            throw ModelError(.invalidInput, "a batch needs one cache per sequence and at least one sequence; got \(embeddings.count) sequences and \(caches.count) caches")
        }
        var rows: [Tensor] = []
        for index in embeddings.indices { rows.append(try lastLogits(embeddings: embeddings[index], cache: &caches[index])) }
        return Tensor.concatenated(rows, along: 0)
    }

    /// Logits `[B, V]` of the last of each sequence's `tokens` (see ``lastLogits(batch:caches:)``).
    public func lastLogits(batchTokens tokens: [[Int]], caches: inout [KVCache]) throws(ModelError) -> Tensor {
        var embeddings: [Tensor] = []
        for sequence in tokens { embeddings.append(try embed(tokens: sequence)) }
        return try lastLogits(batch: embeddings, caches: &caches)
    }

    /// Logits `[1, V]` of the last of `tokens` (see ``lastLogits(embeddings:cache:)``).
    public func lastLogits(tokens: [Int], cache: inout KVCache) throws(ModelError) -> Tensor {
        try lastLogits(embeddings: try embed(tokens: tokens), cache: &cache)
    }
}

extension CausalLanguageModel {
    /// Logits `[T, V]` for token ids following the positions in `cache`, which it extends.
    public func logits(tokens: [Int], cache: inout KVCache) throws(ModelError) -> Tensor {
        try logits(embeddings: try embed(tokens: tokens), cache: &cache)
    }

    /// Logits `[T, V]` for a whole sequence of token ids (no cache kept).
    public func logits(tokens: [Int]) throws(ModelError) -> Tensor {
        var cache = makeCache()
        return try logits(tokens: tokens, cache: &cache)
    }

    /// Logits `[T, V]` for a whole sequence of input embeddings `[T, H]` (no cache kept); differentiable.
    public func logits(embeddings: Tensor) throws(ModelError) -> Tensor {
        var cache = makeCache()
        return try logits(embeddings: embeddings, cache: &cache)
    }

    /// Checks token ids against the vocabulary.
    func checkTokens(_ tokens: [Int]) throws(ModelError) {
        guard !tokens.isEmpty else { throw ModelError(.invalidInput, "the token sequence is empty; pass at least one token id") }
        if let (position, bad) = tokens.enumerated().first(where: { $0.element < 0 || $0.element >= vocabularySize }) {
            throw ModelError(.invalidInput, "token id \(bad) at position \(position) is outside the model's vocabulary of \(vocabularySize); check the tokenizer matches the model")
        }
    }

    /// Checks that embeddings are `[T, H]` with `T ≥ 1`.
    func checkEmbeddings(_ embeddings: Tensor) throws(ModelError) {
        guard embeddings.rank == 2, embeddings.shape[1] == hiddenSize, embeddings.shape[0] > 0 else {
            throw ModelError(.invalidInput, "input embeddings have shape \(embeddings.shape) but the model takes [tokens, \(hiddenSize)] with at least one token")
        }
    }
}

/// A decoder built as embeddings → layers → final norm → `lm_head`, whose layers take the rows of
/// several sequences at once (Llama, Qwen2, GPT-2). Conforming gives the logits methods of
/// ``CausalLanguageModel``, batched decoding included, from ``finalHiddenStates(_:caches:)``.
public protocol HiddenStateDecoder: CausalLanguageModel {
    /// The output projection (tied to the embedding table or not).
    var lmHead: WeightMatrix { get }
    /// The normalised last hidden states `[ΣT, H]` (what `lmHead` reads) of the sequences whose new
    /// embeddings are `embeddings` (`[T_i, H]` each, concatenated in order) and caches `caches`,
    /// which it extends. `positionIDs[i]` numbers the rows of sequence `i` (`nil`: consecutively from
    /// its cache's ``KVCache/nextPosition``; see ``CausalLanguageModel/lastLogits(batch:positionIDs:caches:)``).
    /// Rows of different sequences never attend to each other.
    func finalHiddenStates(_ embeddings: [Tensor], positionIDs: [[Int]?], caches: inout [KVCache]) throws(ModelError) -> Tensor
}

extension HiddenStateDecoder {
    /// Llama, Qwen2 and GPT-2 take explicit position ids.
    public var acceptsPositionIDs: Bool { true }

    /// The final hidden states with consecutive position ids.
    public func finalHiddenStates(_ embeddings: [Tensor], caches: inout [KVCache]) throws(ModelError) -> Tensor {
        try finalHiddenStates(embeddings, positionIDs: embeddings.map { _ in nil }, caches: &caches)
    }

    public func logits(embeddings: Tensor, cache: inout KVCache) throws(ModelError) -> Tensor {
        try logits(embeddings: embeddings, positionIDs: nil, cache: &cache)
    }

    public func logits(embeddings: Tensor, positionIDs: [Int]?, cache: inout KVCache) throws(ModelError) -> Tensor {
        lmHead.linear(try KVCache.withSingle(&cache) { caches throws(ModelError) in
            try finalHiddenStates([embeddings], positionIDs: [positionIDs], caches: &caches)
        })
    }

    /// The sequences through the layers together (rows of different sequences never attend to each
    /// other), then one output projection over the kept rows of all of them.
    public func logits(batch embeddings: [Tensor], positionIDs: [[Int]?], fromRows firstRows: [Int], caches: inout [KVCache]) throws(ModelError) -> [Tensor] {
        try checkRowBatch(embeddings, positionIDs, firstRows, caches)
        if embeddings.isEmpty { return [] }
        let hidden = try finalHiddenStates(embeddings, positionIDs: positionIDs, caches: &caches)
        let kept = zip(KVCache.segments(embeddings), firstRows).map { segment, first in
            hidden.sliced(along: 0, (segment.lowerBound + first)..<segment.upperBound)
        }
        let logits = lmHead.linear(kept.count == 1 ? kept[0] : Tensor.concatenated(kept, along: 0))
        guard kept.count > 1 else { return [logits] }
        return KVCache.segments(kept).map { logits.sliced(along: 0, $0) }
    }

    public func lastLogits(embeddings: Tensor, cache: inout KVCache) throws(ModelError) -> Tensor {
        try KVCache.withSingle(&cache) { caches throws(ModelError) in try lastLogits(batch: [embeddings], caches: &caches) }
    }

    /// The last position's logits of each sequence, in passes of row-independent products.
    public func lastLogits(batch embeddings: [Tensor], caches: inout [KVCache]) throws(ModelError) -> Tensor {
        try lastLogits(batch: embeddings, positionIDs: embeddings.map { _ in nil }, caches: &caches)
    }

    /// The last position's logits of each sequence with explicit position ids, in passes of
    /// row-independent products.
    public func lastLogits(batch embeddings: [Tensor], positionIDs: [[Int]?], caches: inout [KVCache]) throws(ModelError) -> Tensor {
        guard positionIDs.count == embeddings.count else {
            throw ModelError(.invalidInput, "\(embeddings.count) sequences but \(positionIDs.count) lists of position ids; give one (or nil) per sequence")
        }
        return try KVCache.inPasses(embeddings, caches: &caches) { pass, caches throws(ModelError) in
            let group = Array(embeddings[pass])
            let hidden = try finalHiddenStates(group, positionIDs: Array(positionIDs[pass]), caches: &caches)
            return lmHead.linear(KVCache.lastRows(hidden, group))
        }
    }

    /// The rows of `table` for `tokens`, checked against the vocabulary.
    func embedRows(_ table: WeightMatrix, _ tokens: [Int]) throws(ModelError) -> Tensor {
        try checkTokens(tokens)
        do {
            return try table.rows(at: IndexTensor(tokens))
        } catch {
            throw ModelError(.invalidInput, error.message)
        }
    }

    /// Checks each sequence's new rows, position ids and cache (`layers` layers, ids below
    /// `positions`, `limit` saying so in messages: "this GPT-2 model has 1024 (n_positions)") and
    /// returns the position ids of all rows, in order: `positionIDs[i]` when given, otherwise
    /// consecutive from the cache's ``KVCache/nextPosition``.
    func checkedPositions(
        _ embeddings: [Tensor], positionIDs: [[Int]?], caches: [KVCache], layers: Int, positions: Int, limit: String
    ) throws(ModelError) -> [Int] {
        guard positionIDs.count == embeddings.count, caches.count == embeddings.count else {
            throw ModelError(.invalidInput, "\(embeddings.count) sequences, \(positionIDs.count) lists of position ids and \(caches.count) caches; give one of each per sequence")
        }
        var result: [Int] = []
        for (index, embedding) in embeddings.enumerated() {
            let cache = caches[index]
            try checkEmbeddings(embedding)
            guard cache.layerCount == layers else {
                throw ModelError(.invalidInput, "the cache was made for \(cache.layerCount) layers but this model has \(layers); use model.makeCache()")
            }
            let length = embedding.shape[0]
            let ids = positionIDs[index] ?? Array(cache.nextPosition..<(cache.nextPosition + length))
            guard ids.count == length else {
                throw ModelError(.invalidInput, "\(ids.count) position ids for \(length) rows; give one id per row")
            }
            var previous = cache.nextPosition - 1
            for id in ids {
                guard id > previous else {
                    throw ModelError(.invalidInput, "position id \(id) does not follow \(previous); ids must increase and start at the cache's next position \(cache.nextPosition) or later")
                }
                previous = id
            }
            guard previous < positions else {
                throw ModelError(.invalidInput, "the sequence reaches \(previous + 1) positions but \(limit); shorten the input")
            }
            result += ids
        }
        return result
    }
}

extension KVCache {
    /// Records the rows of each sequence (`segments[i]` of `positions`) in its cache.
    static func advance(_ caches: inout [KVCache], segments: [Range<Int>], positions: [Int]) {
        for (index, segment) in segments.enumerated() where !segment.isEmpty {
            caches[index].advance(by: segment.count, nextPosition: positions[segment.upperBound - 1] + 1)
        }
    }
}
