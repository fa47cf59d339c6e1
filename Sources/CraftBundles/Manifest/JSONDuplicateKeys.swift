// Refusing duplicate member names in `craft.json` (docs/bundle-format.md): JSON parsers disagree on
// which of two equal keys counts (Foundation takes one, Python and jq the last), so a manifest with a
// duplicate could show one file list to Craft and another to every other tool.
import Foundation

enum JSONDuplicateKeys {
    /// Throws ``BundleError/Code/invalidManifest`` naming the first member name that appears twice in
    /// one object (names compared after unescaping, so `"a"` and `"\u0061"` are the same key), with
    /// `entry` set to its field path (`files[1].path`). Malformed JSON is left to the decoder.
    static func check(_ data: Data, source: String) throws {
        guard let (path, key) = firstDuplicate(in: data) else { return }
        throw BundleError(
            .invalidManifest,
            "\(source): \(path.isEmpty ? "the top-level object" : path) has the key \"\(key)\" more than once; JSON readers disagree on which one counts, so remove the duplicate and keep one",
            entry: path.isEmpty ? key : path + "." + key)
    }

    private enum Frame {
        case object(keys: Set<String>, current: String)
        case array(index: Int)
    }

    /// The first duplicate member name and the field path of the object holding it, or nil (also for
    /// malformed JSON). One pass, no recursion: linear in the input.
    static func firstDuplicate(in data: Data) -> (path: String, key: String)? {
        let bytes = [UInt8](data)
        let count = bytes.count
        var index = 0
        var stack: [Frame] = []

        func skipSpace() {
            while index < count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 { index += 1 }
        }
        func hex4() -> UInt32? {
            guard index + 4 <= count else { return nil }
            var value: UInt32 = 0
            for byte in bytes[index..<index + 4] {
                guard let digit = UInt8(ascii: byte) else { return nil }
                value = value << 4 | UInt32(digit)
            }
            index += 4
            return value
        }
        /// At a '"': the decoded string; `index` past the closing quote.
        func string() -> String? {
            guard index < count, bytes[index] == 0x22 else { return nil }
            index += 1
            var run = index
            var text = ""
            while index < count {
                let byte = bytes[index]
                if byte == 0x22 {
                    text += String(decoding: bytes[run..<index], as: UTF8.self)
                    index += 1
                    return text
                }
                if byte == 0x5C {
                    text += String(decoding: bytes[run..<index], as: UTF8.self)
                    index += 1
                    guard index < count else { return nil }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case 0x22: text += "\""
                    case 0x5C: text += "\\"
                    case 0x2F: text += "/"
                    case 0x62: text += "\u{08}"
                    case 0x66: text += "\u{0C}"
                    case 0x6E: text += "\n"
                    case 0x72: text += "\r"
                    case 0x74: text += "\t"
                    case 0x75:
                        guard var code = hex4() else { return nil }
                        if (0xD800...0xDBFF).contains(code), index + 6 <= count, bytes[index] == 0x5C, bytes[index + 1] == 0x75 {
                            let saved = index
                            index += 2
                            if let low = hex4(), (0xDC00...0xDFFF).contains(low) {
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                index = saved
                            }
                        }
                        text.unicodeScalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                    default: return nil
                    }
                    run = index
                    continue
                }
                index += 1
            }
            return nil
        }
        func path() -> String {
            var text = ""
            for frame in stack {
                switch frame {
                case .object(_, let current): text += text.isEmpty ? current : "." + current
                case .array(let position): text += "[\(position)]"
                }
            }
            return text
        }
        /// After '{' or ',' in an object: reads `"key":`; returns a duplicate, or nil to go on
        /// (`failed` for malformed input).
        func key(failed: inout Bool) -> (path: String, key: String)? {
            skipSpace()
            guard let name = string(), case .object(var keys, _)? = stack.last else { failed = true; return nil }
            if keys.contains(name) {
                stack.removeLast()
                return (path(), name)
            }
            keys.insert(name)
            stack[stack.count - 1] = .object(keys: keys, current: name)
            skipSpace()
            guard index < count, bytes[index] == 0x3A else { failed = true; return nil }
            index += 1
            return nil
        }

        value: while true {
            skipSpace()
            guard index < count else { return nil }
            var failed = false
            switch bytes[index] {
            case 0x7B:  // {
                index += 1
                skipSpace()
                if index < count, bytes[index] == 0x7D {
                    index += 1
                } else {
                    stack.append(.object(keys: [], current: ""))
                    if let duplicate = key(failed: &failed) { return duplicate }
                    if failed { return nil }
                    continue value
                }
            case 0x5B:  // [
                index += 1
                skipSpace()
                if index < count, bytes[index] == 0x5D {
                    index += 1
                } else {
                    stack.append(.array(index: 0))
                    continue value
                }
            case 0x22:
                guard string() != nil else { return nil }
            default:
                let start = index
                while index < count, ![0x2C, 0x5D, 0x7D, 0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 }
                if index == start { return nil }
            }
            // A value is complete: close containers until one continues.
            while let top = stack.last {
                skipSpace()
                guard index < count else { return nil }
                let byte = bytes[index]
                index += 1
                switch (top, byte) {
                case (.object, 0x2C):
                    if let duplicate = key(failed: &failed) { return duplicate }
                    if failed { return nil }
                    continue value
                case (.array(let position), 0x2C):
                    stack[stack.count - 1] = .array(index: position + 1)
                    continue value
                case (.object, 0x7D), (.array, 0x5D):
                    stack.removeLast()
                default:
                    return nil
                }
            }
            return nil
        }
    }
}

private extension UInt8 {
    /// The value of a hex digit.
    init?(ascii byte: UInt8) {
        switch byte {
        case 0x30...0x39: self = byte - 0x30
        case 0x41...0x46: self = byte - 0x41 + 10
        case 0x61...0x66: self = byte - 0x61 + 10
        default: return nil
        }
    }
}
