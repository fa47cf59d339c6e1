// A small, strict JSON reader for tokenizer.json.
//
// Foundation's JSONSerialization returns `[String: Any]`, whose keys compare by Unicode canonical
// equivalence: two vocabulary entries such as "é" (U+00E9) and "e\u{301}" would collapse into one.
// The Hugging Face library compares tokens byte for byte, so this reader keeps objects as ordered
// key/value lists with their exact strings and reports errors with a JSON path.
import Foundation

/// A parsed JSON value that keeps object keys exactly as written, in order.
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// The value for `key` in an object (the last one when a key repeats, as serde_json does), or nil.
    subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        var found: JSONValue?
        for member in members where member.key.utf8.elementsEqual(key.utf8) { found = member.value }
        return found
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// Parses JSON bytes into a ``JSONValue``.
struct JSONParser {
    /// The file's bytes, read in place (no copy: tokenizer files run to tens of megabytes).
    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    private var depth = 0
    private let source: String

    static func parse(_ data: Data, source: String) throws -> JSONValue {
        try data.withUnsafeBytes { bytes in
            var parser = JSONParser(bytes: bytes, source: source)
            parser.skipWhitespace()
            let value = try parser.parseValue()
            parser.skipWhitespace()
            if parser.position != parser.bytes.count {
                throw parser.error("unexpected characters after the JSON value")
            }
            return value
        }
    }

    private init(bytes: UnsafeRawBufferPointer, source: String) {
        self.bytes = bytes
        self.source = source
    }

    private func error(_ what: String) -> TokenizerError {
        TokenizerError(
            .invalidJSON,
            "\(source) is not valid JSON: \(what) at byte \(position); re-export the tokenizer with the Hugging Face library.")
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws -> JSONValue {
        guard position < bytes.count else { throw error("unexpected end of data") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        default: return .number(try parseNumber())
        }
    }

    private mutating func expectLiteral(_ literal: String) throws {
        let utf8 = Array(literal.utf8)
        guard position + utf8.count <= bytes.count, Array(bytes[position..<position + utf8.count]) == utf8 else {
            throw error("invalid literal")
        }
        position += utf8.count
    }

    private mutating func enter() throws {
        depth += 1
        if depth > 512 { throw error("nesting deeper than 512 levels") }
    }

    private mutating func parseObject() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        position += 1
        var members: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw error("expected a string key")
            }
            let key = try parseString()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("expected ':'") }
            position += 1
            skipWhitespace()
            let value = try parseValue()
            members.append((key, value))
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of data in an object") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
            } else if bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            } else {
                throw error("expected ',' or '}'")
            }
        }
    }

    private mutating func parseArray() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of data in an array") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
            } else if bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            } else {
                throw error("expected ',' or ']'")
            }
        }
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("invalid hex digit in a \\u escape")
            }
            value = value * 16 + digit
            position += 1
        }
        return value
    }

    private mutating func parseString() throws -> String {
        position += 1  // opening quote
        var output: [UInt8] = []
        var runStart = position
        while true {
            guard position < bytes.count else { throw error("unterminated string") }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                output.append(contentsOf: bytes[runStart..<position])
                position += 1
                break
            }
            if byte < 0x20 { throw error("control character in a string") }
            if byte != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            output.append(contentsOf: bytes[runStart..<position])
            position += 1
            guard position < bytes.count else { throw error("unterminated escape") }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""): output.append(0x22)
            case UInt8(ascii: "\\"): output.append(0x5C)
            case UInt8(ascii: "/"): output.append(0x2F)
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if (0xD800...0xDBFF).contains(code) {
                    guard position + 6 <= bytes.count, bytes[position] == UInt8(ascii: "\\"),
                        bytes[position + 1] == UInt8(ascii: "u")
                    else { throw error("unpaired surrogate in a \\u escape") }
                    position += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate in a \\u escape") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw error("unpaired surrogate in a \\u escape")
                }
                guard let scalar = Unicode.Scalar(code) else { throw error("invalid \\u escape") }
                output.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw error("invalid escape sequence")
            }
            runStart = position
        }
        guard let string = String(validating: output, as: UTF8.self) else {
            throw error("string is not valid UTF-8")
        }
        return string
    }

    private mutating func parseNumber() throws -> Double {
        let start = position
        while position < bytes.count, Self.isNumberByte(bytes[position]) { position += 1 }
        guard position > start, let text = String(validating: bytes[start..<position], as: UTF8.self),
            let value = Double(text), value.isFinite
        else {
            position = start
            throw error("invalid value")
        }
        return value
    }

    private static func isNumberByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
            UInt8(ascii: "e"), UInt8(ascii: "E"):
            return true
        default:
            return false
        }
    }
}

/// Typed access to fields of a component, with errors that name the file and the JSON path.
struct JSONReader {
    let value: JSONValue
    let path: String
    let source: String

    func fail(_ what: String) -> TokenizerError {
        TokenizerError(.invalidField, "\(source): \(path) \(what); fix the field or re-export the tokenizer.")
    }

    func child(_ key: String) -> JSONReader? {
        guard let child = value[key], !child.isNull else { return nil }
        return JSONReader(value: child, path: "\(path).\(key)", source: source)
    }

    func required(_ key: String) throws -> JSONReader {
        guard let child = child(key) else { throw fail("has no field \"\(key)\"") }
        return child
    }

    func string() throws -> String {
        guard case .string(let text) = value else { throw fail("must be a string but is \(value.typeName)") }
        return text
    }

    func bool() throws -> Bool {
        guard case .bool(let flag) = value else { throw fail("must be a boolean but is \(value.typeName)") }
        return flag
    }

    func int() throws -> Int {
        guard case .number(let number) = value, number.rounded() == number, abs(number) < 1e15 else {
            throw fail("must be an integer but is \(value.typeName)")
        }
        return Int(number)
    }

    /// A length in tokens (padding, truncation): a non-negative integer of at most
    /// ``TokenizerLimits/maximumSequenceLength``.
    func sequenceLength() throws -> Int {
        guard case .number(let number) = value, number.rounded() == number else {
            throw fail("must be an integer but is \(value.typeName)")
        }
        guard number >= 0 else { throw fail("must not be negative but is \(Int(exactly: number).map(String.init) ?? "\(number)")") }
        guard number <= Double(TokenizerLimits.maximumSequenceLength) else {
            let shown = number < 1e18 ? String(Int(number)) : "\(number)"
            throw TokenizerError(
                .limitExceeded,
                "\(source): \(path) is \(shown), over Craft's limit of \(TokenizerLimits.maximumSequenceLength) tokens; use a smaller length.")
        }
        return Int(number)
    }

    func array() throws -> [JSONReader] {
        guard case .array(let elements) = value else { throw fail("must be an array but is \(value.typeName)") }
        return elements.enumerated().map { JSONReader(value: $0.element, path: "\(path)[\($0.offset)]", source: source) }
    }

    /// The elements of an array without a reader (and its path string) per element: for the big
    /// lists (merges), whose readers are made only to report an error (``element(_:_:)``).
    func rawArray() throws -> [JSONValue] {
        guard case .array(let elements) = value else { throw fail("must be an array but is \(value.typeName)") }
        return elements
    }

    /// The members of an object without a reader per member (for the vocabulary); see ``member(_:_:)``.
    func rawMembers() throws -> [(key: String, value: JSONValue)] {
        guard case .object(let members) = value else { throw fail("must be an object but is \(value.typeName)") }
        return members
    }

    /// The reader of element `index` of this array.
    func element(_ index: Int, _ element: JSONValue) -> JSONReader {
        JSONReader(value: element, path: "\(path)[\(index)]", source: source)
    }

    /// The reader of member `key` of this object.
    func member(_ key: String, _ member: JSONValue) -> JSONReader {
        JSONReader(value: member, path: "\(path).\(key)", source: source)
    }

    /// Fails with ``TokenizerError/Code/limitExceeded`` when this list or map holds more than `limit` entries.
    func checkCount(_ count: Int, limit: Int, of what: String) throws {
        guard count <= limit else {
            throw TokenizerError(
                .limitExceeded,
                "\(source): \(path) holds \(count) \(what), over Craft's limit of \(limit); this is not a tokenizer Craft reads.")
        }
    }

    func members() throws -> [(key: String, value: JSONReader)] {
        guard case .object(let members) = value else { throw fail("must be an object but is \(value.typeName)") }
        return members.map { ($0.key, JSONReader(value: $0.value, path: "\(path).\($0.key)", source: source)) }
    }

    func string(_ key: String) throws -> String { try required(key).string() }
    func optionalString(_ key: String) throws -> String? { try child(key)?.string() }
    func bool(_ key: String, default defaultValue: Bool) throws -> Bool { try child(key)?.bool() ?? defaultValue }
    func int(_ key: String) throws -> Int { try required(key).int() }

    /// The component's `"type"` field.
    func type() throws -> String { try string("type") }

    func unsupported(_ kind: String, _ type: String, supported: [String]) -> TokenizerError {
        TokenizerError(
            .unsupportedComponent,
            "\(source): \(path) is a \(kind) of type \"\(type)\", which Craft's tokenizer does not support "
                + "(supported: \(supported.joined(separator: ", "))); use a tokenizer.json without it.")
    }
}
