import ArgumentParser
import CraftRegistry
import Foundation

/// `craft-registry remove NAME@VERSION`: delete a version and its bundle file.
struct RegistryRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Delete a published version and its file (prefer yank: removal breaks whoever pinned it).",
        discussion: """
            Examples (from the repository root):
              craft-registry pack examples/bundles/digits-vq --output-directory dist
              craft-registry --registry my-registry publish dist/digits-vq-1.0.0.craft
              craft-registry --registry my-registry remove digits-vq@1.0.0
            """)

    @OptionGroup var options: RegistryOptions

    @Argument(help: "NAME@VERSION (an exact version).")
    var reference: String

    func validate() throws {
        _ = try exactVersion(reference)
    }

    func run() throws {
        let registry = try options.resolvedRegistry()
        let (name, version) = try exactVersion(reference)
        let record = try registry.remove(name: name, version: version)
        if options.json {
            struct Result: Encodable {
                var name: String
                var version: String
                var removed: Bool
            }
            try Output.json(Result(name: name, version: record.version, removed: true))
        } else {
            Output.line("Removed \(name)@\(record.version).")
        }
    }
}
