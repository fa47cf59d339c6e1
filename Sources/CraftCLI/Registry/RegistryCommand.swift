import ArgumentParser

/// The `craft-registry` tool: look up, pair, pack, verify, publish and pull bundles (DESIGN.md section 9).
public struct RegistryCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "craft-registry",
        abstract: "Look up, pair, pack, verify, publish and pull Craft bundles.",
        subcommands: [])

    public init() {}
}
