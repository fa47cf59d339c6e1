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
    }

    @Test func knownCommandsAndOptionsAreLeftToArgumentParser() {
        #expect(UnknownSubcommand(CraftCommand.self, arguments: ["eval", "--bogus"]) == nil)
        #expect(UnknownSubcommand(CraftCommand.self, arguments: ["--bogus"]) == nil)
        #expect(UnknownSubcommand(CraftCommand.self, arguments: ["help", "eval"]) == nil)
        #expect(EditDistance.between("evaluate", "eval") == 4 && EditDistance.between("serch", "search") == 1)
    }
}
