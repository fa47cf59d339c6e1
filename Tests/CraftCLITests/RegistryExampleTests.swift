import Foundation
import Testing

/// Runs `examples/publish-an-encoder/publish.sh` end to end with the built `craft-registry`.
@Suite("examples/publish-an-encoder")
struct RegistryExampleTests {
    @Test func thePublishingScriptRunsEveryStep() throws {
        let executable = try #require(RegistryTool.executable, "craft-registry is not built; run swift build --build-tests")
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("craft-publish-example-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let script = RegistryTool.packageRoot.appendingPathComponent("examples/publish-an-encoder/publish.sh")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path, work.path]
        var environment = ProcessInfo.processInfo.environment
        environment["CRAFT_REGISTRY_BIN"] = executable.path
        environment["CRAFT_REGISTRY"] = nil
        process.environment = environment
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("craft-publish-example-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(process.terminationStatus == 0, "\(output)")
        for marker in ["== 10.", "signature:  trusted", "compatible: derm-vq@1.0.0 can be paired with tiny-answers@0.1.0",
                       "domain:dermatology", "tiny-answers  0.1.0"] {
            #expect(output.contains(marker), "missing \(marker) in:\n\(output)")
        }
        // The pulled encoder is in the cache, unpacked, with its manifest and tensors.
        let pulled = try #require(output.split(separator: "\n").last { $0.contains("/cache/sha256-") })
        let directory = URL(fileURLWithPath: String(pulled))
        for file in ["craft.json", "codebook.safetensors", "features.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path), "\(file)")
        }
        #expect(FileManager.default.fileExists(atPath: work.appendingPathComponent("registry/keys").path))
    }
}
