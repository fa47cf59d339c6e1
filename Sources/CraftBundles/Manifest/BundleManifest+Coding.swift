// Reading and writing `craft.json`: decoding with field paths in errors, canonical encoding.
import Foundation

extension BundleManifest {
    /// Decodes a manifest from JSON, turning every decoding failure into a ``BundleError`` whose
    /// ``BundleError/entry`` is the field path (`files[2].sha256`).
    ///
    /// This does not run ``validate()``; call it next (the archive functions do both).
    /// - Parameter source: Where the bytes come from, for messages (a bundle file name).
    public static func decode(_ data: Data, source: String = BundleManifest.fileName) throws -> BundleManifest {
        do {
            return try JSONDecoder().decode(BundleManifest.self, from: data)
        } catch let error as DecodingError {
            let (path, reason) = describe(error)
            let location = path.isEmpty ? source : "\(source): \(path)"
            throw BundleError(.invalidManifest, "\(location): \(reason); fix the manifest (see docs/bundle-format.md)", entry: path.isEmpty ? BundleManifest.fileName : path)
        } catch {
            throw BundleError(.invalidManifest, "\(source) is not valid JSON (\(error.localizedDescription)); fix the manifest (see docs/bundle-format.md)", entry: BundleManifest.fileName)
        }
    }

    /// Reads and decodes a manifest file (without validating it).
    public static func load(from url: URL) throws -> BundleManifest {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw BundleError(.notFound, "cannot read the manifest \(url.path) (\(error.localizedDescription)); check that the directory holds a craft.json", entry: BundleManifest.fileName)
        }
        return try decode(data, source: url.path)
    }

    /// The canonical JSON of the manifest: sorted keys, pretty-printed, `/` unescaped, trailing newline.
    ///
    /// Equal manifests give equal bytes, which makes packing reproducible.
    public func canonicalJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        do {
            var data = try encoder.encode(self)
            data.append(0x0A)
            return data
        } catch {
            throw BundleError(.invalidManifest, "the manifest of \(reference) cannot be encoded as JSON (\(error.localizedDescription)); check for non-finite numbers in config or provenance", entry: BundleManifest.fileName)
        }
    }

    /// A field path in the manifest's own notation: `files[2].sha256`.
    static func fieldPath(_ codingPath: [CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return text
    }

    private static func describe(_ error: DecodingError) -> (path: String, reason: String) {
        switch error {
        case .keyNotFound(let key, let context):
            let parent = fieldPath(context.codingPath)
            let path = parent.isEmpty ? key.stringValue : parent + "." + key.stringValue
            return (path, "required field is missing")
        case .typeMismatch(let type, let context):
            return (fieldPath(context.codingPath), "expected \(friendlyName(type))")
        case .valueNotFound(let type, let context):
            return (fieldPath(context.codingPath), "expected \(friendlyName(type)), found null")
        case .dataCorrupted(let context):
            let path = fieldPath(context.codingPath)
            if path.isEmpty { return ("", "not valid JSON") }
            return (path, context.debugDescription)
        @unknown default:
            return ("", "cannot be decoded")
        }
    }

    private static func friendlyName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default:
            String(describing: type).hasPrefix("Array") ? "an array" : (String(describing: type).hasPrefix("Dictionary") ? "an object" : "a value of type \(type)")
        }
    }
}
