// Reading GGUF files (versions 2 and 3, llama.cpp's format): header, metadata of every value type,
// tensor infos, alignment, and tensor data in place in a read-only mapping. Every count, length,
// offset and size is checked against the file before it is used (docs/gguf.md).
import Foundation
import SafeTensors

/// Caps on what a GGUF header may declare, checked before anything is allocated.
public struct GGUFLimits: Sendable, Equatable {
    /// The most metadata entries.
    public var maximumMetadataEntries = 1 << 16
    /// The most tensors.
    public var maximumTensors = 1 << 16
    /// The longest string (a key, a value, a tensor name), in bytes.
    public var maximumStringBytes = 1 << 20
    /// The most elements in one metadata array (a tokenizer's vocabulary or merges).
    public var maximumArrayCount = 1 << 24
    /// How deep arrays may nest.
    public var maximumNesting = 4

    public init() {}
}

/// One tensor of a GGUF file: its name, type, shape and where its bytes are.
public struct GGUFTensor: Sendable, Equatable {
    /// The name (`blk.0.attn_q.weight`, ...).
    public let name: String
    /// The ggml type.
    public let type: GGUFTensorType
    /// The shape as numpy and PyTorch give it (slowest dimension first): GGUF stores ggml's
    /// `ne`, fastest first, which this reverses.
    public let shape: [Int]
    /// The offset of its bytes from the start of the file.
    public let fileOffset: Int
    /// Its byte count.
    public let byteCount: Int

    /// The number of values.
    public var count: Int { shape.reduce(1, *) }
}

/// A GGUF file, mapped read-only: metadata and tensor infos parsed and checked at open; tensor
/// bytes read in place when asked.
///
/// ```swift
/// let file = try GGUFFile(contentsOf: url)
/// let layers = file.metadata["llama.block_count"]?.integerValue
/// let embeddings = try file.dequantized("token_embd.weight")   // [Float], row-major
/// ```
public final class GGUFFile: Sendable {
    /// The path.
    public let path: String
    /// The format version (2 or 3).
    public let version: UInt32
    /// Every metadata entry, by key.
    public let metadata: [String: GGUFValue]
    /// The metadata keys in file order.
    public let metadataKeys: [String]
    /// Every tensor, in file order.
    public let tensors: [GGUFTensor]
    /// The alignment of tensor data (`general.alignment`, default 32).
    public let alignment: Int
    private let file: MappedFile
    private let index: [String: Int]

    /// The GGUF magic, `GGUF` read as a little-endian `UInt32`.
    static let magic: UInt32 = 0x4655_4747

    /// Maps and parses `url`.
    ///
    /// - Throws: ``GGUFError``: `notFound`/`io` when the file cannot be opened; `malformed` naming
    ///   the key or tensor when a count, length, offset or size does not fit the file, tensors
    ///   overlap or are misaligned, names repeat; `unsupported` for another version, value type or
    ///   tensor type.
    public init(contentsOf url: URL, limits: GGUFLimits = GGUFLimits()) throws(GGUFError) {
        path = url.path
        do {
            file = try MappedFile(path: url.path)
        } catch {
            throw GGUFError(error.code == .notFound ? .notFound : .io,
                            error.code == .notFound ? "\(url.path) does not exist; pass the path of a .gguf file" : "cannot read \(url.path): \(error.message)",
                            file: url.path)
        }
        let path = url.path
        let parsed = try file.withBytes(in: 0..<file.count) { bytes -> Result<Reader.Parsed, GGUFError> in
            var reader = Reader(bytes: bytes, path: path, limits: limits)
            return Result { () throws(GGUFError) in try reader.parse() }
        }.get()
        version = parsed.version
        metadata = parsed.metadata
        metadataKeys = parsed.keys
        tensors = parsed.tensors
        alignment = parsed.alignment
        index = Dictionary(uniqueKeysWithValues: parsed.tensors.enumerated().map { ($1.name, $0) })
    }

    /// The tensor named `name`.
    ///
    /// - Throws: ``GGUFError`` (`missing`) naming the file when there is none.
    public func tensor(_ name: String) throws(GGUFError) -> GGUFTensor {
        guard let position = index[name] else {
            throw GGUFError(.missing, "\(path) has no tensor \"\(name)\"", file: path)
        }
        return tensors[position]
    }

    /// Calls `body` with the raw bytes of `tensor`, in place in the mapping.
    public func withBytes<Result>(of tensor: GGUFTensor, _ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try file.withBytes(in: tensor.fileOffset..<(tensor.fileOffset + tensor.byteCount), body)
    }

    /// The values of the tensor named `name` as float32, row-major (``GGUFTensor/shape``).
    ///
    /// - Throws: ``GGUFError``: `missing` when there is no such tensor, `unsupported` for a type
    ///   Craft does not dequantize.
    public func dequantized(_ name: String) throws(GGUFError) -> [Float] {
        let tensor = try tensor(name)
        let path = self.path
        return try withBytes(of: tensor) { bytes in
            Result { () throws(GGUFError) in try GGUFDequantization.floats(bytes, type: tensor.type, count: tensor.count, tensor: name, file: path) }
        }.get()
    }
}

/// The parser: a cursor over the mapped bytes.
fileprivate struct Reader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    let limits: GGUFLimits
    var position = 0

    init(bytes: UnsafeRawBufferPointer, path: String, limits: GGUFLimits) {
        self.bytes = bytes
        self.path = path
        self.limits = limits
    }

    func fail(_ message: String) -> GGUFError { GGUFError(.malformed, "\(path): \(message)", file: path) }

    mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws(GGUFError) -> Int {
        guard count >= 0, count <= bytes.count - position else {
            throw fail("the file ends inside \(what()) (at byte \(position) of \(bytes.count)); the file is truncated")
        }
        defer { position += count }
        return position
    }

    mutating func integer<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(GGUFError) -> T {
        let at = try take(MemoryLayout<T>.size, what())
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: T.self))
    }

    mutating func string(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
        let length = try integer(UInt64.self, "the length of \(what())")
        guard length <= UInt64(limits.maximumStringBytes) else {
            throw fail("\(what()) declares \(length) bytes, over the limit of \(limits.maximumStringBytes)")
        }
        let at = try take(Int(length), what())
        guard let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + Int(length))]), as: UTF8.self) else {
            throw fail("\(what()) is not valid UTF-8")
        }
        return text
    }

    mutating func value(type: UInt32, key: String, depth: Int) throws(GGUFError) -> GGUFValue {
        let what = "the value of \"\(key)\""
        switch type {
        case 0: return .uint8(try integer(UInt8.self, what))
        case 1: return .int8(try integer(Int8.self, what))
        case 2: return .uint16(try integer(UInt16.self, what))
        case 3: return .int16(try integer(Int16.self, what))
        case 4: return .uint32(try integer(UInt32.self, what))
        case 5: return .int32(try integer(Int32.self, what))
        case 6: return .float32(Float(bitPattern: try integer(UInt32.self, what)))
        case 7:
            let byte = try integer(UInt8.self, what)
            guard byte <= 1 else { throw fail("\"\(key)\" is a bool of value \(byte); a bool is 0 or 1") }
            return .bool(byte == 1)
        case 8: return .string(try string(what))
        case 9:
            guard depth < limits.maximumNesting else { throw fail("\"\(key)\" nests arrays deeper than \(limits.maximumNesting)") }
            let elementType = try integer(UInt32.self, "the element type of \"\(key)\"")
            let count = try integer(UInt64.self, "the length of \"\(key)\"")
            guard count <= UInt64(limits.maximumArrayCount) else {
                throw fail("\"\(key)\" declares \(count) elements, over the limit of \(limits.maximumArrayCount)")
            }
            // Every element takes at least one byte: a count beyond the bytes left is a lie.
            guard count <= UInt64(bytes.count - position) else {
                throw fail("\"\(key)\" declares \(count) elements but only \(bytes.count - position) bytes remain")
            }
            guard elementType <= 12 else {
                throw GGUFError(.unsupported, "\(path): \"\(key)\" is an array of \(GGUFValue.typeName(elementType)), which GGUF does not define", file: path)
            }
            var elements: [GGUFValue] = []
            elements.reserveCapacity(Int(count))
            for _ in 0..<Int(count) { elements.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(elementType: elementType, elements)
        case 10: return .uint64(try integer(UInt64.self, what))
        case 11: return .int64(try integer(Int64.self, what))
        case 12: return .float64(Double(bitPattern: try integer(UInt64.self, what)))
        default:
            throw GGUFError(.unsupported, "\(path): \"\(key)\" has \(GGUFValue.typeName(type)), which GGUF does not define", file: path)
        }
    }

    struct Parsed {
        var version: UInt32
        var metadata: [String: GGUFValue]
        var keys: [String]
        var tensors: [GGUFTensor]
        var alignment: Int
    }

    mutating func parse() throws(GGUFError) -> Parsed {
        let magic = try integer(UInt32.self, "the magic")
        guard magic == GGUFFile.magic else {
            throw fail("the file does not start with GGUF; it is not a GGUF file")
        }
        let version = try integer(UInt32.self, "the version")
        guard version == 2 || version == 3 else {
            throw GGUFError(.unsupported, "\(path) is GGUF version \(version); Craft reads versions 2 and 3 (convert it again with a current llama.cpp)", file: path)
        }
        let tensorCount = try integer(UInt64.self, "the tensor count")
        let entryCount = try integer(UInt64.self, "the metadata count")
        guard tensorCount <= UInt64(limits.maximumTensors) else {
            throw fail("the header declares \(tensorCount) tensors, over the limit of \(limits.maximumTensors)")
        }
        guard entryCount <= UInt64(limits.maximumMetadataEntries) else {
            throw fail("the header declares \(entryCount) metadata entries, over the limit of \(limits.maximumMetadataEntries)")
        }
        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        for entry in 0..<Int(entryCount) {
            let key = try string("the key of metadata entry \(entry)")
            let type = try integer(UInt32.self, "the type of \"\(key)\"")
            let value = try value(type: type, key: key, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else { throw fail("the metadata key \"\(key)\" appears twice") }
            keys.append(key)
        }
        var alignment = 32
        if let declared = metadata["general.alignment"] {
            guard case .uint32(let value) = declared, value > 0, value.nonzeroBitCount == 1, value <= 1 << 16 else {
                throw fail("general.alignment must be a uint32 power of two up to 65536, not \(declared)")
            }
            alignment = Int(value)
        }

        struct Info { var name: String; var type: GGUFTensorType; var shape: [Int]; var offset: UInt64; var bytes: Int }
        var infos: [Info] = []
        var names: Set<String> = []
        for number in 0..<Int(tensorCount) {
            let name = try string("the name of tensor \(number)")
            guard names.insert(name).inserted else { throw fail("the tensor \"\(name)\" appears twice") }
            let dimensions = try integer(UInt32.self, "the dimension count of \"\(name)\"")
            guard (1...4).contains(dimensions) else {
                throw fail("the tensor \"\(name)\" has \(dimensions) dimensions; ggml tensors have 1 to 4")
            }
            var ne: [Int] = []
            var count = 1
            for _ in 0..<Int(dimensions) {
                let size = try integer(UInt64.self, "the shape of \"\(name)\"")
                guard size > 0, size <= UInt64(Int32.max) else { throw fail("the tensor \"\(name)\" has a dimension of \(size)") }
                let (product, overflow) = count.multipliedReportingOverflow(by: Int(size))
                guard !overflow, product <= bytes.count * 8 else { throw fail("the tensor \"\(name)\" declares more values than the file can hold") }
                count = product
                ne.append(Int(size))
            }
            let typeID = try integer(UInt32.self, "the type of \"\(name)\"")
            guard let type = GGUFTensorType.known[typeID] else {
                throw GGUFError(.unsupported, "\(path): the tensor \"\(name)\" has ggml type \(typeID), which Craft does not know", file: path)
            }
            guard ne[0] % type.blockSize == 0 else {
                throw fail("the tensor \"\(name)\" of type \(type) has rows of \(ne[0]) values, not a multiple of its block of \(type.blockSize)")
            }
            let offset = try integer(UInt64.self, "the offset of \"\(name)\"")
            infos.append(Info(name: name, type: type, shape: Array(ne.reversed()), offset: offset, bytes: count / type.blockSize * type.blockBytes))
        }
        let dataStart = (position + alignment - 1) / alignment * alignment
        guard dataStart <= bytes.count else { throw fail("the file ends before its tensor data (byte \(dataStart))") }
        var tensors: [GGUFTensor] = []
        for info in infos {
            guard info.offset % UInt64(alignment) == 0 else {
                throw fail("the tensor \"\(info.name)\" starts at offset \(info.offset), not a multiple of the alignment \(alignment)")
            }
            guard info.offset <= UInt64(bytes.count - dataStart), info.bytes <= bytes.count - dataStart - Int(info.offset) else {
                throw fail("the tensor \"\(info.name)\" (\(info.bytes) bytes at data offset \(info.offset)) runs past the end of the file; the file is truncated")
            }
            tensors.append(GGUFTensor(name: info.name, type: info.type, shape: info.shape, fileOffset: dataStart + Int(info.offset), byteCount: info.bytes))
        }
        let ordered = tensors.sorted { $0.fileOffset < $1.fileOffset }
        for (first, second) in zip(ordered, ordered.dropFirst()) where first.fileOffset + first.byteCount > second.fileOffset {
            throw fail("the tensors \"\(first.name)\" and \"\(second.name)\" overlap")
        }
        return Parsed(version: version, metadata: metadata, keys: keys, tensors: tensors, alignment: alignment)
    }
}
