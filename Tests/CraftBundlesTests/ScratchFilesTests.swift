import Foundation
import Testing
@testable import CraftBundles

@Suite struct ScratchFilesTests {
    /// A process id that existed and has ended: a child that was started and waited for.
    private func endedProcess() throws -> pid_t {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        return child.processIdentifier
    }

    @Test func namesCarryTheWriterProcessAndParseBack() throws {
        let name = ScratchFiles.name("craft-run")
        let parsed = try #require(ScratchFiles.parse(name))
        #expect(parsed.prefix == "craft-run")
        #expect(parsed.pid == getpid())
        let hidden = try #require(ScratchFiles.parse(".digits-llama-1.0.0.download-42-\(UUID().uuidString).craft"))
        #expect(hidden.prefix == "digits-llama-1.0.0.download")
        #expect(hidden.pid == 42)
        for foreign in ["craft-run", "craft-run-12-not-a-uuid", "notes.txt", "-12-\(UUID().uuidString)",
                        "craft-run-x12-\(UUID().uuidString)", "craft-run-0-\(UUID().uuidString)"] {
            #expect(ScratchFiles.parse(foreign) == nil, "\(foreign)")
        }
    }

    @Test func sweepRemovesWhatEndedProcessesLeftAndKeepsTheRest() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("scratch-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ended = try endedProcess()
        let stale = directory.appendingPathComponent("craft-run-\(ended)-\(UUID().uuidString)")
        let staleHidden = directory.appendingPathComponent(".staging-\(ended)-\(UUID().uuidString).craft")
        let mine = directory.appendingPathComponent(ScratchFiles.name("craft-run"))
        let living = directory.appendingPathComponent("craft-run-1-\(UUID().uuidString)")  // init never ends
        let otherPrefix = directory.appendingPathComponent("other-\(ended)-\(UUID().uuidString)")
        let user = directory.appendingPathComponent("thesis.txt")
        try FileManager.default.createDirectory(at: stale.appendingPathComponent("inner"), withIntermediateDirectories: true)
        for file in [staleHidden, mine, living, otherPrefix, user] {
            try Data("x".utf8).write(to: file)
        }
        let removed = ScratchFiles.sweep(directory, prefixes: ["craft-run", "staging"])
        #expect(Set(removed.map(\.lastPathComponent)) == [stale.lastPathComponent, staleHidden.lastPathComponent])
        for kept in [mine, living, otherPrefix, user] {
            #expect(FileManager.default.fileExists(atPath: kept.path), "\(kept.lastPathComponent)")
        }
    }

    @Test func trackedPathsAreRemovedOnRequestAndUntrackedOnesKept() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(ScratchFiles.name("craft-test"))
        let kept = FileManager.default.temporaryDirectory.appendingPathComponent(ScratchFiles.name("craft-test"))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: kept)
        defer { try? FileManager.default.removeItem(at: kept) }
        let tracked = ScratchFiles.track(directory)
        let untracked = ScratchFiles.track(kept)
        ScratchFiles.untrack(untracked)
        ScratchFiles.remove(tracked)
        #expect(!FileManager.default.fileExists(atPath: directory.path))
        #expect(FileManager.default.fileExists(atPath: kept.path))
    }
}
