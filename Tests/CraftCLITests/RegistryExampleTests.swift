import CraftBundles
import Foundation
import Testing

/// Runs `examples/publish-an-encoder/publish.sh` end to end with the built `craft` and
/// `craft-registry`: train (4 seeded steps), pack, verify, sign, publish, pair with both backends, run.
@Suite("examples/publish-an-encoder")
struct RegistryExampleTests {
    @Test func thePublishingScriptTrainsSignsPublishesAndPairs() throws {
        // The base the script trains from: the embedded registry's digits-siglip-vq@1.0.0.
        let baseFile = RegistryTool.packageRoot.appendingPathComponent("registry/bundles/digits-siglip-vq/digits-siglip-vq-1.0.0.craft")
        let base = try BundleArchive.readManifest(of: baseFile)
        let baseDigest = try BundleArchive.digest(of: baseFile)
        let registryTool = try #require(RegistryTool.executable, "craft-registry is not built; run swift build --build-tests")
        let craft = try #require(RegistryTool.builtExecutable(named: "craft", override: "CRAFT_EXECUTABLE"),
                                 "craft is not built; run swift build --build-tests")
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("craft-publish-example-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let script = RegistryTool.packageRoot.appendingPathComponent("examples/publish-an-encoder/publish.sh")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path, work.path]
        var environment = ProcessInfo.processInfo.environment
        environment["CRAFT_REGISTRY_BIN"] = registryTool.path
        environment["CRAFT_BIN"] = craft.path
        environment["CRAFT_REGISTRY"] = nil
        process.environment = environment
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("craft-publish-example-\(UUID().uuidString).log")
        try #require(FileManager.default.createFile(atPath: log.path, contents: nil), "cannot create \(log.path)")
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        let output = try String(contentsOf: log, encoding: .utf8)
        try #require(process.terminationStatus == 0, "\(output)")

        // The script's own checks, as printed: trained with CRAFT, repacked to the same bytes, verified,
        // signed by a key the registry trusts, paired with both backends, answered with both.
        for marker in ["digits-siglip-vq@1.0.0 -> digits-siglip-vq@1.1.0", "method         craft",
                       "codebook       \(base.codebook.hash) (unchanged)",
                       "identical to ", "signature:  trusted (key ",
                       "compatible: digits-siglip-vq@1.1.0 can be paired with digits-llama@1.0.0",
                       "compatible: digits-siglip-vq@1.1.0 can be paired with digits-gpt2@1.0.0",
                       "== 11.", "digits-llama: ", "digits-gpt2: "] {
            #expect(output.contains(marker), "missing \(marker) in:\n\(output)")
        }

        // The trained bundle itself: same codebook (declared, and the tensor file untouched), bumped
        // version, CRAFT provenance from the base and the surrogate, retrained weights.
        let trained = work.appendingPathComponent("train/digits-siglip-vq-1.1.0")
        let manifestData = try Data(contentsOf: trained.appendingPathComponent("craft.json"))
        let manifest = try #require(try JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
        #expect(manifest["name"] as? String == "digits-siglip-vq")
        #expect(manifest["version"] as? String == "1.1.0")
        let codebook = try #require(manifest["codebook"] as? [String: Any])
        #expect(codebook["hash"] as? String == base.codebook.hash)
        let files = try #require(manifest["files"] as? [[String: Any]])
        func sha256(_ path: String) -> String? { files.first { $0["path"] as? String == path }?["sha256"] as? String }
        func baseSHA256(_ path: String) -> String? { base.files.first { $0.path == path }?.sha256 }
        #expect(sha256("codebook.safetensors") != nil && sha256("codebook.safetensors") == baseSHA256("codebook.safetensors"))
        #expect(sha256("model.safetensors") != nil && sha256("model.safetensors") != baseSHA256("model.safetensors"),
                "the trained model.safetensors is the base's: nothing was trained")
        #expect(sha256("code_frequencies.json") != nil)
        let provenance = try #require(manifest["provenance"] as? [String: Any], "no provenance in the trained manifest")
        #expect(provenance["method"] as? String == "craft")
        #expect(provenance["base"] as? String == "digits-siglip-vq@1.0.0")
        #expect(provenance["base_digest"] as? String == baseDigest)
        #expect(provenance["surrogate"] as? String == "digits-llama@1.0.0")
        #expect(provenance["steps"] as? Int == 4)
        #expect(provenance["seed"] as? Int == 0)

        // The registry serves exactly the file that was packed and signed.
        let published = work.appendingPathComponent("registry/bundles/digits-siglip-vq/digits-siglip-vq-1.1.0.craft")
        #expect(try Data(contentsOf: published) == Data(contentsOf: work.appendingPathComponent("dist/digits-siglip-vq-1.1.0.craft")))
        #expect(FileManager.default.fileExists(atPath: work.appendingPathComponent("registry/keys").path))
    }
}
