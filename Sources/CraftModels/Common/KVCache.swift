// The key/value cache of the decoders: per layer, the keys and values of every position seen so far.
import TensorCore

/// The keys and values a decoder has computed for the positions seen so far, so that generation feeds
/// only the new tokens (mlx-swift-lm's `KVCache`, transformers' `DynamicCache`).
///
/// Create one with the model's `makeCache()`; pass it `inout` to each forward call. A value type: copy
/// it to branch a generation.
public struct KVCache: Sendable {
    /// Per layer: `[B, kvHeads, length, headDim]` keys, or `nil` before the first call.
    var keys: [Tensor?]
    /// Per layer: `[B, kvHeads, length, headDim]` values.
    var values: [Tensor?]
    /// How many positions the cache holds (the position of the next token).
    public private(set) var length: Int = 0

    /// An empty cache for a model with `layers` layers.
    public init(layers: Int) {
        keys = Array(repeating: nil, count: layers)
        values = Array(repeating: nil, count: layers)
    }

    /// Appends one layer's new keys and values and returns the full ones.
    mutating func update(layer: Int, keys newKeys: Tensor, values newValues: Tensor) -> (keys: Tensor, values: Tensor) {
        let allKeys = keys[layer].map { Tensor.concatenated([$0, newKeys], along: 2) } ?? newKeys
        let allValues = values[layer].map { Tensor.concatenated([$0, newValues], along: 2) } ?? newValues
        keys[layer] = allKeys
        values[layer] = allValues
        return (allKeys, allValues)
    }

    /// Records that `count` positions were added (after every layer has been updated).
    mutating func advance(by count: Int) { length += count }

    /// The number of layers this cache was made for.
    public var layerCount: Int { keys.count }
}
