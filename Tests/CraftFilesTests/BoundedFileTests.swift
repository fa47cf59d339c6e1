import CraftFiles
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Reading whole files with a limit")
struct BoundedFileTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("craft-files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    private func file(_ name: String, _ bytes: Data) throws -> URL {
        let url = directory.appendingPathComponent(name)
        try bytes.write(to: url)
        return url
    }

    @Test func readsTheBytesOfAFile() throws {
        let bytes = Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        #expect(try BoundedFile.read(try file("a.bin", bytes), limit: 1 << 20) == bytes)
    }

    @Test func readsAnEmptyFile() throws {
        #expect(try BoundedFile.read(try file("empty", Data()), limit: 10) == Data())
    }

    @Test func aFileOfExactlyTheLimitIsRead() throws {
        let bytes = Data(repeating: 7, count: 4096)
        #expect(try BoundedFile.read(try file("exact", bytes), limit: 4096) == bytes)
    }

    @Test func aFileOverTheLimitIsRefusedWithItsSize() throws {
        let url = try file("big", Data(repeating: 1, count: 4097))
        #expect(throws: BoundedReadFailure.tooLarge(size: 4097, limit: 4096)) { try BoundedFile.read(url, limit: 4096) }
    }

    @Test func aSparseHugeFileIsRefusedBeforeReading() throws {
        // 64 GiB reported, nothing allocated: refused from fstat, instantly.
        let url = try file("sparse", Data())
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 64 << 30)
        try handle.close()
        #expect(throws: BoundedReadFailure.tooLarge(size: 64 << 30, limit: 1 << 20)) { try BoundedFile.read(url, limit: 1 << 20) }
    }

    @Test func aMissingFileAndAMissingDirectoryAreNotFound() throws {
        #expect(throws: BoundedReadFailure.notFound) { try BoundedFile.read(directory.appendingPathComponent("nothing"), limit: 10) }
        #expect(throws: BoundedReadFailure.notFound) { try BoundedFile.read(directory.appendingPathComponent("no/such/file"), limit: 10) }
    }

    @Test func aDirectoryIsNotARegularFile() throws {
        #expect(throws: BoundedReadFailure.notRegularFile) { try BoundedFile.read(directory, limit: 10) }
    }

    @Test func aFIFOIsRefusedWithoutWaitingForAWriter() throws {
        let path = directory.appendingPathComponent("fifo").path
        #expect(mkfifo(path, 0o600) == 0)
        #expect(throws: BoundedReadFailure.notRegularFile) { try BoundedFile.read(URL(fileURLWithPath: path), limit: 10) }
    }

    @Test func aFileThatReportsNoSizeButHasContentsIsReadWithTheLimit() throws {
        // Linux's /proc files report size 0 and still have contents: the reader grows its buffer,
        // and stops at the limit.
        let status = try BoundedFile.read(URL(fileURLWithPath: "/proc/self/status"), limit: 1 << 20)
        #expect(String(decoding: status, as: UTF8.self).contains("Name:"))
        #expect(throws: BoundedReadFailure.tooLarge(size: 17, limit: 16)) {
            try BoundedFile.read(URL(fileURLWithPath: "/proc/self/status"), limit: 16)
        }
    }

    @Test func anUnreadableFileSaysWhy() throws {
        guard getuid() != 0 else {
            // root reads files whatever their mode; the permission case cannot be made here, so check
            // the reason text of the failure instead of skipping.
            #expect(BoundedReadFailure.unreadable("Permission denied").reason == "cannot be read: Permission denied")
            return
        }
        let url = try file("secret", Data("x".utf8))
        try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: url.path)
        #expect(throws: BoundedReadFailure.unreadable("Permission denied")) { try BoundedFile.read(url, limit: 10) }
    }

    @Test func failuresEndASentenceAboutTheFile() {
        #expect(BoundedReadFailure.tooLarge(size: 20, limit: 10).localizedDescription == "is 20 bytes, over the 10-byte limit")
        #expect(BoundedReadFailure.notFound.localizedDescription == "does not exist")
        #expect(BoundedReadFailure.notRegularFile.localizedDescription == "is not a regular file")
    }

    /// `Data(contentsOf:)` leaks 4 KiB for every empty file it reads on Linux (swift-foundation's
    /// `readBytesFromFile` hands its buffer to `Data()` when the length is 0), which let a process
    /// reading hostile registry indexes grow without bound (found by `make fuzz`, docs/fuzzing.md).
    /// Every whole-file read in Sources goes through `BoundedFile` instead.
    @Test func noSourceFileReadsWithDataContentsOf() throws {
        let sources = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources")
        let enumerator = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        var offenders: [String] = []
        var swiftFiles = 0
        for case let url as URL in enumerator where url.pathExtension == "swift" {
            swiftFiles += 1
            let text = try String(contentsOf: url, encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains("Data(contentsOf:") && !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
                offenders.append("\(url.path.dropFirst(sources.path.count + 1)):\(number + 1)")
            }
        }
        #expect(swiftFiles > 100)
        #expect(offenders.isEmpty, "use BoundedFile.read (CraftFiles) instead of Data(contentsOf:) at \(offenders)")
    }
}
