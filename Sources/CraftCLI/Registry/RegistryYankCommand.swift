import ArgumentParser
import CraftRegistry
import Foundation

/// `craft-registry yank NAME@VERSION`: hide a version from names and ranges.
struct RegistryYankCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "yank",
        abstract: "Mark a published version yanked: hidden from NAME and ranges, still pullable by exact version.",
        discussion: """
            Examples (from the repository root):
              craft-registry pack examples/bundles/digits-vq --output-directory dist
              craft-registry --registry my-registry publish dist/digits-vq-1.0.0.craft
              craft-registry --registry my-registry yank digits-vq@1.0.0
              craft-registry --registry my-registry yank digits-vq@1.0.0 --undo
            """)

    @OptionGroup var options: RegistryOptions

    @Argument(help: "NAME@VERSION (an exact version).")
    var reference: String

    @Flag(help: "Restore a yanked version instead.")
    var undo = false

    func validate() throws {
        _ = try exactVersion(reference)
    }

    func run() throws {
        let registry = try options.resolvedRegistry()
        let (name, version) = try exactVersion(reference)
        let record = try registry.yank(name: name, version: version, yanked: !undo)
        if options.json {
            struct Result: Encodable {
                var name: String
                var version: String
                var yanked: Bool
            }
            try Output.json(Result(name: name, version: record.version, yanked: record.yanked))
        } else {
            Output.line(record.yanked ? "Yanked \(name)@\(record.version)." : "Restored \(name)@\(record.version).")
        }
    }
}

/// Parses `NAME@VERSION` where VERSION must be exact (yank and remove act on one version).
func exactVersion(_ text: String) throws -> (name: String, version: String) {
    let reference = try parseReference(text)
    guard case .exact(let version) = reference.requirement else {
        throw ValidationError("'\(text)' must name one exact version, like \(reference.name)@1.2.0.")
    }
    return (reference.name, version)
}
