import CraftBundles
import CraftCore
import CraftFiles
import Foundation

/// Several registries in order, from a configuration file: `$CRAFT_CONFIG`, else
/// `~/.craft/config.json` (docs/registry.md, "Several registries").
///
/// ```json
/// {"registries": [
///   {"name": "local", "location": "~/craft/registry"},
///   {"name": "team", "location": "https://models.example.org/craft"}
/// ]}
/// ```
///
/// Without `--registry`, `$CRAFT_REGISTRY` or a `./registry` directory, commands read these in
/// order: a `NAME` resolves in the first registry that holds the name (a later registry never
/// shadows an earlier one), `list` and `search` show every registry's bundles with their source,
/// and writes go to the first. `--registry NAME` (or `CRAFT_REGISTRY=NAME`) picks one by name.
public struct RegistryConfiguration: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        /// The name users pass to `--registry` and see in the SOURCE column.
        public var name: String
        /// A directory path (`~` is `$HOME`) or an `http(s)://` URL.
        public var location: String
    }

    /// The registries, in lookup order.
    public var registries: [Entry]

    /// The configuration file's path: `$CRAFT_CONFIG`, else `~/.craft/config.json`.
    public static func fileURL(environment: [String: String], home: URL) -> URL {
        if let path = environment["CRAFT_CONFIG"], !path.isEmpty { return URL(fileURLWithPath: path) }
        return home.appendingPathComponent(".craft/config.json")
    }

    /// Reads the configuration file; `nil` when there is none.
    ///
    /// - Throws: ``RegistryError`` (usage, exit 64) naming the file and what is wrong: not JSON, no
    ///   `registries` array, an entry without a `name` or `location`, a name used twice, a name
    ///   that is not a bundle-style name.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment, home: URL? = nil) throws
        -> RegistryConfiguration?
    {
        let url = fileURL(environment: environment, home: home ?? HomeDirectory.locate(environment: environment))
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        func problem(_ text: String) -> RegistryError {
            RegistryError(.usage, "the configuration file \(url.path) \(text); see docs/registry.md, \"Several registries\"")
        }
        let data: Data
        do {
            data = try BoundedFile.read(url, limit: 1 << 20)
        } catch {
            throw problem("cannot be read, or is over 1 MiB (\(error))")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw problem("is not a JSON object")
        }
        guard let list = object["registries"] as? [Any] else { throw problem("has no \"registries\" array") }
        var entries: [Entry] = []
        for (index, item) in list.enumerated() {
            guard let entry = item as? [String: Any], let name = entry["name"] as? String, let location = entry["location"] as? String,
                  !location.isEmpty
            else { throw problem("has an entry registries[\(index)] without a \"name\" and a \"location\" string") }
            guard BundleReference.isValidName(name) else {
                throw problem("names registries[\(index)] \"\(name)\"; use lowercase letters, digits, '.', '_' and '-'")
            }
            guard !entries.contains(where: { $0.name == name }) else { throw problem("names two registries \"\(name)\"") }
            entries.append(Entry(name: name, location: location))
        }
        return RegistryConfiguration(registries: entries)
    }

    /// The entry named `name`.
    public func entry(named name: String) -> Entry? { registries.first { $0.name == name } }
}
