// Upper bounds on the sizes a model's config.json may declare, checked while decoding it, before any
// size is multiplied or used to size a tensor: a hostile configuration then fails with a typed error
// naming the file and the field instead of overflowing or exhausting memory.

/// The largest sizes a `config.json` may declare. Each is far above the largest published model of
/// the families Craft runs (Llama-3.1-405B: hidden 16 384, MLP 53 248, 126 layers, 128 heads,
/// vocabulary 128 256; SigLIP so400m: image 384, patch 14).
public enum ModelConfigurationLimits {
    /// Hidden, intermediate (MLP), head and projection sizes: 2^17.
    public static let maximumDimension = 1 << 17
    /// Layers: 1 024.
    public static let maximumLayers = 1_024
    /// Attention heads (query or key/value): 1 024.
    public static let maximumHeads = 1_024
    /// Vocabulary size: 2^22.
    public static let maximumVocabularySize = 1 << 22
    /// Positions (`max_position_embeddings`, `n_positions`): 2^24.
    public static let maximumPositions = 1 << 24
    /// Image side and patch side, in pixels: 2^14; channels: 16.
    public static let maximumImageSize = 1 << 14
    public static let maximumChannels = 16
    /// Elements of any one weight the configuration implies (vocabulary × hidden, positions × hidden,
    /// …): 2^32, 16 GiB as Float32.
    public static let maximumTensorElements = 1 << 32

    /// The integer at `key` (`defaultValue` when the key is absent; without one the key is required),
    /// checked as ``check(_:_:in:maximum:)`` does.
    static func decode<Key: CodingKey>(
        _ key: Key, in container: KeyedDecodingContainer<Key>, default defaultValue: Int? = nil, maximum: Int
    ) throws -> Int {
        let value = if let defaultValue {
            try container.decodeIfPresent(Int.self, forKey: key) ?? defaultValue
        } else {
            try container.decode(Int.self, forKey: key)
        }
        return try check(value, key, in: container, maximum: maximum)
    }

    /// `value` when it lies in `1...maximum`, else a `DecodingError` whose path is the field (within
    /// `container`'s path, so a composite config's `vision_config.patch_size` is named in full).
    static func check<Key: CodingKey>(
        _ value: Int, _ key: Key, in container: KeyedDecodingContainer<Key>, maximum: Int
    ) throws -> Int {
        guard value > 0 else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: container.codingPath + [key], debugDescription: "\(key.stringValue) is \(value) but must be positive"))
        }
        guard value <= maximum else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: container.codingPath + [key],
                debugDescription: "\(key.stringValue) is \(value), over Craft's limit of \(maximum) for this field"))
        }
        return value
    }

    /// Checks that a weight of `shape` (sizes already checked by ``check(_:_:in:maximum:)``) has at most
    /// ``maximumTensorElements`` elements; `key` is the field that makes it large.
    static func checkElements<Key: CodingKey>(
        _ shape: [Int], of weight: String, _ key: Key, in container: KeyedDecodingContainer<Key>
    ) throws {
        var elements = 1
        for dimension in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= maximumTensorElements else {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: container.codingPath + [key],
                    debugDescription: "the \(weight) would be \(shape.map(String.init).joined(separator: " × ")) elements, over Craft's limit of \(maximumTensorElements) elements per weight"))
            }
            elements = product
        }
    }
}
