// Craft's one small strict JSON (RFC 8259) parser: safetensors headers and shard indexes here, and
// tokenizer.json in CraftModels.
//
// Foundation's JSONSerialization silently keeps one of two duplicate keys (the safetensors format
// forbids duplicate tensor names), and compares keys by Unicode canonical equivalence (two vocabulary
// entries "é" and "e\u{301}" would collapse into one). So JSON is parsed here, keeping every key
// exactly as written and in order, duplicates included, for the caller to refuse or resolve. Nesting
// depth is capped so hostile input cannot exhaust the stack.

/// A parsed JSON value; objects keep their keys in file order, duplicates included.
package enum JSONNode: Sendable {
    case object([(key: String, value: JSONNode)])
    case array([JSONNode])
    case string(String)
    /// The number's literal text, validated against the JSON grammar.
    case number(String)
    case bool(Bool)
    case null

    /// A short name of the value's kind for error messages.
    package var kindName: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }
}

/// Why a JSON text failed to parse, with the byte offset where it did.
package struct JSONParseError: Error, Sendable {
    package let reason: String
    package let offset: Int
    /// The JSON may be valid, but an array is longer than the parser's limit.
    package var arrayTooLong = false
}

/// The top-level JSON value was valid but not an object (thrown by ``JSONParser/forEachMember(of:maximumArrayCount:_:)``).
struct JSONNotAnObject: Error {
    let kindName: String
}

package struct JSONParser {
    /// The deepest nesting of objects and arrays accepted by default.
    package static let defaultMaximumDepth = 64

    /// The bytes, read in place (a header is parsed straight from the memory-mapped file).
    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    /// The most elements one array may hold; more is a parse error (bounds the memory one array takes).
    private let maximumArrayCount: Int
    /// The deepest nesting of objects and arrays; deeper is a parse error.
    private let maximumDepth: Int

    private init(bytes: UnsafeRawBufferPointer, maximumArrayCount: Int, maximumDepth: Int = defaultMaximumDepth) {
        self.bytes = bytes
        self.maximumArrayCount = maximumArrayCount
        self.maximumDepth = maximumDepth
    }

    /// Parses one JSON value filling `bytes`, allowing surrounding whitespace.
    package static func parse(_ bytes: [UInt8], maximumArrayCount: Int = .max) throws(JSONParseError) -> JSONNode {
        let result: Result<JSONNode, JSONParseError> = bytes.withUnsafeBytes { buffer in
            do throws(JSONParseError) {
                return .success(try parse(buffer, maximumArrayCount: maximumArrayCount))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Parses one JSON value filling `bytes`, allowing surrounding whitespace. The bytes must be
    /// UTF-8 (``firstInvalidUTF8Offset(_:)``): string contents are not checked again.
    package static func parse(
        _ bytes: UnsafeRawBufferPointer, maximumArrayCount: Int = .max, maximumDepth: Int = defaultMaximumDepth
    ) throws(JSONParseError) -> JSONNode {
        var parser = JSONParser(bytes: bytes, maximumArrayCount: maximumArrayCount, maximumDepth: maximumDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        try parser.expectEnd()
        return value
    }

    /// Parses a JSON object filling `bytes` and hands each member to `body` as soon as it is parsed,
    /// so a large object (a safetensors header) never exists as one tree in memory.
    ///
    /// - Throws: ``JSONParseError`` for invalid JSON, ``JSONNotAnObject`` for valid JSON that is not an
    ///   object, or whatever `body` throws.
    package static func forEachMember(
        of bytes: UnsafeRawBufferPointer, maximumArrayCount: Int = .max, _ body: (String, JSONNode) throws -> Void
    ) throws {
        var parser = JSONParser(bytes: bytes, maximumArrayCount: maximumArrayCount)
        parser.skipWhitespace()
        guard parser.position < bytes.count, bytes[parser.position] == UInt8(ascii: "{") else {
            let value = try parser.parseValue(depth: 0)
            try parser.expectEnd()
            throw JSONNotAnObject(kindName: value.kindName)
        }
        parser.position += 1  // {
        parser.skipWhitespace()
        if parser.position < bytes.count, bytes[parser.position] == UInt8(ascii: "}") {
            parser.position += 1
            try parser.expectEnd()
            return
        }
        while true {
            let (key, value) = try parser.parseMember(depth: 1)
            try body(key, value)
            if try parser.endOfObject() { break }
        }
        try parser.expectEnd()
    }

    /// Checks that `bytes` hold one valid JSON value (surrounding whitespace allowed) without building
    /// it, and returns the kind of the top-level value (``JSONNode/kindName``). Used before
    /// ``forEachMember(of:maximumArrayCount:_:)`` so a syntax error anywhere is reported as such,
    /// ahead of any fault in the members.
    package static func validate(_ bytes: UnsafeRawBufferPointer, maximumArrayCount: Int = .max) throws(JSONParseError) -> String {
        var parser = JSONParser(bytes: bytes, maximumArrayCount: maximumArrayCount)
        parser.skipWhitespace()
        let kind = try parser.skipValue(depth: 0)
        try parser.expectEnd()
        return kind
    }

    /// Parses one value as ``parseValue(depth:)`` does, keeping nothing; returns its kind.
    private mutating func skipValue(depth: Int) throws(JSONParseError) -> String {
        guard position < bytes.count else { throw fail("unexpected end of JSON") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            guard depth < maximumDepth else { throw fail("JSON nested deeper than \(maximumDepth) levels") }
            position += 1
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return "an object"
            }
            while true {
                _ = try parseKey()
                _ = try skipValue(depth: depth + 1)
                if try endOfObject() { return "an object" }
            }
        case UInt8(ascii: "["):
            guard depth < maximumDepth else { throw fail("JSON nested deeper than \(maximumDepth) levels") }
            position += 1
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return "an array"
            }
            var count = 0
            while true {
                try checkArrayCount(count)
                count += 1
                _ = try skipValue(depth: depth + 1)
                if try endOfArray() { return "an array" }
            }
        default:
            return try parseValue(depth: depth).kindName  // a scalar: small, nothing to skip
        }
    }

    private mutating func expectEnd() throws(JSONParseError) {
        skipWhitespace()
        if position != bytes.count {
            throw JSONParseError(reason: "unexpected text after the JSON value", offset: position)
        }
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private func fail(_ reason: String) -> JSONParseError {
        JSONParseError(reason: reason, offset: position)
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONNode {
        guard position < bytes.count else { throw fail("unexpected end of JSON") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            guard depth < maximumDepth else { throw fail("JSON nested deeper than \(maximumDepth) levels") }
            return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["):
            guard depth < maximumDepth else { throw fail("JSON nested deeper than \(maximumDepth) levels") }
            return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        default:
            throw fail("unexpected character in JSON")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - position >= count else { throw fail("unexpected end of JSON") }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[position + offset] != start[offset] {
            throw fail("invalid literal in JSON")
        }
        position += count
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONNode {
        position += 1  // {
        var members: [(key: String, value: JSONNode)] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            members.append(try parseMember(depth: depth))
            if try endOfObject() { return .object(members) }
        }
    }

    /// One `"key": value` of an object, from the whitespace before the key.
    private mutating func parseMember(depth: Int) throws(JSONParseError) -> (key: String, value: JSONNode) {
        let key = try parseKey()
        return (key, try parseValue(depth: depth))
    }

    /// The `"key":` of an object member, from the whitespace before it to the start of its value.
    private mutating func parseKey() throws(JSONParseError) -> String {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
            throw fail("expected a string key in JSON object")
        }
        let key = try parseString()
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
            throw fail("expected ':' after a key in JSON object")
        }
        position += 1
        skipWhitespace()
        return key
    }

    /// After a member: consumes `,` (false: another member follows) or `}` (true: the object ends).
    private mutating func endOfObject() throws(JSONParseError) -> Bool {
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end of JSON inside an object") }
        if bytes[position] == UInt8(ascii: ",") {
            position += 1
            return false
        }
        if bytes[position] == UInt8(ascii: "}") {
            position += 1
            return true
        }
        throw fail("expected ',' or '}' in JSON object")
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONNode {
        position += 1  // [
        var elements: [JSONNode] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            try checkArrayCount(elements.count)
            elements.append(try parseValue(depth: depth))
            if try endOfArray() { return .array(elements) }
        }
    }

    /// Before an array element, with `count` elements already read: skips whitespace and refuses one
    /// more element than ``maximumArrayCount``.
    private mutating func checkArrayCount(_ count: Int) throws(JSONParseError) {
        skipWhitespace()
        guard count < maximumArrayCount else {
            var error = fail("JSON array longer than \(maximumArrayCount) elements")
            error.arrayTooLong = true
            throw error
        }
    }

    /// After an element: consumes `,` (false: another element follows) or `]` (true: the array ends).
    private mutating func endOfArray() throws(JSONParseError) -> Bool {
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end of JSON inside an array") }
        if bytes[position] == UInt8(ascii: ",") {
            position += 1
            return false
        }
        if bytes[position] == UInt8(ascii: "]") {
            position += 1
            return true
        }
        throw fail("expected ',' or ']' in JSON array")
    }

    private mutating func parseNumber() throws(JSONParseError) -> String {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count, isDigit(bytes[position]) else { throw fail("invalid number in JSON") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else { throw fail("invalid number in JSON") }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard position < bytes.count, isDigit(bytes[position]) else { throw fail("invalid number in JSON") }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        position += 1  // opening quote
        let start = position
        // Fast path: no escapes, so the string is the bytes between the quotes (already checked to be
        // UTF-8 by the callers).
        while position < bytes.count, bytes[position] != UInt8(ascii: "\""), bytes[position] != UInt8(ascii: "\\"),
            bytes[position] >= 0x20
        {
            position += 1
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "\"") {
            position += 1
            return String(decoding: bytes[start..<(position - 1)], as: UTF8.self)
        }
        var output: [UInt8] = Array(bytes[start..<position])
        var runStart = position
        func append(_ scalar: Unicode.Scalar, to output: inout [UInt8]) {
            output.append(contentsOf: String(scalar).utf8)
        }
        while true {
            guard position < bytes.count else { throw fail("unterminated string in JSON") }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                output.append(contentsOf: bytes[runStart..<position])
                position += 1
                return String(decoding: output, as: UTF8.self)
            }
            if byte < 0x20 {
                throw fail("unescaped control character in JSON string")
            }
            if byte != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            output.append(contentsOf: bytes[runStart..<position])
            position += 1
            guard position < bytes.count else { throw fail("unterminated escape in JSON string") }
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
                let unit = try parseHex4()
                if (0xD800...0xDBFF).contains(unit) {
                    guard bytes.count - position >= 6, bytes[position] == UInt8(ascii: "\\"),
                        bytes[position + 1] == UInt8(ascii: "u")
                    else { throw fail("unpaired surrogate escape in JSON string") }
                    position += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw fail("unpaired surrogate escape in JSON string")
                    }
                    let value = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                    guard let scalar = Unicode.Scalar(value) else { throw fail("invalid escape in JSON string") }
                    append(scalar, to: &output)
                } else {
                    guard let scalar = Unicode.Scalar(UInt32(unit)) else {
                        throw fail("unpaired surrogate escape in JSON string")
                    }
                    append(scalar, to: &output)
                }
            default:
                throw fail("invalid escape in JSON string")
            }
            runStart = position
        }
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt16 {
        guard bytes.count - position >= 4 else { throw fail("truncated \\u escape in JSON string") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt16
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt16(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt16(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt16(byte - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape in JSON string")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }
}

/// Whether `bytes` is well-formed UTF-8 (no overlong forms, surrogates or truncated sequences).
func isValidUTF8<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> Bool {
    firstInvalidUTF8Offset(bytes) == nil
}

/// The byte offset of the first ill-formed UTF-8 sequence in `bytes` (an overlong form, a surrogate,
/// a truncated sequence), or nil when all of it is well-formed.
///
/// Uses the standard library's UTF-8 parser rather than `String(validating:)`, which needs macOS 15.
package func firstInvalidUTF8Offset<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> Int? {
    var iterator = bytes.makeIterator()
    var parser = Unicode.UTF8.ForwardParser()
    var offset = 0
    while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid(let encoded): offset += encoded.count
        case .emptyInput: return nil
        case .error: return offset
        }
    }
}

// MARK: - Writing, byte-compatible with serde_json's compact output

enum JSONWriter {
    /// Appends `string` as a JSON string literal, escaping exactly as serde_json does
    /// (`\"`, `\\`, `\b \f \n \r \t`, other controls as `\u00xx`; `/` and non-ASCII left as is).
    static func appendString(_ string: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): output.append(contentsOf: [0x5C, 0x5C])
            case 0x08: output.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x00..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                output.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0xF)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
