import Foundation
import RuntimeTestSupport
import Testing

/// examples/custom-runtime: an application's own `craft` (`my-craft`, built by Craft's package as
/// `example-my-craft`) registers the code-vote runtime, builds a code-vote backend for the embedded
/// registry's real SigLIP-VQ encoder, and runs Craft's run, eval and pair on the pair.
@Suite("Custom runtime example: an application's own craft")
struct CustomRuntimeExampleTests {
    static let registry = RegistryTool.packageRoot.appendingPathComponent("registry").path
    static let data = RegistryTool.packageRoot.appendingPathComponent("examples/data/digits")

    func myCraft(_ arguments: [String], in directory: URL) throws -> RegistryTool.Result {
        let executable = try #require(RegistryTool.builtExecutable(named: "example-my-craft"), "example-my-craft is not built; run swift build")
        let running = try RegistryTool.start(executable, arguments, in: directory)
        return running.finish()
    }

    @Test("build-votes, pair, run and eval through my-craft exit 0; plain craft refuses the pair (exit 3)")
    func applicationBuildsItsOwnCraft() throws {
        let scratchFiles = try Scratch()
        defer { scratchFiles.remove() }
        let scratch = scratchFiles.url
        let votes = scratch.appendingPathComponent("digits-votes-1.0.0.craft").path
        let registry = ["--registry", Self.registry]

        let build = try myCraft(
            ["build-votes", "--encoder", "digits-siglip-vq@1.1.0", "--data", Self.data.appendingPathComponent("strong-train.jsonl").path,
             "--output", votes, "--limit", "300"] + registry, in: scratch)
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stdout.contains("digits-votes@1.0.0, 300 examples, 150 images"), "\(build.stdout)")

        let pair = try myCraft(["pair", "digits-siglip-vq@1.1.0", votes, "--json"] + registry, in: scratch)
        #expect(pair.status == 0, "\(pair.stderr)")
        #expect(try pair.json()["compatible"] as? Bool == true, "\(pair.stdout)")

        let image = Self.data.appendingPathComponent("images/strong/0011.png").path
        let run = try myCraft(
            ["run", "--encoder", "digits-siglip-vq@1.1.0", "--backend", votes, "--image", image, "--prompt", "is the digit even or odd ?"]
                + registry, in: scratch)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(["even\n", "odd\n"].contains(run.stdout), "\(run.stdout)")

        let eval = try myCraft(
            ["eval", "--encoder", "digits-siglip-vq@1.1.0", "--backend", votes,
             "--data", Self.data.appendingPathComponent("strong-test.jsonl").path, "--limit", "60", "--json"] + registry, in: scratch)
        #expect(eval.status == 0, "\(eval.stderr)")
        let report = try eval.json()
        #expect(report["total"] as? Int == 60)
        // Chance is about 0.3 (one digit in ten, one parity in two); the votes of 150 images read the
        // real encoder's codes well above it.
        #expect((report["accuracy"] as? Double ?? 0) > 0.45, "\(report["accuracy"] ?? "none")")

        // Craft's own craft does not know code-vote: the checker refuses the pair (exit 3).
        let craft = try #require(RegistryTool.builtExecutable(named: "craft"))
        let plain = try RegistryTool.start(
            craft, ["run", "--encoder", "digits-siglip-vq@1.1.0", "--backend", votes, "--image", image, "--prompt", "?"] + registry,
            in: scratch
        ).finish()
        #expect(plain.status == 3, "\(plain.stderr)")
        #expect(plain.stderr.contains("code-vote@1.0.0"), "\(plain.stderr)")
    }
}
