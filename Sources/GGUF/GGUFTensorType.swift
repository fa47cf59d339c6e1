// ggml's tensor types: their block sizes and bytes per block (what the file's offsets are checked
// against), and which ones Craft dequantizes.

/// A ggml tensor type, by its id in the file.
public struct GGUFTensorType: Hashable, Sendable, CustomStringConvertible {
    /// The id in the file (ggml's `ggml_type`).
    public let id: UInt32
    /// ggml's name (`F32`, `Q4_K`, ...).
    public let name: String
    /// Values per block (1 for plain types).
    public let blockSize: Int
    /// Bytes per block.
    public let blockBytes: Int

    public var description: String { name }

    public static let f32 = GGUFTensorType(id: 0, name: "F32", blockSize: 1, blockBytes: 4)
    public static let f16 = GGUFTensorType(id: 1, name: "F16", blockSize: 1, blockBytes: 2)
    public static let q4_0 = GGUFTensorType(id: 2, name: "Q4_0", blockSize: 32, blockBytes: 18)
    public static let q8_0 = GGUFTensorType(id: 8, name: "Q8_0", blockSize: 32, blockBytes: 34)
    public static let q4_K = GGUFTensorType(id: 12, name: "Q4_K", blockSize: 256, blockBytes: 144)
    public static let q5_K = GGUFTensorType(id: 13, name: "Q5_K", blockSize: 256, blockBytes: 176)
    public static let q6_K = GGUFTensorType(id: 14, name: "Q6_K", blockSize: 256, blockBytes: 210)
    public static let bf16 = GGUFTensorType(id: 30, name: "BF16", blockSize: 1, blockBytes: 2)

    /// Every type whose layout ggml defines (gguf-py's `GGML_QUANT_SIZES`), so any file's offsets
    /// and sizes can be checked, whether or not Craft dequantizes the type.
    public static let known: [UInt32: GGUFTensorType] = {
        let table: [(UInt32, String, Int, Int)] = [
            (0, "F32", 1, 4), (1, "F16", 1, 2), (2, "Q4_0", 32, 18), (3, "Q4_1", 32, 20), (6, "Q5_0", 32, 22),
            (7, "Q5_1", 32, 24), (8, "Q8_0", 32, 34), (9, "Q8_1", 32, 40), (10, "Q2_K", 256, 84), (11, "Q3_K", 256, 110),
            (12, "Q4_K", 256, 144), (13, "Q5_K", 256, 176), (14, "Q6_K", 256, 210), (15, "Q8_K", 256, 292),
            (16, "IQ2_XXS", 256, 66), (17, "IQ2_XS", 256, 74), (18, "IQ3_XXS", 256, 98), (19, "IQ1_S", 256, 50),
            (20, "IQ4_NL", 32, 18), (21, "IQ3_S", 256, 110), (22, "IQ2_S", 256, 82), (23, "IQ4_XS", 256, 136),
            (24, "I8", 1, 1), (25, "I16", 1, 2), (26, "I32", 1, 4), (27, "I64", 1, 8), (28, "F64", 1, 8),
            (29, "IQ1_M", 256, 56), (30, "BF16", 1, 2), (34, "TQ1_0", 256, 54), (35, "TQ2_0", 256, 66),
        ]
        return Dictionary(uniqueKeysWithValues: table.map { ($0.0, GGUFTensorType(id: $0.0, name: $0.1, blockSize: $0.2, blockBytes: $0.3)) })
    }()

    /// The types ``GGUFTensor/dequantized()`` reads.
    public static let dequantizable: Set<UInt32> = [0, 1, 2, 8, 12, 13, 14, 30]
}
