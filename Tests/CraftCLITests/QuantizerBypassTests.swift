import Foundation
import RuntimeTestSupport
import Testing

/// An encoder that bypasses its quantizer (the continuous baseline) passes the checker, since its
/// codebook hash matches, but hands the backend features it never saw: `pair` and `run` say so.
@Suite("quantizer bypass warning")
struct QuantizerBypassTests {
    @Test("pair and run warn about an encoder bundle with config.bypass_quantizer")
    func bypassIsWarned() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = ["--registry", RegistryTool.packageRoot.appendingPathComponent("registry").path]
        let directory = scratch.path("continuous")
        let pulled = try RegistryTool.run(registry + ["pull", "digits-siglip-vq@1.1.0", "--output-directory", directory.path], in: scratch.url)
        #expect(pulled.status == 0, "\(pulled.stderr)")
        let manifestURL = directory.appendingPathComponent("craft.json")
        var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as? [String: Any])
        var config = manifest["config"] as? [String: Any] ?? [:]
        let plain = try RegistryTool.run(registry + ["pair", directory.path, "digits-gpt2"], in: scratch.url)
        #expect(plain.status == 0 && !plain.stderr.contains("bypasses its quantizer"), "\(plain.stderr)")
        config["bypass_quantizer"] = true
        manifest["config"] = config
        try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]).write(to: manifestURL)

        let pair = try RegistryTool.run(registry + ["pair", directory.path, "digits-gpt2"], in: scratch.url)
        #expect(pair.status == 0, "\(pair.stderr)")
        #expect(pair.stderr.contains("warning: digits-siglip-vq@1.1.0 bypasses its quantizer (config.bypass_quantizer"), "\(pair.stderr)")
        let run = try runCraft(["run", "--encoder", directory.path, "--backend", "digits-gpt2", "--image",
                                "examples/data/digits/images/strong/0017.png", "--prompt", "what digit is this ?"] + registry)
        #expect(run.status == 0 && run.standardError.contains("bypasses its quantizer"), "\(run.standardError)")
    }
}
