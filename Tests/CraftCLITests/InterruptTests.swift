import Foundation
import Testing
import TestSupport
@testable import CraftCLI

#if canImport(Glibc)
import Glibc
#endif

/// What an interrupted command leaves behind: nothing, or nothing the next command does not sweep.
@Suite struct InterruptTests {
    func scratchDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("interrupt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url.appendingPathComponent("tmp"), withIntermediateDirectories: true)
        return url
    }

    /// `craft eval` gets SIGTERM while it answers (both bundles unpacked into its scratch directory):
    /// it dies of the signal and the directory is gone.
    @Test func terminatedEvalRemovesItsScratchDirectory() throws {
        let root = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let temporary = root.appendingPathComponent("tmp")
        let executable = try #require(RegistryTool.builtExecutable(named: "craft", override: "CRAFT_EXECUTABLE"))
        let process = Process()
        process.executableURL = executable
        process.arguments = ["eval", "--registry", "registry", "--encoder", "digits-siglip-vq@1.1.0",
                             "--backend", "digits-llama", "--data", "examples/data/digits/strong-test.jsonl"]
        process.currentDirectoryURL = RegistryTool.packageRoot
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = temporary.path
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Unpacking renames each complete bundle directory into place: once the backend's craft.json
        // is there, the scratch directory is whole and the command is loading or answering (1594
        // questions: minutes of work, so it is still running).
        var unpacked = false
        let deadline = Date().addingTimeInterval(120)
        while !unpacked, process.isRunning, Date() < deadline {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? []
            unpacked = names.contains { name in
                name.hasPrefix("craft-run-") && FileManager.default.fileExists(
                    atPath: temporary.appendingPathComponent("\(name)/backend/craft.json").path)
            }
            if !unpacked { usleep(10_000) }
        }
        #expect(unpacked, "craft eval never unpacked its bundles")
        #expect(process.isRunning)
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(process.terminationStatus == SIGTERM)
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.path) == [])
    }

    /// What a SIGKILLed command left (named for a process that no longer exists) is swept by the
    /// next command; what a living process is writing is not.
    @Test func nextCommandSweepsWhatAKilledOneLeft() throws {
        let root = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let temporary = root.appendingPathComponent("tmp")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let stale = temporary.appendingPathComponent("craft-run-\(child.processIdentifier)-\(UUID().uuidString)")
        let living = temporary.appendingPathComponent("craft-run-1-\(UUID().uuidString)")
        let unrelated = temporary.appendingPathComponent("notes.txt")
        try FileManager.default.createDirectory(at: stale.appendingPathComponent("encoder"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: living, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: unrelated)
        let result = try runCraft(["--version"], environment: ["TMPDIR": temporary.path])
        #expect(result.status == 0)
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: temporary.path))
        #expect(left == [living.lastPathComponent, unrelated.lastPathComponent])
    }
}
