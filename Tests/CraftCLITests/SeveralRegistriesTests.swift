import CraftRegistry
import Foundation
import RuntimeTestSupport
import Testing

/// Several registries from a configuration file (docs/registry.md, "Several registries"): names
/// resolve in the first registry that holds them, list and search say where each bundle comes
/// from, `--registry NAME` picks one, and a broken file is refused.
@Suite("several registries")
struct SeveralRegistriesTests {
    @Test("lookups go through the configured registries in order; list and search show the source")
    func orderedLookups() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let embedded = RegistryTool.packageRoot.appendingPathComponent("registry")
        // "team" holds its own digits-vq (published from the example source) and nothing else;
        // "shared" is a copy of the embedded registry, which holds digits-vq too.
        let pack = try RegistryTool.run(["pack", RegistryTool.packageRoot.appendingPathComponent("examples/bundles/digits-vq").path,
                                         "--output-directory", "dist"], in: scratch.url)
        #expect(pack.status == 0, "\(pack.stderr)")
        #expect(try RegistryTool.run(["--registry", "team-dir", "publish", "dist/digits-vq-1.0.0.craft"], in: scratch.url).status == 0)
        try FileManager.default.copyItem(at: embedded, to: scratch.path("shared-dir"))
        let config = scratch.path("config.json")
        try Data("""
            {"registries": [{"name": "team", "location": "\(scratch.path("team-dir").path)"},
                            {"name": "shared", "location": "\(scratch.path("shared-dir").path)"}]}
            """.utf8).write(to: config)
        let environment = ["CRAFT_CONFIG": config.path]

        let list = try RegistryTool.run(["list", "--json"], in: scratch.url, environment: environment).json()
        let rows = try #require(list["bundles"] as? [[String: Any]])
        let sources = rows.map { "\($0["source"] as? String ?? "-"):\($0["name"] as? String ?? "?")" }
        #expect(sources.first == "team:digits-vq" && sources.contains("shared:digits-vq") && sources.contains("shared:digits-llama"), "\(sources)")
        let text = try RegistryTool.run(["search", "digits-vq"], in: scratch.url, environment: environment)
        #expect(text.stdout.hasPrefix("SOURCE  NAME"), "\(text.stdout)")

        // A name in both: the first registry answers; a name only in the second: the second.
        let first = try RegistryTool.run(["info", "digits-vq"], in: scratch.url, environment: environment)
        #expect(first.stdout.contains("registry:") && first.stdout.contains("team"), "\(first.stdout)")
        #expect(first.stdout.contains(scratch.path("team-dir").path), "\(first.stdout)")
        let second = try RegistryTool.run(["info", "digits-llama", "--json"], in: scratch.url, environment: environment).json()
        #expect((second["bundle"] as? [String: Any])?["source"] as? String == "shared")
        let pulled = try RegistryTool.run(["pull", "digits-llama"], in: scratch.url, environment: environment)
        #expect(pulled.status == 0, "\(pulled.stderr)")

        // --registry NAME picks one; a name nowhere names every registry.
        let picked = try RegistryTool.run(["--registry", "team", "list", "--json"], in: scratch.url, environment: environment).json()
        #expect((picked["bundles"] as? [[String: Any]])?.count == 1)
        let missing = try RegistryTool.run(["info", "digits-lama"], in: scratch.url, environment: environment)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no bundle named 'digits-lama' in the registries team (") && missing.stderr.contains("did you mean 'digits-llama'?"),
                "\(missing.stderr)")

        // craft run resolves through the same list.
        let run = try runCraft(["run", "--encoder", "digits-siglip-vq@1.1.0", "--backend", "digits-gpt2", "--image",
                                RegistryTool.packageRoot.appendingPathComponent("examples/data/digits/images/strong/0037.png").path,
                                "--prompt", "what digit is this ?"], environment: ["CRAFT_CONFIG": config.path, "CRAFT_REGISTRY": nil])
        #expect(run.status == 0 && run.standardOutput == "nine\n", "\(run.standardError)")
    }

    @Test("a broken configuration file is refused naming the file and the problem")
    func brokenConfigurationIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let cases: [(String, String)] = [
            ("not json", "is not a JSON object"),
            ("{}", "has no \"registries\" array"),
            ("{\"registries\": [{\"name\": \"a\"}]}", "has an entry registries[0] without a \"name\" and a \"location\""),
            ("{\"registries\": [{\"name\": \"a\", \"location\": \"x\"}, {\"name\": \"a\", \"location\": \"y\"}]}", "names two registries \"a\""),
            ("{\"registries\": [{\"name\": \"Bad Name\", \"location\": \"x\"}]}", "names registries[0] \"Bad Name\""),
        ]
        for (index, (text, message)) in cases.enumerated() {
            let file = scratch.path("config-\(index).json")
            try Data(text.utf8).write(to: file)
            #expect(throws: RegistryError.self) { try RegistryConfiguration.load(environment: ["CRAFT_CONFIG": file.path]) }
            let result = try RegistryTool.run(["list"], in: scratch.url, environment: ["CRAFT_CONFIG": file.path])
            #expect(result.status == 64 && result.stderr.contains("the configuration file \(file.path) \(message)"), "\(result.stderr)")
        }
        #expect(try RegistryConfiguration.load(environment: ["CRAFT_CONFIG": scratch.path("none.json").path]) == nil)
    }
}
