import ArgumentParser
import Foundation
import Testing

@testable import CraftCLI

/// The same option means the same thing in every command of both tools (docs/cli.md, "Options every
/// command shares"), read off argument-parser's own description of each command.
@Suite("consistent options")
struct ConsistentOptionsTests {
    struct Dump: Decodable {
        struct Command: Decodable {
            var commandName: String
            var arguments: [Argument]?
            var subcommands: [Command]?
        }
        struct Argument: Decodable {
            var names: [Name]?
            var valueName: String?
        }
        struct Name: Decodable {
            var kind: String
            var name: String
        }
        var command: Command
    }

    /// Every leaf command of both tools, as `tool sub [sub]`, with its options by long name.
    static func commands() throws -> [(path: String, options: [String: Dump.Argument])] {
        var result: [(String, [String: Dump.Argument])] = []
        func walk(_ command: Dump.Command, path: String) {
            let path = path.isEmpty ? command.commandName : "\(path) \(command.commandName)"
            let subcommands = (command.subcommands ?? []).filter { $0.commandName != "help" }
            if subcommands.isEmpty {
                var options: [String: Dump.Argument] = [:]
                for argument in command.arguments ?? [] {
                    for name in argument.names ?? [] where name.kind == "long" { options["--" + name.name] = argument }
                }
                result.append((path, options))
            }
            for subcommand in subcommands { walk(subcommand, path: path) }
        }
        for root in [CraftCommand.self, RegistryCommand.self] as [ParsableCommand.Type] {
            walk(try JSONDecoder().decode(Dump.self, from: Data(root._dumpHelp().utf8)).command, path: "")
        }
        return result
    }

    @Test("-o/--output is always a file and --output-directory always a folder")
    func outputMeansAFile() throws {
        let commands = try Self.commands()
        #expect(commands.count > 25)
        for (path, options) in commands {
            if let output = options["--output"] {
                #expect(output.valueName == "file", "\(path): --output takes \(output.valueName ?? "?")")
                #expect(output.names?.contains { $0.kind == "short" && $0.name == "o" } == true, "\(path): --output has no -o")
            }
            if let directory = options["--output-directory"] {
                #expect(directory.valueName == "dir", "\(path): --output-directory takes \(directory.valueName ?? "?")")
            }
            #expect(options["--out"] == nil, "\(path) still spells it --out")
        }
    }

    @Test("every command that loads bundles takes --require-signature, --include-prerelease and --threads")
    func loadingOptionsEverywhere() throws {
        let commands = Dictionary(uniqueKeysWithValues: try Self.commands().map { ($0.path, $0.options) })
        for path in ["craft run", "craft eval", "craft tokens", "craft serve", "craft train", "craft stats"] {
            let options = try #require(commands[path], "\(path) is not a command")
            for option in ["--require-signature", "--include-prerelease", "--threads", "--registry", "--json"] {
                #expect(options[option] != nil, "\(path) lacks \(option)")
            }
        }
        let registry = ["--registry", RegistryTool.packageRoot.appendingPathComponent("registry").path]
        let unsigned = try runCraft(["run", "--encoder", "digits-siglip-vq@1.1.0", "--backend", "digits-gpt2", "--image",
                                     "examples/data/digits/images/strong/0017.png", "--prompt", "what digit is this ?",
                                     "--require-signature"] + registry)
        #expect(unsigned.status == 4 && unsigned.standardError.contains("is not signed and a signature is required"), "\(unsigned.standardError)")
        let threads = try runCraft(["tokens", "--encoder", "digits-siglip-vq", "--image", "x.png", "--threads", "0"] + registry)
        #expect(threads.status == 64 && threads.standardError.hasPrefix("error: --threads must be 1 or more"), "\(threads.standardError)")
    }

    @Test("an old or misspelt option name gets the nearest one")
    func renamedOptionsAreSuggested() throws {
        let train = try runCraft(["train", "--output", "out"])
        #expect(train.status == 64)
        #expect(train.standardError.contains("error: unknown option '--output'\nhint: did you mean '--output-directory'?"), "\(train.standardError)")
        let forward = try runCraft(["forward", "--model", "m", "--tokens", "1", "--out", "x.safetensors"])
        #expect(forward.standardError.contains("hint: did you mean '--output'?"), "\(forward.standardError)")
    }

    @Test("every --json object carries schema_version")
    func jsonCarriesASchemaVersion() throws {
        let registry = ["--registry", RegistryTool.packageRoot.appendingPathComponent("registry").path]
        let outputs = [
            try runCraft(["runtimes", "--json"]),
            try runCraft(["codebook", "examples/codebooks/tiny-codebook.safetensors", "--json"]),
            try runCraft(["tokens", "--encoder", "digits-siglip-vq", "--image", "examples/data/digits/images/strong/0017.png", "--json"] + registry),
            try runCraft(["--json"] + registry + ["run", "--encoder", "digits-siglip-vq@1.1.0", "--backend", "digits-answers",
                                                  "--image", "examples/data/digits/images/strong/0017.png", "--prompt", "p"]),
        ].map { ($0.status, $0.standardOutput) }
        let scratch = FileManager.default.temporaryDirectory
        let registryOutputs = try [["list", "--json"], ["info", "digits-llama", "--json"], ["pair", "digits-siglip-vq", "digits-gpt2", "--json"]]
            .map { try RegistryTool.run(registry + $0, in: scratch) }.map { ($0.status, $0.stdout) }
        for (status, text) in outputs + registryOutputs {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(status): \(text)")
            #expect(object["schema_version"] as? Int == 1, "\(text.prefix(200))")
        }
    }

    @Test("info shows how a bundle was made, its prompt template and context length")
    func infoShowsProvenance() throws {
        let registry = ["--registry", RegistryTool.packageRoot.appendingPathComponent("registry").path]
        let scratch = FileManager.default.temporaryDirectory
        let adapted = try RegistryTool.run(registry + ["info", "digits-siglip-vq@1.1.0"], in: scratch)
        #expect(adapted.status == 0, "\(adapted.stderr)")
        #expect(adapted.stdout.contains("method:     craft (base digits-siglip-vq@1.0.0, surrogate digits-llama@1.0.0)"), "\(adapted.stdout)")
        #expect(adapted.stdout.contains("accuracy:   28.1 % before, 67.2 % after on 64 validation examples"), "\(adapted.stdout)")
        let backend = try RegistryTool.run(registry + ["info", "digits-llama", "--json"], in: scratch).json()
        let details = try #require(backend["details"] as? [String: Any])
        #expect(details["source"] as? String == "bundle")
        #expect(details["prompt_template"] as? String == "<image>{prompt}" && details["context_length"] as? Int == 96)
        #expect((details["provenance"] as? [String: Any])?["method"] as? String == "pretrain")
    }
}
