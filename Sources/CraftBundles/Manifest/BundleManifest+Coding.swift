// Reading and writing `craft.json`: decoding with field paths in errors, canonical encoding.
import CraftFiles
import Foundation

extension BundleManifest {
    /// Decodes a manifest from JSON, turning every decoding failure into a ``BundleError`` whose
    /// ``BundleError/entry`` is the field path (`files[2].sha256`).
    ///
    /// This does not run ``validate()``; call it next (the archive functions do both).
    /// - Parameter source: Where the bytes come from, for messages (a bundle file name).
    /// A member name that appears twice in one object is refused (``BundleError/Code/invalidManifest``
    /// naming it): other JSON readers would take a different one of the two.
    public static func decode(_ data: Data, source: String = BundleManifest.fileName) throws -> BundleManifest {
        try JSONDuplicateKeys.check(data, source: source)
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

    /// Reads and decodes a manifest file (without validating it); a file larger than `maxSize` bytes
    /// is refused before it is read (``BundleError/Code/limitExceeded``).
    public static func load(from url: URL, maxSize: Int64 = BundleLimits.default.maxManifestSize) throws -> BundleManifest {
        try decode(readFile(url, limit: maxSize), source: url.path)
    }

    /// The bytes of a manifest file of at most `limit` bytes (checked before and while reading).
    static func readFile(_ url: URL, limit: Int64) throws -> Data {
        do {
            return try BoundedFile.read(url, limit: Int(clamping: limit))
        } catch .tooLarge {
            throw BundleError(.limitExceeded, "the manifest \(url.path) is larger than the limit of \(limit) bytes for craft.json; move large data out of config and provenance into files", entry: BundleManifest.fileName)
        } catch .notFound {
            throw BundleError(.notFound, "cannot read the manifest \(url.path) (it does not exist); check that the directory holds a craft.json", entry: BundleManifest.fileName)
        } catch {
            throw BundleError(.io, "cannot read the manifest \(url.path) (it \(error.reason))", entry: BundleManifest.fileName)
        }
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
