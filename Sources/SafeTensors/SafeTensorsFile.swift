// Reading one safetensors file: memory-mapped, validated on open, tensors converted on demand.
import Foundation

/// Options for opening safetensors files.
public struct SafeTensorsReadOptions: Sendable {
    /// The largest header accepted, in bytes. The reference implementation's cap is 100 MB;
    /// anything larger is rejected before it is read.
    public var maximumHeaderBytes: Int = 100_000_000

    /// Creates options; the defaults follow the reference implementation.
    public init(maximumHeaderBytes: Int = 100_000_000) {
        self.maximumHeaderBytes = maximumHeaderBytes
    }
}

/// One safetensors file, memory-mapped and validated.
///
/// Opening reads and checks only the header (every rule of the format: see `docs/safetensors.md`);
/// tensor bytes are touched when a tensor is read. Values are little-endian in the file and are
/// returned in host order.
///
/// ```swift
/// let file = try SafeTensorsFile(contentsOf: url)
/// let weight = try file.floats("model.embed_tokens.weight")   // F32, F16 or BF16 → [Float]
/// let shape = try file.info("model.embed_tokens.weight").shape
/// ```
public struct SafeTensorsFile: Sendable {
    /// The file's location.
    public let url: URL
    private let mapping: MappedFile
    private let header: SafeTensorsHeader

    /// Opens and validates the safetensors file at `url`.
    ///
    /// - Parameters:
    ///   - url: a file URL.
    ///   - options: limits applied while validating.
    /// - Throws: ``SafeTensorsError`` naming the file (and the tensor) when the file cannot be opened
    ///   or breaks a rule of the format.
    public init(contentsOf url: URL, options: SafeTensorsReadOptions = .init()) throws {
        self.url = url
        let path = url.path
        let mapping = try MappedFile(path: path)
        self.mapping = mapping
        let prefix = mapping.withBytes(in: 0..<min(8, mapping.count)) { Array($0) }
        let headerLength = try SafeTensorsHeader.headerLength(
            fileSize: mapping.count, prefix: prefix, file: path, maximumHeaderBytes: options.maximumHeaderBytes)
        // Parsed in place from the mapping: no copy of the (up to 100 MB) header is made.
        let parsed: Result<SafeTensorsHeader, SafeTensorsError> = mapping.withBytes(in: 8..<(8 + headerLength)) { bytes in
            do throws(SafeTensorsError) {
                return .success(try SafeTensorsHeader.parse(
                    headerBytes: bytes, dataLength: mapping.count - 8 - headerLength, dataStart: 8 + headerLength, file: path))
            } catch {
                return .failure(error)
            }
        }
        header = try parsed.get()
    }

    /// The `__metadata__` map of the header (empty when absent).
    public var metadata: [String: String] { header.metadata }

    /// The tensor names, sorted by their UTF-8 bytes.
    public var names: [String] { header.names }

    /// Whether the file holds a tensor called `name`.
    public func contains(_ name: String) -> Bool { header.entries[name] != nil }

    /// The dtype, shape and size of tensor `name`.
    /// - Throws: ``SafeTensorsError/Code-swift.struct/notFound`` naming the file and a few of its tensors.
    public func info(_ name: String) throws -> SafeTensorInfo {
        try entry(name).info
    }

    /// The tensor's values as Float32, converting any dtype.
    ///
    /// F16 and BF16 convert exactly; F64 and integers above 2^24 round to nearest; BOOL gives 0 or 1.
    public func floats(_ name: String) throws -> [Float] {
        let entry = try entry(name)
        // F16/BF16 at an odd address go through a temporary aligned copy of their raw values as well.
        let staging = entry.info.dtype == .f16 || entry.info.dtype == .bf16 ? entry.info.byteCount : 0
        try checkAllocation(entry, elementBytes: MemoryLayout<Float>.stride, extra: staging)
        return withTensorBytes(entry) { TensorDecoding.floats($0, dtype: entry.info.dtype) }
    }

    /// The tensor's values as Int64, for integer and BOOL tensors.
    /// - Throws: `dtypeMismatch` for float tensors; `valueOutOfRange` for U64 values above `Int64.max`.
    public func int64s(_ name: String) throws -> [Int64] {
        let entry = try entry(name)
        try checkAllocation(entry, elementBytes: MemoryLayout<Int64>.stride)
        return try withTensorBytes(entry) { bytes throws(SafeTensorsError) in
            try TensorDecoding.integers(bytes, dtype: entry.info.dtype, as: Int64.self, tensor: name, file: url.path)
        }
    }

    /// The tensor's values as Int32, for integer and BOOL tensors whose values fit.
    /// - Throws: `dtypeMismatch` for float tensors; `valueOutOfRange` for a value outside Int32.
    public func int32s(_ name: String) throws -> [Int32] {
        let entry = try entry(name)
        try checkAllocation(entry, elementBytes: MemoryLayout<Int32>.stride)
        return try withTensorBytes(entry) { bytes throws(SafeTensorsError) in
            try TensorDecoding.integers(bytes, dtype: entry.info.dtype, as: Int32.self, tensor: name, file: url.path)
        }
    }

    /// The tensor's raw bytes, little-endian, exactly as stored.
    public func bytes(_ name: String) throws -> Data {
        let entry = try entry(name)
        try checkAllocation(entry, elementBytes: entry.info.dtype.byteWidth)
        return withTensorBytes(entry) { Data($0) }
    }

    /// The tensor's bytes in place in the mapped file, without copying or converting them.
    ///
    /// The returned value keeps the mapping alive, so its bytes stay valid as long as it (or its
    /// ``MappedTensor/owner``) lives; only the pages actually read are loaded. Loaders use it to keep
    /// float32 weights without a copy and half-precision weights in half precision.
    public func mapped(_ name: String) throws -> MappedTensor {
        let entry = try entry(name)
        let start = header.dataStart + entry.begin
        let bytes = mapping.withBytes(in: start..<(start + entry.info.byteCount)) { $0 }
        return MappedTensor(info: entry.info, bytes: bytes, owner: mapping)
    }

    // MARK: - Internals

    /// Fails with `insufficientMemory` when the arrays that reading `entry` creates cannot be
    /// allocated now, instead of letting the allocation trap.
    ///
    /// The header's byte ranges are already checked against the file's size, but a valid file can
    /// still declare a tensor larger than memory (a 32 GiB zero-filled or sparse file compresses to
    /// almost nothing in a bundle). The sizes are computed overflow-checked, then one `malloc` of the
    /// total is tried and freed: when the system refuses it, so would the array's allocation, which
    /// Swift turns into a crash.
    private func checkAllocation(
        _ entry: SafeTensorsEntry, elementBytes: Int, extra: Int = 0
    ) throws(SafeTensorsError) {
        let name = entry.info.name
        let (output, overflow) = entry.info.elementCount.multipliedReportingOverflow(by: elementBytes)
        let (total, overflow2) = output.addingReportingOverflow(extra)
        func refuse(_ size: String) -> SafeTensorsError {
            SafeTensorsError(
                .insufficientMemory, file: url.path, tensor: name,
                message: "\(url.path): reading tensor '\(name)' (\(entry.info.dtype.rawValue) \(entry.info.shape)) needs \(size) of memory, more than the system will allocate; the file is not one this machine can load (check that it is the intended file).")
        }
        guard !overflow, !overflow2 else { throw refuse("more than \(Int.max) bytes") }
        guard total > 0 else { return }
        guard let probe = malloc(total) else { throw refuse("\(total) bytes") }
        free(probe)
    }

    private func entry(_ name: String) throws(SafeTensorsError) -> SafeTensorsEntry {
        if let entry = header.entries[name] { return entry }
        throw notFoundError(name: name, names: header.names, container: url.path)
    }

    private func withTensorBytes<Result, Failure: Error>(
        _ entry: SafeTensorsEntry, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let start = header.dataStart + entry.begin
        let result: Swift.Result<Result, Failure> = mapping.withBytes(in: start..<(start + entry.info.byteCount)) {
            bytes in
            do throws(Failure) { return .success(try body(bytes)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// A `notFound` error naming the container and listing a few of its names, nearest first.
func notFoundError(name: String, names: [String], container: String) -> SafeTensorsError {
    func sharedPrefix(_ candidate: String) -> Int {
        zip(candidate.utf8, name.utf8).prefix { $0 == $1 }.count
    }
    let nearest = names.enumerated()
        .map { (index: $0.offset, name: $0.element, score: sharedPrefix($0.element)) }
        .sorted { $0.score != $1.score ? $0.score > $1.score : $0.index < $1.index }
        .map(\.name)
    let shown = nearest.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
    let more = names.count > 5 ? " and \(names.count - 5) more" : ""
    let listing = names.isEmpty ? "it holds no tensors" : "it holds \(shown)\(more)"
    return SafeTensorsError(
        .notFound, file: container, tensor: name,
        message: "No tensor '\(name)' in \(container) (\(listing)); check the name or the checkpoint.")
}
