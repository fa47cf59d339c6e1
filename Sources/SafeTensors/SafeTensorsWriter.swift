// Writing safetensors files laid out as the reference Python package lays them out
// (huggingface/safetensors `serialize`: tensors sorted by dtype rank descending then name,
// compact JSON header, padded with spaces to a multiple of 8), written atomically.
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Collects named tensors and writes them as one safetensors file.
///
/// For the same F32 tensors and at most one metadata key, the bytes equal those of
/// `safetensors.numpy.save_file` (0.8). With several metadata keys the Python package's order is
/// random; this writer sorts them, so its output is always deterministic.
///
/// ```swift
/// var writer = SafeTensorsWriter()
/// writer.metadata["format"] = "pt"
/// try writer.add("codebook", floats: values, shape: [512, 64])
/// try writer.write(to: url)
/// ```
public struct SafeTensorsWriter: Sendable {
    private struct Pending: Sendable {
        let dtype: SafeTensorsDType
        let shape: [Int]
        let data: Data
    }

    /// The `__metadata__` map written into the header (omitted when empty).
    public var metadata: [String: String]
    private var pending: [String: Pending] = [:]

    /// Creates an empty writer.
    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// The names added so far, sorted by UTF-8 bytes.
    public var names: [String] { pending.keys.sorted(by: utf8Less) }

    /// Adds a tensor of Float32 values, stored as `dtype`.
    ///
    /// - Parameters:
    ///   - name: the tensor's name; must be new, non-empty and not `__metadata__`.
    ///   - floats: the values, row-major; their count must equal the product of `shape`.
    ///   - shape: the dimensions, outermost first (`[]` for a scalar).
    ///   - dtype: `.f32` (exact), `.f64` (exact), `.f16` (rounded to nearest even as numpy does) or
    ///     `.bf16` (rounded to nearest even as torch does).
    public mutating func add(
        _ name: String, floats: [Float], shape: [Int], as dtype: SafeTensorsDType = .f32
    ) throws {
        try checkNew(name, shape: shape, count: floats.count, dtype: dtype)
        let data: Data
        switch dtype {
        case .f32:
            #if _endian(little)
            data = floats.withUnsafeBytes { Data($0) }
            #else
            data = Self.encode(floats) { $0.bitPattern }
            #endif
        case .f64: data = Self.encode(floats) { Double($0).bitPattern }
        case .f16: data = Self.encodeHalves(floats, bfloat: false)
        case .bf16: data = Self.encodeHalves(floats, bfloat: true)
        default:
            throw SafeTensorsError(
                .invalidArgument, tensor: name,
                message: "Tensor '\(name)': floats can be written as F32, F64, F16 or BF16, not \(dtype.rawValue); use add(_:int64s:shape:), add(_:int32s:shape:) or add(_:bytes:dtype:shape:) for integers.")
        }
        pending[name] = Pending(dtype: dtype, shape: shape, data: data)
    }

    /// Adds a tensor of Int64 values, stored as I64.
    public mutating func add(_ name: String, int64s: [Int64], shape: [Int]) throws {
        try checkNew(name, shape: shape, count: int64s.count, dtype: .i64)
        #if _endian(little)
        let data = int64s.withUnsafeBytes { Data($0) }
        #else
        let data = Self.encode(int64s) { UInt64(bitPattern: $0) }
        #endif
        pending[name] = Pending(dtype: .i64, shape: shape, data: data)
    }

    /// Adds a tensor of Int32 values, stored as I32.
    public mutating func add(_ name: String, int32s: [Int32], shape: [Int]) throws {
        try checkNew(name, shape: shape, count: int32s.count, dtype: .i32)
        pending[name] = Pending(dtype: .i32, shape: shape, data: Self.encode(int32s) { UInt32(bitPattern: $0) })
    }

    /// Adds a tensor from its raw little-endian bytes, for any dtype (e.g. U8 or BOOL).
    ///
    /// - Parameter bytes: exactly (product of `shape`) × `dtype.byteWidth` bytes.
    public mutating func add(_ name: String, bytes: Data, dtype: SafeTensorsDType, shape: [Int]) throws {
        let count = try checkNew(name, shape: shape, count: nil, dtype: dtype)
        guard bytes.count == count * dtype.byteWidth else {
            throw SafeTensorsError(
                .shapeMismatch, tensor: name,
                message: "Tensor '\(name)': shape \(shape) of \(dtype.rawValue) needs \(count * dtype.byteWidth) bytes but \(bytes.count) were given.")
        }
        pending[name] = Pending(dtype: dtype, shape: shape, data: Data(bytes))
    }

    /// The complete file contents.
    public func serialized() throws -> Data {
        var output = Data()
        try emit { output.append(contentsOf: $0) }
        return output
    }

    /// Writes the file atomically: to a temporary file in the same directory, flushed, then renamed
    /// over `url`, so a failure never leaves a partial file behind.
    ///
    /// - Throws: ``SafeTensorsError`` with code `io` naming the file when the system refuses.
    public func write(to url: URL) throws {
        let path = url.path
        let directory = url.deletingLastPathComponent().path
        // Short enough for NAME_MAX even when the target's own name is long.
        let suffix = UInt64.random(in: 0...UInt64.max)
        let temporary = (directory as NSString).appendingPathComponent(
            ".\(String(String.UnicodeScalarView(url.lastPathComponent.unicodeScalars.prefix(40)))).\(String(suffix, radix: 16)).tmp")
        func failure(_ action: String) -> SafeTensorsError {
            let reason = String(cString: strerror(errno))
            return SafeTensorsError(
                .io, file: path, message: "Cannot write \(path): \(action) failed (\(reason)); check the directory exists, is writable and has space.")
        }
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure("creating a temporary file in \(directory)") }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(descriptor) }
            if !renamed { unlink(temporary) }
        }
        try emit { chunk throws(SafeTensorsError) in
            guard writeAll(descriptor, chunk) else { throw failure("writing") }
        }
        guard fsync(descriptor) == 0 else { throw failure("flushing") }
        closed = true
        guard close(descriptor) == 0 else { throw failure("closing") }
        guard rename(temporary, path) == 0 else { throw failure("renaming the temporary file into place") }
        renamed = true
    }

    // MARK: - Internals

    /// Validates a new entry and returns its element count.
    @discardableResult
    private func checkNew(_ name: String, shape: [Int], count: Int?, dtype: SafeTensorsDType) throws(SafeTensorsError) -> Int {
        guard !name.isEmpty, name != "__metadata__" else {
            throw SafeTensorsError(
                .invalidArgument, tensor: name,
                message: "Tensor name '\(name)' is reserved or empty; choose another name.")
        }
        guard pending[name] == nil else {
            throw SafeTensorsError(
                .duplicate, tensor: name, message: "Tensor '\(name)' was already added to this writer; names must be unique.")
        }
        var elements = 1
        for dimension in shape {
            guard dimension >= 0 else {
                throw SafeTensorsError(
                    .invalidShape, tensor: name, message: "Tensor '\(name)' has negative dimension \(dimension) in shape \(shape).")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow, !product.multipliedReportingOverflow(by: dtype.byteWidth).overflow else {
                throw SafeTensorsError(.overflow, tensor: name, message: "Tensor '\(name)' has shape \(shape), too large to address.")
            }
            elements = product
        }
        if let count, count != elements {
            throw SafeTensorsError(
                .shapeMismatch, tensor: name,
                message: "Tensor '\(name)': shape \(shape) holds \(elements) elements but \(count) values were given.")
        }
        return elements
    }

    /// F16 or BF16 bits of `values`, little-endian, with a concrete loop (fast in debug builds too).
    private static func encodeHalves(_ values: [Float], bfloat: Bool) -> Data {
        var halves = [UInt16](repeating: 0, count: values.count)
        halves.withUnsafeMutableBufferPointer { output in
            values.withUnsafeBufferPointer { input in
                for index in 0..<input.count {
                    let bits = bfloat ? HalfPrecision.bfloatBits(from: input[index]) : HalfPrecision.halfBits(from: input[index])
                    output[index] = bits.littleEndian
                }
            }
        }
        return halves.withUnsafeBytes { Data($0) }
    }

    private static func encode<Element, Raw: FixedWidthInteger>(_ values: [Element], _ bits: (Element) -> Raw) -> Data {
        var data = Data(count: values.count * MemoryLayout<Raw>.size)
        data.withUnsafeMutableBytes { buffer in
            for (index, value) in values.enumerated() {
                buffer.storeBytes(of: bits(value).littleEndian, toByteOffset: index * MemoryLayout<Raw>.size, as: Raw.self)
            }
        }
        return data
    }

    /// Produces the file as a sequence of chunks: length, header, then each tensor's bytes.
    private func emit(_ sink: (Data) throws(SafeTensorsError) -> Void) throws(SafeTensorsError) {
        let ordered = pending.sorted { lhs, rhs in
            lhs.value.dtype.layoutRank != rhs.value.dtype.layoutRank
                ? lhs.value.dtype.layoutRank > rhs.value.dtype.layoutRank : utf8Less(lhs.key, rhs.key)
        }
        var header: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        if !metadata.isEmpty {
            header.append(contentsOf: Array("\"__metadata__\":{".utf8))
            for (index, key) in metadata.keys.sorted(by: utf8Less).enumerated() {
                if index > 0 { header.append(UInt8(ascii: ",")) }
                JSONWriter.appendString(key, to: &header)
                header.append(UInt8(ascii: ":"))
                JSONWriter.appendString(metadata[key] ?? "", to: &header)
            }
            header.append(UInt8(ascii: "}"))
            first = false
        }
        var offset = 0
        for (name, tensor) in ordered {
            if !first { header.append(UInt8(ascii: ",")) }
            first = false
            JSONWriter.appendString(name, to: &header)
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            let end = offset + tensor.data.count
            header.append(
                contentsOf: Array(":{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}".utf8))
            offset = end
        }
        header.append(UInt8(ascii: "}"))
        let padding = (8 - header.count % 8) % 8
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))

        var length = Data(count: 8)
        length.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(header.count).littleEndian, as: UInt64.self) }
        try sink(length)
        try sink(Data(header))
        for (_, tensor) in ordered where !tensor.data.isEmpty {
            try sink(tensor.data)
        }
    }
}

/// Writes all of `data` to `descriptor`, retrying short writes; false (with `errno` set) on failure.
private func writeAll(_ descriptor: Int32, _ data: Data) -> Bool {
    data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> Bool in
        guard let base = buffer.baseAddress else { return true }
        var offset = 0
        while offset < buffer.count {
            let written = write(descriptor, base + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }
}
