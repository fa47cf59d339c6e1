// my-craft: an application's own `craft`, with the code-vote runtime registered. Every `craft`
// command (run, eval, train, tokens, …), craft-registry's `pair`, and the application's own
// `build-votes` run in one environment, so code-vote bundles load and pair like Craft's own.
import ArgumentParser
import CraftCLI

struct MyCraft: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "my-craft",
        abstract: "Craft's commands with the code-vote runtime registered.",
        discussion: """
            Examples (from the repository root; D=examples/data/digits):
              my-craft build-votes --registry registry \\
                  --encoder digits-siglip-vq@1.1.0 \\
                  --data $D/strong-train.jsonl --output votes.craft
              my-craft pair --registry registry digits-siglip-vq@1.1.0 votes.craft
              my-craft eval --registry registry --encoder digits-siglip-vq@1.1.0 \\
                  --backend votes.craft --data $D/strong-test.jsonl
            """,
        subcommands: CraftCommand.configuration.subcommands
            + RegistryCommand.configuration.subcommands.filter { $0.configuration.commandName == "pair" }
            + [BuildVotesCommand.self])
}

var environment = CraftEnvironment()
environment.runtimes.registerCodeVote()
runCommandLine(MyCraft.self, environment: environment)
