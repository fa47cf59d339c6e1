import CraftCore
import Foundation
import Testing

@testable import CraftCLI

/// A first argument that is no subcommand gets one `error:` line naming it and the nearest command
/// (exit 64), not argument-parser's "unknown option" about a later argument.
@Suite("unknown subcommands")
struct UnknownCommandTests {
    @Test func craftSuggestsTheNearestCommand() throws {
        let result = try runCraft(["evaluate", "--encoder", "x", "--backend", "y"])
        #expect(result.status == 64)
        #expect(result.standardError == "error: 'evaluate' is not a craft command; did you mean 'eval'? (craft --help lists them)\n",
                "\(result.standardError)")
        let far = try runCraft(["frobnicate"])
        #expect(far.status == 64 && far.standardError.contains("the commands are codebook, convert, eval"), "\(far.standardError)")
    }

    @Test func craftRegistrySuggestsTheNearestCommand() throws {
        let scratch = FileManager.default.temporaryDirectory
        let result = try RegistryTool.run(["serch", "digits"], in: scratch)
        #expect(result.status == 64)
        #expect(result.stderr.contains("'serch' is not a craft-registry command; did you mean 'search'?"), "\(result.stderr)")
        // After options: flags, and options with their values.
        let afterFlag = try RegistryTool.run(["--json", "lst"], in: scratch)
        #expect(afterFlag.status == 64 && afterFlag.stderr.contains("'lst' is not a craft-registry command; did you mean 'list'?"), "\(afterFlag.stderr)")
        let afterValue = try RegistryTool.run(["--registry", "registry", "serch", "digits"], in: scratch)
        #expect(afterValue.status == 64 && afterValue.stderr.contains("did you mean 'search'?"), "\(afterValue.stderr)")
    }

    @Test func knownCommandsAndOptionsAreLeftToArgumentParser() {
        #expect(UnknownSubcommand(CraftCommand.self, arguments: ["eval", "--bogus"]) == nil)
        #expect(UnknownSubcommand(CraftCommand.self, arguments: ["--bogus"]) == nil)
        #expect(UnknownSubcommand(CraftCommand.self, arguments: ["help", "eval"]) == nil)
        #expect(UnknownSubcommand(RegistryCommand.self, arguments: ["--registry", "my-registry", "list"]) == nil)
        #expect(UnknownSubcommand(RegistryCommand.self, arguments: ["--json", "list"]) == nil)
        #expect(EditDistance.between("evaluate", "eval") == 4 && EditDistance.between("serch", "search") == 1)
    }
}
