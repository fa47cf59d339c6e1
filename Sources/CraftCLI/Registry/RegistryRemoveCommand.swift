import ArgumentParser
import CraftRegistry
import Foundation

/// `craft-registry remove NAME@VERSION`: delete a version and its bundle file.
struct RegistryRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Delete a published version and its file (prefer yank: removal breaks whoever pinned it).",
        discussion: """
            Examples:
              craft-registry remove clinical-vq@1.2.0-rc.1
            """)

    @OptionGroup var options: RegistryOptions

    @Argument(help: "NAME@VERSION (an exact version).")
    var reference: String

    func validate() throws {
        _ = try exactVersion(reference)
    }

    func run() throws {
        let registry = options.resolvedRegistry()
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
