import ArgumentParser
import CraftBundles
import CraftPlugins
import Foundation

/// `craft runtimes`: the built-in runtimes and the runtime plugins found on the search path.
struct RuntimesCommand: EnvironmentCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtimes",
        abstract: "List the built-in runtimes and the runtime plugins Craft finds.",
        discussion: """
            A bundle names its runtime (runtime.id in craft.json). Runtimes built into Craft come first; \
            for any other id Craft runs a plugin, an executable craft-runtime-ID found in \
            $CRAFT_RUNTIME_PATH, then ~/.craft/runtimes, then $PATH, spoken to over craft.runtime/v1 \
            (docs/runtime-protocol.md). Each plugin found is started, asked what it offers (its \
            handshake), and stopped; one whose handshake fails is listed as broken with the reason. \
            --json prints `builtin` ([{id, versions, kind, summary}]) and `plugins` ([{id, executable, \
            source, plugin, runtimes: [{id, kind, version, summary}], problem}]).

            Examples:
              craft runtimes
              CRAFT_RUNTIME_PATH=examples/runtime-plugin-python craft runtimes --json
            """)

    @Flag(name: .long, help: "Print machine-readable JSON (stable keys, see docs/cli.md) instead of text.")
    var json = false

    func run(in environment: CraftEnvironment) throws {
        let builtIn = environment.runtimes.knownRuntimes
        let plugins = (environment.runtimes.resolver as? PluginRuntimes)?.survey() ?? []
        if json {
            try Output.json(Report(
                builtin: builtIn.map { .init(id: $0.id, versions: $0.versions.description, kind: $0.kind.rawValue, summary: $0.summary) },
                plugins: plugins.map { survey in
                    .init(id: survey.id, executable: survey.executable.path, source: survey.source, plugin: survey.plugin,
                          runtimes: survey.offers.map { .init(id: $0.id, kind: $0.kind.rawValue, version: $0.version, summary: $0.summary) },
                          problem: survey.problem)
                }))
            return
        }
        Output.line("built-in runtimes:")
        Output.line(Output.table(header: ["id", "versions", "kind", "summary"],
                                 rows: builtIn.map { [$0.id, $0.versions.description, $0.kind.rawValue, $0.summary] }))
        Output.line()
        guard !plugins.isEmpty else {
            Output.line("no runtime plugins (craft-runtime-ID executables in $CRAFT_RUNTIME_PATH, ~/.craft/runtimes or $PATH; docs/runtime-protocol.md)")
            return
        }
        Output.line("runtime plugins (\(runtimeProtocolVersion)):")
        var rows: [[String]] = []
        for survey in plugins {
            if let problem = survey.problem {
                rows.append([survey.id, "-", "broken", "\(survey.executable.path) (\(survey.source)): \(problem)"])
            }
            for offer in survey.offers {
                rows.append([offer.id, offer.version, offer.kind.rawValue, "\(survey.plugin ?? "?"): \(survey.executable.path) (\(survey.source))"])
            }
        }
        Output.line(Output.table(header: ["id", "version", "kind", "plugin"], rows: rows))
    }

    /// `--json` output of `craft runtimes`.
    struct Report: Encodable {
        struct BuiltIn: Encodable { var id, versions, kind, summary: String }
        struct Offer: Encodable { var id, kind, version, summary: String }
        struct Plugin: Encodable {
            var id: String
            var executable: String
            var source: String
            var plugin: String?
            var runtimes: [Offer]
            var problem: String?
        }
        var builtin: [BuiltIn]
        var plugins: [Plugin]
    }
}
