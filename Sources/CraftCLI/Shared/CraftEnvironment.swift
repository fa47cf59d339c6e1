import ArgumentParser
import CraftBundles
import CraftPlugins
import CraftRuntimes

/// What the commands of `craft` and `craft-registry` run with, passed into every command that loads
/// bundles (as swiftly passes its context): an application builds its own `craft` with extra runtimes
/// by handing ``runCommandLine(_:environment:arguments:)`` an environment (examples/custom-runtime).
///
/// ```swift
/// var environment = CraftEnvironment()
/// environment.runtimes.registerBackend("code-vote", versions: try VersionRange("^1.0")) { bundle in
///     try CodeVoteBackend(bundle: bundle)
/// }
/// runCommandLine(MyCraft.self, environment: environment)
/// ```
public struct CraftEnvironment: Sendable {
    /// The runtimes that load bundles and count as registered for the compatibility checker.
    public var runtimes: RuntimeRegistry

    /// An environment; by default every runtime Craft ships (`RuntimeRegistry.craftDefault`).
    public init(runtimes: RuntimeRegistry = .craftDefault) {
        self.runtimes = runtimes
    }

    /// The environment of the `craft` and `craft-registry` executables: every runtime Craft ships,
    /// and runtime plugins (`craft-runtime-ID` on `$CRAFT_RUNTIME_PATH`, `~/.craft/runtimes`, `$PATH`;
    /// docs/runtime-protocol.md) for runtime ids none of them has.
    public static var standard: CraftEnvironment {
        var runtimes = RuntimeRegistry.craftDefault
        runtimes.resolver = PluginRuntimes()
        return CraftEnvironment(runtimes: runtimes)
    }
}

/// A command that needs the environment (runtimes) to run; ``runCommandLine(_:environment:arguments:)``
/// calls ``run(in:)`` with the environment it was given. Craft's commands that load bundles are
/// environment commands; an application's own commands can be too.
public protocol EnvironmentCommand: ParsableCommand {
    func run(in environment: CraftEnvironment) throws
}

extension EnvironmentCommand {
    /// Runs with the standard environment (what argument-parser's own `main()` would call).
    public func run() throws { try run(in: .standard) }
}
