// The element types of the safetensors format (https://github.com/huggingface/safetensors, `Dtype`).

/// The element type of one tensor in a safetensors file, spelled as in the file's header.
///
/// Float types (`F64`, `F32`, `BF16`, `F16`) read as Float32; integer and boolean types read as
/// their integer type and, when asked, as Float32. The 8-bit float types of the format
/// (`F8_E4M3`, `F8_E5M2`, ...) are not supported: a file holding one is rejected with
/// ``SafeTensorsError/Code-swift.struct/unknownDType``.
public enum SafeTensorsDType: String, Sendable, CaseIterable, Hashable {
    case f64 = "F64"
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case i64 = "I64"
    case u64 = "U64"
    case i32 = "I32"
    case u32 = "U32"
    case i16 = "I16"
    case u16 = "U16"
    case i8 = "I8"
    case u8 = "U8"
    case bool = "BOOL"

    /// The size of one element in bytes.
    public var byteWidth: Int {
        switch self {
        case .f64, .i64, .u64: 8
        case .f32, .i32, .u32: 4
        case .f16, .bf16, .i16, .u16: 2
        case .i8, .u8, .bool: 1
        }
    }

    /// Whether the type holds floating-point values.
    public var isFloatingPoint: Bool {
        switch self {
        case .f64, .f32, .f16, .bf16: true
        default: false
        }
    }

    /// The position of the type in the Rust crate's `Dtype` declaration order.
    ///
    /// The Python package lays tensors out by this rank, largest first, then by name; the writer
    /// does the same so its files match byte for byte.
    var layoutRank: Int {
        switch self {
        case .bool: 0
        case .u8: 1
        case .i8: 2
        case .i16: 4
        case .u16: 5
        case .f16: 6
        case .bf16: 7
        case .i32: 8
        case .u32: 9
        case .f32: 10
        case .f64: 11
        case .i64: 12
        case .u64: 13
        }
    }
}

/// What a safetensors header says about one tensor.
public struct SafeTensorInfo: Sendable, Hashable {
    /// The tensor's name as it appears in the header.
    public let name: String
    /// The element type.
    public let dtype: SafeTensorsDType
    /// The dimensions, outermost first; `[]` for a scalar.
    public let shape: [Int]
    /// The size of the tensor's data in bytes (elements × element width).
    public let byteCount: Int

    /// The number of elements (the product of ``shape``; 1 for a scalar).
    public var elementCount: Int { byteCount / dtype.byteWidth }

    /// Creates a description of one tensor.
    public init(name: String, dtype: SafeTensorsDType, shape: [Int], byteCount: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteCount = byteCount
    }
}
