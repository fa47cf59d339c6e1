// Typed, path-naming access to tokenizer.json, parsed by SafeTensors' strict JSON parser.
//
// The Hugging Face library compares tokens byte for byte, so objects stay ordered key/value lists
// with their exact strings (Foundation's JSONSerialization would merge canonically equivalent keys),
// and errors name the file and the JSON path.
import Foundation
import SafeTensors

extension JSONNode {
    /// Parses a whole tokenizer.json with the strict parser of SafeTensors (deeper nesting allowed:
    /// `Sequence` components nest); every failure is ``TokenizerError/Code/invalidJSON`` naming
    /// `source` and the byte offset.
    static func parseTokenizerFile(_ data: Data, source: String) throws -> JSONNode {
        func invalid(_ what: String, at offset: Int) -> TokenizerError {
            TokenizerError(
                .invalidJSON,
                "\(source) is not valid JSON: \(what) at byte \(offset); re-export the tokenizer with the Hugging Face library.")
        }
        if let offset = data.withUnsafeBytes({ firstInvalidUTF8Offset($0) }) { throw invalid("text is not UTF-8", at: offset) }
        do {
            return try data.withUnsafeBytes { bytes in try JSONParser.parse(bytes, maximumDepth: 512) }
        } catch let error as JSONParseError {
            throw invalid(error.reason, at: error.offset)
        }
    }

    /// The value for `key` in an object (the last one when a key repeats, as serde_json does), or nil.
    subscript(key: String) -> JSONNode? {
        guard case .object(let members) = self else { return nil }
        var found: JSONNode?
        for member in members where member.key.utf8.elementsEqual(key.utf8) { found = member.value }
        return found
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A number's value, or nil for any other kind (and for a number too large for `Double`).
    var double: Double? {
        guard case .number(let text) = self, let value = Double(text), value.isFinite else { return nil }
        return value
    }
}

/// Typed access to fields of a component, with errors that name the file and the JSON path.
struct JSONReader {
    let value: JSONNode
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
        guard case .string(let text) = value else { throw fail("must be a string but is \(value.kindName)") }
        return text
    }

    func bool() throws -> Bool {
        guard case .bool(let flag) = value else { throw fail("must be a boolean but is \(value.kindName)") }
        return flag
    }

    func int() throws -> Int {
        guard let number = value.double, number.rounded() == number, abs(number) < 1e15 else {
            throw fail("must be an integer but is \(value.kindName)")
        }
        return Int(number)
    }

    /// A length in tokens (padding, truncation): a non-negative integer of at most
    /// ``TokenizerLimits/maximumSequenceLength``.
    func sequenceLength() throws -> Int {
        guard let number = value.double, number.rounded() == number else {
            throw fail("must be an integer but is \(value.kindName)")
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
        guard case .array(let elements) = value else { throw fail("must be an array but is \(value.kindName)") }
        return elements.enumerated().map { JSONReader(value: $0.element, path: "\(path)[\($0.offset)]", source: source) }
    }

    /// The elements of an array without a reader (and its path string) per element: for the big
    /// lists (merges), whose readers are made only to report an error (``element(_:_:)``).
    func rawArray() throws -> [JSONNode] {
        guard case .array(let elements) = value else { throw fail("must be an array but is \(value.kindName)") }
        return elements
    }

    /// The members of an object without a reader per member (for the vocabulary); see ``member(_:_:)``.
    func rawMembers() throws -> [(key: String, value: JSONNode)] {
        guard case .object(let members) = value else { throw fail("must be an object but is \(value.kindName)") }
        return members
    }

    /// The reader of element `index` of this array.
    func element(_ index: Int, _ element: JSONNode) -> JSONReader {
        JSONReader(value: element, path: "\(path)[\(index)]", source: source)
    }

    /// The reader of member `key` of this object.
    func member(_ key: String, _ member: JSONNode) -> JSONReader {
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
        guard case .object(let members) = value else { throw fail("must be an object but is \(value.kindName)") }
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
