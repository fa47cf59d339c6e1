// Parsing and validating a safetensors header, by the rules of the reference Rust crate
// (huggingface/safetensors `SafeTensors::read_metadata` and `Metadata::validate`), made stricter
// where the format is ambiguous: duplicate names are an error, and every byte of the data section
// must belong to exactly one tensor.

/// Where one tensor sits in the data section.
struct SafeTensorsEntry: Sendable {
    let info: SafeTensorInfo
    /// Byte offset of the tensor's first byte, relative to the start of the data section.
    let begin: Int
    var end: Int { begin + info.byteCount }
}

/// A validated header: metadata and every tensor's place.
struct SafeTensorsHeader: Sendable {
    let metadata: [String: String]
    let entries: [String: SafeTensorsEntry]
    /// Tensor names sorted by their UTF-8 bytes.
    let names: [String]
    /// Byte offset of the data section in the file (8 + header length).
    let dataStart: Int

    /// The most dimensions a shape may have (PyTorch and NumPy 2 allow 64). It also bounds every
    /// array in the header, so no array can take more memory than 64 values.
    static let maximumRank = 64

    /// Validates the length prefix of a file of `fileSize` bytes and returns the header's length,
    /// checked against `maximumHeaderBytes` and against the file's size before anything is read.
    ///
    /// - Parameter prefix: the first 8 bytes of the file (fewer when the file is shorter).
    static func headerLength(
        fileSize: Int, prefix: [UInt8], file: String, maximumHeaderBytes: Int
    ) throws(SafeTensorsError) -> Int {
        guard fileSize >= 8, prefix.count >= 8 else {
            throw SafeTensorsError(
                .truncated, file: file,
                message: "\(file) is \(fileSize) bytes, too short to hold the 8-byte header length of a safetensors file; the file is truncated or not safetensors.")
        }
        var length: UInt64 = 0
        for index in (0..<8).reversed() { length = length << 8 | UInt64(prefix[index]) }
        guard length <= UInt64(max(0, maximumHeaderBytes)) else {
            throw SafeTensorsError(
                .headerTooLarge, file: file,
                message: "\(file) declares a \(length)-byte header, over the \(maximumHeaderBytes)-byte limit; the file is corrupt or not safetensors.")
        }
        let headerLength = Int(length)
        guard headerLength <= fileSize - 8 else {
            throw SafeTensorsError(
                .truncated, file: file,
                message: "\(file) declares a \(headerLength)-byte header but only \(fileSize - 8) bytes follow the length field; the file is truncated.")
        }
        return headerLength
    }

    /// Validates a header given as an array (tests, fuzzing).
    static func parse(
        headerBytes: [UInt8], dataLength: Int, dataStart: Int, file: String
    ) throws(SafeTensorsError) -> SafeTensorsHeader {
        let result: Result<SafeTensorsHeader, SafeTensorsError> = headerBytes.withUnsafeBytes { buffer in
            do throws(SafeTensorsError) {
                return .success(try parse(headerBytes: buffer, dataLength: dataLength, dataStart: dataStart, file: file))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Validates a header read in place (from the mapped file: no copy), entry by entry as the JSON
    /// is parsed, so the header never exists as a whole JSON tree in memory.
    static func parse(
        headerBytes: UnsafeRawBufferPointer, dataLength: Int, dataStart: Int, file: String
    ) throws(SafeTensorsError) -> SafeTensorsHeader {
        func invalid(_ what: String, tensor: String? = nil) -> SafeTensorsError {
            SafeTensorsError(.invalidHeader, file: file, tensor: tensor, message: "\(file): \(what); the file is corrupt or not safetensors.")
        }
        guard isValidUTF8(headerBytes) else {
            throw invalid("the header is not valid UTF-8")
        }
        // First the JSON syntax, keeping nothing (so a syntax error is reported as such wherever it
        // is), then the entries one by one as they are parsed again.
        let kind: String
        do {
            kind = try JSONParser.validate(headerBytes, maximumArrayCount: maximumRank)
        } catch {
            throw jsonError(error, file: file)
        }
        guard kind == "an object" else {
            throw invalid("the header is \(kind), not a JSON object")
        }

        var metadata: [String: String] = [:]
        var seenMetadata = false
        var entries: [String: SafeTensorsEntry] = [:]
        do {
            try JSONParser.forEachMember(of: headerBytes, maximumArrayCount: maximumRank) { name, value in
                if name == "__metadata__" {
                    guard !seenMetadata else {
                        throw SafeTensorsError(
                            .duplicate, file: file, tensor: name,
                            message: "\(file): the header holds \"__metadata__\" twice; the file is corrupt.")
                    }
                    seenMetadata = true
                    metadata = try parseMetadata(value, file: file)
                    return
                }
                guard entries[name] == nil else {
                    throw SafeTensorsError(
                        .duplicate, file: file, tensor: name,
                        message: "\(file): tensor '\(name)' appears twice in the header; the file is corrupt.")
                }
                entries[name] = try parseEntry(name: name, value: value, dataLength: dataLength, file: file)
            }
        } catch let error as SafeTensorsError {
            throw error
        } catch let error as JSONParseError {
            throw jsonError(error, file: file)
        } catch let error as JSONNotAnObject {
            throw invalid("the header is \(error.kindName), not a JSON object")
        } catch {
            throw invalid("the header cannot be read (\(error))")
        }
        try checkCoverage(entries: entries, dataLength: dataLength, file: file)
        let names = entries.keys.sorted(by: utf8Less)
        return SafeTensorsHeader(metadata: metadata, entries: entries, names: names, dataStart: dataStart)
    }

    private static func jsonError(_ error: JSONParseError, file: String) -> SafeTensorsError {
        let what = error.arrayTooLong
            ? "the header holds an array of more than \(maximumRank) elements (at byte \(error.offset) of the header), longer than any field of a safetensors header (shapes have at most \(maximumRank) dimensions)"
            : "the header is not valid JSON (\(error.reason) at byte \(error.offset) of the header)"
        return SafeTensorsError(.invalidHeader, file: file, message: "\(file): \(what); the file is corrupt or not safetensors.")
    }

    private static func parseMetadata(_ value: JSONNode, file: String) throws(SafeTensorsError) -> [String: String] {
        guard case .object(let pairs) = value else {
            throw SafeTensorsError(
                .invalidHeader, file: file, tensor: "__metadata__",
                message: "\(file): \"__metadata__\" is \(value.kindName), not an object of strings; the file is corrupt.")
        }
        var metadata: [String: String] = [:]
        for (key, item) in pairs {
            guard case .string(let text) = item else {
                throw SafeTensorsError(
                    .invalidHeader, file: file, tensor: "__metadata__",
                    message: "\(file): \"__metadata__\" key '\(key)' holds \(item.kindName); metadata values must be strings.")
            }
            guard metadata.updateValue(text, forKey: key) == nil else {
                throw SafeTensorsError(
                    .duplicate, file: file, tensor: "__metadata__",
                    message: "\(file): \"__metadata__\" holds key '\(key)' twice; the file is corrupt.")
            }
        }
        return metadata
    }

    private static func parseEntry(
        name: String, value: JSONNode, dataLength: Int, file: String
    ) throws(SafeTensorsError) -> SafeTensorsEntry {
        func error(_ code: SafeTensorsError.Code, _ what: String) -> SafeTensorsError {
            SafeTensorsError(code, file: file, tensor: name, message: "\(file): tensor '\(name)' \(what).")
        }
        guard case .object(let fields) = value else {
            throw error(.invalidHeader, "is described by \(value.kindName), not an object with dtype, shape and data_offsets; the file is corrupt")
        }
        func field(_ key: String) throws(SafeTensorsError) -> JSONNode {
            let matches = fields.filter { $0.key == key }
            guard let first = matches.first else {
                throw error(.invalidHeader, "has no \"\(key)\" field; every tensor entry needs dtype, shape and data_offsets")
            }
            guard matches.count == 1 else {
                throw error(.duplicate, "has the field \"\(key)\" twice; the file is corrupt")
            }
            return first.value
        }

        guard case .string(let dtypeName) = try field("dtype") else {
            throw error(.invalidHeader, "has a \"dtype\" that is not a string")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw error(.unknownDType, "has dtype '\(dtypeName)', which is not supported (supported: \(known)); convert the tensor to one of those")
        }

        guard case .array(let dimensionValues) = try field("shape") else {
            throw error(.invalidHeader, "has a \"shape\" that is not an array of integers")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dimensionValues.count)
        var elementCount = 1
        for (axis, dimensionValue) in dimensionValues.enumerated() {
            guard case .number(let literal) = dimensionValue else {
                throw error(.invalidShape, "has dimension \(axis) of its shape given as \(dimensionValue.kindName), not a non-negative integer")
            }
            let dimension: Int
            switch parseNonNegativeInteger(literal) {
            case .value(let parsed): dimension = parsed
            case .negative: throw error(.invalidShape, "has negative dimension \(literal) at axis \(axis) of its shape")
            case .notInteger: throw error(.invalidShape, "has non-integer dimension \(literal) at axis \(axis) of its shape")
            case .tooLarge: throw error(.overflow, "has dimension \(literal) at axis \(axis), too large to address")
            }
            let (product, overflowed) = elementCount.multipliedReportingOverflow(by: dimension)
            guard !overflowed else {
                throw error(.overflow, "has shape \(literalList(dimensionValues)) whose element count overflows a 64-bit integer")
            }
            elementCount = product
            shape.append(dimension)
        }
        let (byteCount, byteOverflow) = elementCount.multipliedReportingOverflow(by: dtype.byteWidth)
        guard !byteOverflow else {
            throw error(.overflow, "has shape \(shape) of \(dtype.rawValue) whose byte size overflows a 64-bit integer")
        }

        guard case .array(let offsetValues) = try field("data_offsets"), offsetValues.count == 2 else {
            throw error(.invalidHeader, "has \"data_offsets\" that is not an array of two integers [begin, end]")
        }
        var offsets: [Int] = []
        for offsetValue in offsetValues {
            guard case .number(let literal) = offsetValue else {
                throw error(.invalidHeader, "has a data offset given as \(offsetValue.kindName), not an integer")
            }
            switch parseNonNegativeInteger(literal) {
            case .value(let parsed): offsets.append(parsed)
            case .negative: throw error(.outOfBounds, "has negative data offset \(literal)")
            case .notInteger: throw error(.invalidHeader, "has non-integer data offset \(literal)")
            case .tooLarge:
                throw error(.outOfBounds, "has data offset \(literal), past the end of the \(dataLength)-byte data section")
            }
        }
        let begin = offsets[0], end = offsets[1]
        guard begin <= end else {
            throw error(.outOfBounds, "has data_offsets [\(begin), \(end)] that begin after they end")
        }
        guard end - begin == byteCount else {
            throw error(.shapeMismatch, "has shape \(shape) of \(dtype.rawValue) (\(byteCount) bytes) but data_offsets [\(begin), \(end)] span \(end - begin) bytes; the file is corrupt")
        }
        return SafeTensorsEntry(
            info: SafeTensorInfo(name: name, dtype: dtype, shape: shape, byteCount: byteCount), begin: begin)
    }

    /// Checks that the tensors' byte ranges tile the data section exactly: no overlap, no gap.
    private static func checkCoverage(
        entries: [String: SafeTensorsEntry], dataLength: Int, file: String
    ) throws(SafeTensorsError) {
        let ordered = entries.values.sorted {
            ($0.begin, $0.end) != ($1.begin, $1.end)
                ? ($0.begin, $0.end) < ($1.begin, $1.end) : utf8Less($0.info.name, $1.info.name)
        }
        var covered = 0
        var previous: String?
        for entry in ordered {
            let name = entry.info.name
            if entry.begin < covered, let previous {
                throw SafeTensorsError(
                    .overlap, file: file, tensor: name,
                    message: "\(file): tensor '\(name)' (bytes \(entry.begin)..<\(entry.end)) overlaps tensor '\(previous)' (ending at byte \(covered)); the file is corrupt.")
            }
            if entry.begin > covered {
                let after = previous.map { "after tensor '\($0)'" } ?? "at the start of the data section"
                throw SafeTensorsError(
                    .gap, file: file, tensor: name,
                    message: "\(file): bytes \(covered)..<\(entry.begin) \(after) and before tensor '\(name)' belong to no tensor; the file is corrupt.")
            }
            if entry.end >= covered { previous = name }
            covered = max(covered, entry.end)
        }
        if covered > dataLength, let previous {
            throw SafeTensorsError(
                .truncated, file: file, tensor: previous,
                message: "\(file): the header describes \(covered) bytes of tensor data but only \(dataLength) follow it, so tensor '\(previous)' is cut off; the file is truncated: download or copy it again.")
        }
        if covered < dataLength {
            let after = previous.map { "after tensor '\($0)'" } ?? "(the header lists no tensors)"
            throw SafeTensorsError(
                .gap, file: file, tensor: previous,
                message: "\(file): the last \(dataLength - covered) bytes of the data section \(after) belong to no tensor; the file is corrupt or has trailing data.")
        }
    }
}

enum IntegerLiteral {
    case value(Int)
    case negative
    case notInteger
    case tooLarge
}

/// Reads a JSON number literal as a non-negative `Int`.
func parseNonNegativeInteger(_ literal: String) -> IntegerLiteral {
    if literal.hasPrefix("-") {
        return literal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? .notInteger : .negative
    }
    if literal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) { return .notInteger }
    guard let value = Int(literal) else { return .tooLarge }
    return .value(value)
}

private func literalList(_ values: [JSONNode]) -> String {
    let parts = values.map { value -> String in
        if case .number(let literal) = value { return literal }
        return value.kindName
    }
    return "[" + parts.joined(separator: ", ") + "]"
}

/// Orders strings by their UTF-8 bytes, as Rust and Python sort names.
///
/// Compares the contiguous UTF-8 storage directly: sorting the names of a header with a million
/// entries spent most of its time in `UTF8View.lexicographicallyPrecedes`.
func utf8Less(_ lhs: String, _ rhs: String) -> Bool {
    var lhs = lhs, rhs = rhs
    return lhs.withUTF8 { left in
        rhs.withUTF8 { right in
            for index in 0..<min(left.count, right.count) where left[index] != right[index] {
                return left[index] < right[index]
            }
            return left.count < right.count
        }
    }
}
