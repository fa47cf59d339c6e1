// Converting a tensor's little-endian bytes to host arrays, for every supported dtype.
import CKernels
import Foundation

enum TensorDecoding {
    /// Loads element `index` of little-endian `T`s from possibly unaligned bytes.
    @inline(__always)
    private static func load<T: FixedWidthInteger>(_ bytes: UnsafeRawBufferPointer, _ index: Int, as: T.Type) -> T {
        T(littleEndian: bytes.loadUnaligned(fromByteOffset: index &* MemoryLayout<T>.size, as: T.self))
    }

    /// Decodes `count` elements with `transform` into a new array.
    @inline(__always)
    private static func map<Raw: FixedWidthInteger, Element>(
        _ bytes: UnsafeRawBufferPointer, _ raw: Raw.Type, _ transform: (Raw) -> Element
    ) -> [Element] {
        let count = bytes.count / MemoryLayout<Raw>.size
        return [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count {
                (buffer.baseAddress! + index).initialize(to: transform(load(bytes, index, as: Raw.self)))
            }
            initialized = count
        }
    }

    /// Copies the bytes straight into an array of a 4- or 8-byte type when the host is little-endian.
    private static func copy<Element>(_ bytes: UnsafeRawBufferPointer, as: Element.Type) -> [Element] {
        let count = bytes.count / MemoryLayout<Element>.stride
        return [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0, let source = bytes.baseAddress {
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: source, byteCount: count * MemoryLayout<Element>.stride)
            }
            initialized = count
        }
    }

    /// F16 or BF16 to Float32 through the kernels `HalfMatrix` uses (`Sources/CKernels`: vectorised
    /// where the CPU allows, exact either way). Data at an odd address is first copied aligned.
    private static func halfFloats(_ bytes: UnsafeRawBufferPointer, bfloat: Bool) -> [Float] {
        let count = bytes.count / 2
        let format = Int32(bfloat ? CRAFT_HALF_BFLOAT16 : CRAFT_HALF_FLOAT16)
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            defer { initialized = count }
            guard count > 0, let base = bytes.baseAddress, let destination = buffer.baseAddress else { return }
            if Int(bitPattern: base) % 2 == 0 {
                craft_half_to_float(format, base.assumingMemoryBound(to: UInt16.self), destination, count)
            } else {
                var raw = [UInt16](repeating: 0, count: count)
                raw.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<(count * 2)])) }
                raw.withUnsafeBufferPointer { craft_half_to_float(format, $0.baseAddress!, destination, count) }
            }
        }
    }

    static func floats(_ bytes: UnsafeRawBufferPointer, dtype: SafeTensorsDType) -> [Float] {
        switch dtype {
        case .f32:
            #if _endian(little)
            return copy(bytes, as: Float.self)
            #else
            return map(bytes, UInt32.self) { Float(bitPattern: $0) }
            #endif
        case .f64: return map(bytes, UInt64.self) { Float(Double(bitPattern: $0)) }
        case .f16:
            #if _endian(little)
            return halfFloats(bytes, bfloat: false)
            #else
            return map(bytes, UInt16.self) { HalfPrecision.float(fromHalf: $0) }
            #endif
        case .bf16:
            #if _endian(little)
            return halfFloats(bytes, bfloat: true)
            #else
            return map(bytes, UInt16.self) { HalfPrecision.float(fromBFloat: $0) }
            #endif
        case .i64: return map(bytes, UInt64.self) { Float(Int64(bitPattern: $0)) }
        case .u64: return map(bytes, UInt64.self) { Float($0) }
        case .i32: return map(bytes, UInt32.self) { Float(Int32(bitPattern: $0)) }
        case .u32: return map(bytes, UInt32.self) { Float($0) }
        case .i16: return map(bytes, UInt16.self) { Float(Int16(bitPattern: $0)) }
        case .u16: return map(bytes, UInt16.self) { Float($0) }
        case .i8: return map(bytes, UInt8.self) { Float(Int8(bitPattern: $0)) }
        case .u8: return map(bytes, UInt8.self) { Float($0) }
        case .bool: return map(bytes, UInt8.self) { $0 == 0 ? 0 : 1 }
        }
    }

    static func integers<Target: FixedWidthInteger & SignedInteger>(
        _ bytes: UnsafeRawBufferPointer, dtype: SafeTensorsDType, as target: Target.Type, tensor: String, file: String
    ) throws(SafeTensorsError) -> [Target] {
        /// The elements as `Raw` values, each converted by `convert` and refused when it does not fit
        /// `Target` (`instead` says what to read the tensor as).
        func widen<Raw: FixedWidthInteger, Value: BinaryInteger>(
            _ raw: Raw.Type, instead: String = "int64s or floats", _ convert: (Raw) -> Value
        ) throws(SafeTensorsError) -> [Target] {
            let count = bytes.count / MemoryLayout<Raw>.size
            var result: [Target] = []
            result.reserveCapacity(count)
            for index in 0..<count {
                let value = convert(load(bytes, index, as: Raw.self))
                guard let converted = Target(exactly: value) else {
                    throw SafeTensorsError(
                        .valueOutOfRange, file: file, tensor: tensor,
                        message: "\(file): tensor '\(tensor)' (\(dtype.rawValue)) holds \(value) at element \(index), outside the range of \(Target.self); read it with \(instead) instead.")
                }
                result.append(converted)
            }
            return result
        }
        switch dtype {
        case .i64:
            if Target.self == Int64.self {
                #if _endian(little)
                return copy(bytes, as: Target.self)
                #endif
            }
            return try widen(UInt64.self) { Int64(bitPattern: $0) }
        case .u64:
            return try widen(UInt64.self, instead: "floats") { $0 }
        case .i32:
            if Target.self == Int32.self {
                #if _endian(little)
                return copy(bytes, as: Target.self)
                #endif
            }
            return try widen(UInt32.self) { Int64(Int32(bitPattern: $0)) }
        case .u32: return try widen(UInt32.self) { Int64($0) }
        case .i16: return try widen(UInt16.self) { Int64(Int16(bitPattern: $0)) }
        case .u16: return try widen(UInt16.self) { Int64($0) }
        case .i8: return try widen(UInt8.self) { Int64(Int8(bitPattern: $0)) }
        case .u8: return try widen(UInt8.self) { Int64($0) }
        case .bool: return try widen(UInt8.self) { $0 == 0 ? 0 : 1 }
        case .f64, .f32, .f16, .bf16:
            throw SafeTensorsError(
                .dtypeMismatch, file: file, tensor: tensor,
                message: "\(file): tensor '\(tensor)' is \(dtype.rawValue), a float type, so it cannot be read as \(Target.self); read it with floats instead.")
        }
    }
}
