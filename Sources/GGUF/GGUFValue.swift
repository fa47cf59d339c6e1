// GGUF metadata values: every value type of the format, arrays included.

/// One metadata value of a GGUF file.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    /// An array of values of one type (`elementType`, a GGUF value type id).
    case array(elementType: UInt32, [GGUFValue])

    /// The value as an integer when it is one of the integer types and fits.
    public var integerValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    /// The value as a floating-point number when it is a float or an integer.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: integerValue.map(Double.init)
        }
    }

    /// The string, when the value is one.
    public var stringValue: String? {
        if case .string(let v) = self { return v }
        return nil
    }

    /// The Boolean, when the value is one.
    public var boolValue: Bool? {
        if case .bool(let v) = self { return v }
        return nil
    }

    /// The elements, when the value is an array.
    public var arrayValue: [GGUFValue]? {
        if case .array(_, let v) = self { return v }
        return nil
    }

    /// The name of a GGUF value type id, for messages.
    static func typeName(_ id: UInt32) -> String {
        let names = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"]
        return Int(id) < names.count ? names[Int(id)] : "value type \(id)"
    }
}
