import ArgumentParser
import CraftRegistry
import Foundation
import TensorCore

/// The options every `craft-registry` command shares: which registry, and JSON output.
///
/// Used with `@OptionGroup` by the root command (so `craft-registry --registry PATH list` works) and
/// by each subcommand (so `craft-registry list --registry PATH` works too).
public struct RegistryOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The registry: a directory, an https:// URL of one served by any web server (read-only), or a name from ~/.craft/config.json. Default: $CRAFT_REGISTRY, else ./registry when present, else the configuration's registries in order, else ~/.craft/registry.",
            valueName: "path-or-url"))
    public var registry: String?

    @Flag(name: .long, help: "Print machine-readable JSON (stable keys, see docs/cli.md) instead of text.")
    public var json = false

    @Flag(name: .long, help: "Read a remote registry from the cache only ($CRAFT_CACHE, else ~/.craft/cache); fetch nothing.")
    public var offline = false

    @Flag(name: .long, help: "Allow a plain http:// registry on another machine (loopback is always allowed).")
    public var insecure = false

    public init() {}

    /// The registry these options (merged with the root command's) select. A remote registry reports
    /// its downloads on stderr, and keeps them in `cache` when given (else `$CRAFT_CACHE` or
    /// `~/.craft/cache`), so a command's `--cache` holds both the downloads and what is unpacked.
    ///
    /// - Throws: ``RegistryError`` (exit 64) for a configuration file (`~/.craft/config.json`,
    ///   ``RegistryConfiguration``) that cannot be read.
    func resolvedRegistry(root: RegistryOptions? = nil, cache: String? = nil) throws -> Registry {
        var environment = ProcessInfo.processInfo.environment
        if let cache { environment["CRAFT_CACHE"] = cache }
        let registry = Registry.locate(
            explicit: self.registry ?? root?.registry, environment: environment, offline: offline || root?.offline == true,
            allowInsecure: insecure || root?.insecure == true, configuration: try RegistryConfiguration.load(environment: environment)
        ).registry
        for member in registry.members { member.remote?.progress = TransferProgress.reporter("downloading") }
        return registry
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

/// Options of the commands that load bundles to run them (`run`, `eval`, `tokens`, `serve`, `train`,
/// `stats`): which versions a range may resolve to, whose signatures are required, how many threads.
public struct LoadingOptions: ParsableArguments {
    @OptionGroup public var versions: VersionSelectionOptions
    @OptionGroup public var signatures: SignatureOptions

    @Option(help: ArgumentHelp("Threads for the tensor kernels and OpenBLAS (default: every core). Example: --threads 2", valueName: "n"))
    public var threads: Int?

    public init() {}

    public func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be 1 or more, not \(threads).") }
    }

    /// What every bundle the command opens must satisfy.
    public var policy: OpeningPolicy {
        OpeningPolicy(includePrerelease: versions.includePrerelease, requireSignature: signatures.requireSignature)
    }

    /// Sets the thread count of the tensor kernels and OpenBLAS when `--threads` was given.
    public func applyThreads() {
        if let threads { Tensor.threadCount = threads }
    }
}
