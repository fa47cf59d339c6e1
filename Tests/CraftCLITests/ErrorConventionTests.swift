import CraftCore
import Foundation
import RuntimeTestSupport
import Testing

@testable import CraftCLI

/// One error convention on both tools (docs/cli.md, "Errors and exit codes"): every error is one
/// `error:` line, perhaps followed by one `hint:` line, and the same mistake exits with the same code
/// in every command.
@Suite("one error convention")
struct ErrorConventionTests {
    static let registry = ["--registry", RegistryTool.packageRoot.appendingPathComponent("registry").path]
    static let image = "examples/data/digits/images/strong/0017.png"

    /// stderr's lines, each of which must start `error:` or `hint:` (no usage block, no `Error:`).
    static func lines(_ text: String) -> [Substring] { text.split(separator: "\n") }

    @Test("usage errors are one error line and one hint line, exit 64, on both tools")
    func usageErrorsAreOneLine() throws {
        let missing = try runCraft(["run", "--encoder", "a", "--backend", "b", "--image", "c"])
        #expect(missing.status == 64)
        #expect(missing.standardError == """
            error: missing expected argument '--prompt <prompt>'
            hint: --prompt <prompt>: The question or instruction about the image. ('craft run --help' lists every option, with examples)

            """, "\(missing.standardError)")

        let invalid = try runCraft(["eval", "--encoder", "a", "--backend", "b", "--data", "d.jsonl", "--keep-ratio", "3"])
        #expect(invalid.status == 64)
        #expect(Self.lines(invalid.standardError) == [
            "error: --keep-ratio must be in (0, 1], such as 0.5 (1 keeps every token), not 3.0.",
            "hint: 'craft eval --help' lists every option, with examples",
        ], "\(invalid.standardError)")

        let scratch = FileManager.default.temporaryDirectory
        let unknown = try RegistryTool.run(["cache", "prune", "--bogus"], in: scratch)
        #expect(unknown.status == 64)
        #expect(Self.lines(unknown.stderr) == [
            "error: unknown option '--bogus'", "hint: 'craft-registry cache prune --help' lists every option, with examples",
        ], "\(unknown.stderr)")
    }

    @Test("--help still prints the help and exits 0")
    func helpIsNotAnError() throws {
        let help = try runCraft(["run", "--help"])
        #expect(help.status == 0 && help.standardOutput.contains("USAGE: craft run"), "\(help.standardError)")
    }

    @Test("the shared options may come before the subcommand on craft")
    func globalOptionsBeforeTheSubcommand() throws {
        #expect(GlobalOptions.hoisted(["--json", "--registry", "R", "run", "--prompt", "p"], root: CraftCommand.self)
            == ["run", "--json", "--registry", "R", "--prompt", "p"])
        #expect(GlobalOptions.hoisted(["--threads=2", "eval", "--quiet"], root: CraftCommand.self) == ["eval", "--threads=2", "--quiet"])
        // Anything else in front, or nothing to move, leaves the arguments alone (argument-parser reports them).
        #expect(GlobalOptions.hoisted(["--bogus", "run"], root: CraftCommand.self) == ["--bogus", "run"])
        #expect(GlobalOptions.hoisted(["run", "--json"], root: CraftCommand.self) == ["run", "--json"])
        // craft-registry's root declares its shared options itself.
        #expect(GlobalOptions.hoisted(["--json", "list"], root: RegistryCommand.self) == ["--json", "list"])

        let before = try runCraft(["--json"] + Self.registry + ["tokens", "--encoder", "digits-siglip-vq@1.1.0", "--image", Self.image])
        let after = try runCraft(["tokens", "--encoder", "digits-siglip-vq@1.1.0", "--image", Self.image, "--json"] + Self.registry)
        #expect(before.status == 0 && after.status == 0, "\(before.standardError) \(after.standardError)")
        #expect(before.standardOutput == after.standardOutput && before.standardOutput.hasPrefix("{"))
    }

    @Test("a missing image exits 2 in run, tokens, eval and train; an unreadable one 64")
    func missingImagesAreNotFoundEverywhere() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let dataset = scratch.path("data.jsonl")
        try Data("{\"image\": \"nope.png\", \"prompt\": \"what digit is this ?\", \"answer\": \"one\"}\n".utf8).write(to: dataset)
        let junk = scratch.path("junk.png")
        try Data("not an image at all".utf8).write(to: junk)

        let run = try runCraft(["run", "--encoder", "digits-siglip-vq@1.1.0", "--backend", "digits-gpt2", "--image", "nope.png",
                                "--prompt", "p"] + Self.registry)
        let tokens = try runCraft(["tokens", "--encoder", "digits-siglip-vq@1.1.0", "--image", "nope.png"] + Self.registry)
        let eval = try runCraft(["eval", "--encoder", "digits-siglip-vq@1.1.0", "--backend", "digits-gpt2", "--data", dataset.path,
                                 "--quiet"] + Self.registry)
        let train = try runCraft(["train", "--encoder", "digits-siglip-vq@1.0.0", "--surrogate", "digits-llama", "--data", dataset.path,
                                  "--output-directory", scratch.path("out").path, "--quiet"] + Self.registry)
        for result in [run, tokens, eval, train] {
            #expect(result.status == 2, "\(result.standardError)")
            #expect(result.standardError.hasPrefix("error: ") && result.standardError.contains("nope.png"), "\(result.standardError)")
        }
        let unreadable = try runCraft(["run", "--encoder", "digits-siglip-vq@1.1.0", "--backend", "digits-gpt2", "--image", junk.path,
                                       "--prompt", "p"] + Self.registry)
        #expect(unreadable.status == 64 && unreadable.standardError.contains("not a recognised image format"), "\(unreadable.standardError)")
    }

    @Test("a misspelt bundle name gets the nearest published one (exit 2)")
    func bundleNamesAreSuggested() throws {
        let typo = try runCraft(["tokens", "--encoder", "digits-siglip", "--image", Self.image] + Self.registry)
        #expect(typo.status == 2)
        #expect(typo.standardError.contains("no bundle named 'digits-siglip' in the registry at") &&
                typo.standardError.contains("did you mean 'digits-siglip-vq'?"), "\(typo.standardError)")
        let far = try RegistryTool.run(Self.registry + ["info", "zebra"], in: FileManager.default.temporaryDirectory)
        #expect(far.status == 2 && far.stderr.contains("look for it with craft-registry search zebra"), "\(far.stderr)")
        #expect(EditDistance.nearest(to: "digit-llama", among: ["digits-llama", "digits-gpt2"]) == "digits-llama")
        #expect(EditDistance.nearest(to: "zebra", among: ["digits-llama", "digits-gpt2"]) == nil)
    }

    @Test("web addresses, Hugging Face folders and bundle sources are named as such, not as missing or broken bundles")
    func urlsAndModelFoldersAreRecognised() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let folder = scratch.path("siglip")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: folder.appendingPathComponent("config.json"))
        let web = try runCraft(["tokens", "--encoder", "https://models.example.org/a-1.0.0.craft", "--image", Self.image] + Self.registry)
        #expect(web.status == 64, "\(web.standardError)")
        #expect(web.standardError.contains("https://models.example.org/a-1.0.0.craft is a web address"), "\(web.standardError)")
        let model = try runCraft(["tokens", "--encoder", folder.path, "--image", Self.image] + Self.registry)
        #expect(model.status == 64, "\(model.standardError)")
        #expect(model.standardError.contains("is a Hugging Face model folder, not a Craft bundle; make a bundle of it with craft convert encoder"),
                "\(model.standardError)")
        // A bundle source (craft.json without sizes and digests) is packed, not opened.
        let source = try runCraft(["run", "--encoder", "examples/bundles/digits-vq", "--backend", "examples/bundles/digits-answers",
                                   "--image", "3", "--prompt", "which digit?"] + Self.registry)
        #expect(source.status == 64, "\(source.standardError)")
        #expect(source.standardError.contains("is a bundle source (its craft.json lists files without size and sha256); pack it first with craft-registry pack"),
                "\(source.standardError)")
    }
}
