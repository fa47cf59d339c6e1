import Foundation

/// Canonical JSON for every file the registry writes: sorted keys, pretty, no escaped slashes,
/// trailing newline. Identical content gives identical bytes, so republishing is a true no-op.
package enum JSONFormatting {
    package static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        do {
            var data = try encoder.encode(value)
            data.append(0x0A)
            return data
        } catch {
            throw RegistryError(.io, "cannot encode \(T.self) as JSON (\(error))", cause: error)
        }
    }

    /// One readable phrase for a decoding error: what is wrong, at which key path.
    package static func describe(_ error: Error) -> String {
        func path(_ keys: [CodingKey]) -> String {
            let text = keys.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
            return text.isEmpty ? "the top level" : String(text.drop { $0 == "." })
        }
        guard let decoding = error as? DecodingError else { return String(describing: error) }
        switch decoding {
        case .keyNotFound(let key, let context):
            return "missing key \(path(context.codingPath + [key]))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type at \(path(context.codingPath)): \(context.debugDescription)"
        case .dataCorrupted(let context):
            return "invalid JSON at \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return String(describing: decoding)
        }
    }
}
