// The read API shared by single files and sharded checkpoints, and opening a model directory.
import Foundation

/// Something that serves named tensors: one ``SafeTensorsFile`` or a ``ShardedSafeTensors`` checkpoint.
///
/// Loaders code against this protocol so a model directory works whether it holds
/// `model.safetensors` or `model.safetensors.index.json` plus shards; see ``openSafeTensors(directory:options:)``.
public protocol SafeTensorsSource: Sendable {
    /// The file read (for a sharded checkpoint: its index file), used in error messages.
    var url: URL { get }
    /// The `__metadata__` map (for a sharded checkpoint: the index's `metadata`).
    var metadata: [String: String] { get }
    /// Every tensor name, sorted by UTF-8 bytes.
    var names: [String] { get }
    /// Whether a tensor called `name` exists.
    func contains(_ name: String) -> Bool
    /// The dtype, shape and size of tensor `name`.
    func info(_ name: String) throws -> SafeTensorInfo
    /// The tensor's values as Float32, converting any dtype.
    func floats(_ name: String) throws -> [Float]
    /// The tensor's values as Int64 (integer and BOOL tensors).
    func int64s(_ name: String) throws -> [Int64]
    /// The tensor's values as Int32 (integer and BOOL tensors whose values fit).
    func int32s(_ name: String) throws -> [Int32]
    /// The tensor's raw little-endian bytes.
    func bytes(_ name: String) throws -> Data
    /// The tensor's bytes in place in the memory-mapped file (no copy, no conversion).
    func mapped(_ name: String) throws -> MappedTensor
}

/// One tensor's bytes inside a memory-mapped safetensors file, kept valid by ``owner``.
///
/// The bytes are little-endian as stored and read-only; the data of a safetensors file need not be
/// aligned, so check ``isAligned`` before reading them as wider values in place.
public struct MappedTensor: @unchecked Sendable {
    /// The tensor's dtype, shape and size.
    public let info: SafeTensorInfo
    /// The tensor's bytes (`info.byteCount` of them).
    public let bytes: UnsafeRawBufferPointer
    /// The mapping that holds the bytes; keep a reference to it while using them.
    public let owner: AnyObject

    /// Whether the bytes start at a multiple of the element width (so they can be read in place).
    public var isAligned: Bool {
        guard let base = bytes.baseAddress else { return true }
        return Int(bitPattern: base) % info.dtype.byteWidth == 0
    }
}

extension SafeTensorsFile: SafeTensorsSource {}

extension SafeTensorsSource {
    /// The tensor's values as Float32, after checking that its shape is `expected`.
    ///
    /// For loaders that know each weight's shape from a configuration: a checkpoint that disagrees
    /// fails with a message naming the tensor, the file and both shapes.
    ///
    /// - Throws: `notFound` for a missing tensor, `shapeMismatch` when the shape differs.
    public func floats(_ name: String, shape expected: [Int]) throws -> [Float] {
        let actual = try info(name).shape
        guard actual == expected else {
            throw SafeTensorsError(
                .shapeMismatch, file: url.path, tensor: name,
                message: "Tensor '\(name)' in \(url.path) has shape \(actual) but \(expected) was expected; the checkpoint does not match the model configuration.")
        }
        return try floats(name)
    }
}

/// Opens the weights of a Hugging Face-layout model directory.
///
/// Uses `model.safetensors` when present, otherwise `model.safetensors.index.json` and its shards
/// (the order `transformers` uses).
///
/// - Parameters:
///   - directory: the model directory.
///   - options: limits applied while validating each file.
/// - Throws: ``SafeTensorsError`` with code `notFound` (listing the `.safetensors` files seen) when
///   neither file exists, or any error from opening the files.
public func openSafeTensors(
    directory: URL, options: SafeTensorsReadOptions = .init()
) throws -> any SafeTensorsSource {
    let fileManager = FileManager.default
    let single = directory.appendingPathComponent("model.safetensors")
    if fileManager.fileExists(atPath: single.path) {
        return try SafeTensorsFile(contentsOf: single, options: options)
    }
    let index = directory.appendingPathComponent("model.safetensors.index.json")
    if fileManager.fileExists(atPath: index.path) {
        return try ShardedSafeTensors(indexAt: index, options: options)
    }
    let present = ((try? fileManager.contentsOfDirectory(atPath: directory.path)) ?? [])
        .filter { $0.hasSuffix(".safetensors") || $0.hasSuffix(".safetensors.index.json") }
        .sorted()
    let seen = present.isEmpty ? "no .safetensors files" : present.joined(separator: ", ")
    throw SafeTensorsError(
        .notFound, file: directory.path,
        message: "\(directory.path) has neither model.safetensors nor model.safetensors.index.json (it holds \(seen)); pass a Hugging Face-layout model directory.")
}
