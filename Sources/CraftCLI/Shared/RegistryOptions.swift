import ArgumentParser
import CraftRegistry
import Foundation

/// The options every `craft-registry` command shares: which registry, and JSON output.
///
/// Used with `@OptionGroup` by the root command (so `craft-registry --registry PATH list` works) and
/// by each subcommand (so `craft-registry list --registry PATH` works too).
public struct RegistryOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The registry directory. Default: $CRAFT_REGISTRY, else ./registry when present, else ~/.craft/registry.",
            valueName: "path"))
    public var registry: String?

    @Flag(name: .long, help: "Print machine-readable JSON (stable keys, see docs/cli.md) instead of text.")
    public var json = false

    public init() {}

    /// The registry these options (merged with the root command's) select.
    func resolvedRegistry(root: RegistryOptions? = nil) -> Registry {
        Registry.locate(explicit: registry ?? root?.registry).registry
    }
}

/// Options of commands that pick versions.
public struct VersionSelectionOptions: ParsableArguments {
    @Flag(name: .long, help: "Consider pre-release versions (1.0.0-beta.1) when resolving names and ranges.")
    public var includePrerelease = false

    public init() {}
}

/// Options of commands that check signatures.
public struct SignatureOptions: ParsableArguments {
    @Flag(
        name: .long,
        help: "Refuse (exit 4) a bundle that is unsigned or signed only by keys the registry does not trust.")
    public var requireSignature = false

    public init() {}
}
