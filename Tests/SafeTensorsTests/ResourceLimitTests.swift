// Files whose valid headers declare tensors far larger than the file or than memory: the reader must
// refuse them with typed errors before allocating, never crash.
import Foundation
import Testing
@testable import SafeTensors

@Suite("SafeTensors refuses sizes it cannot back with the file or with memory")
struct ResourceLimitTests {
    @Test("a valid header declaring a [2^27, 64] F32 codebook over a small file is truncated, on open")
    func codebookLargerThanFile() throws {
        let byteCount = (1 << 27) * 64 * 4
        let header = "{" + entry("codebook", shape: "[134217728,64]", offsets: "[0,\(byteCount)]") + "}"
        let started = Date()
        let error = try openError(fileBytes(header: header, data: [UInt8](repeating: 0, count: 4096)))
        #expect(error.code == .truncated)
        #expect(error.tensor == "codebook")
        #expect(error.message.contains("codebook") && error.message.contains("\(byteCount)"), "\(error.message)")
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test("offsets and shapes near Int.max are refused without overflowing")
    func offsetsNearIntMax() throws {
        let big = Int.max
        let cases: [(String, SafeTensorsError.Code)] = [
            (entry("t", shape: "[\(big),\(big)]", offsets: "[0,0]"), .overflow),
            (entry("t", shape: "[\(big / 2)]", offsets: "[0,\(big)]"), .overflow),
            (entry("t", "U8", shape: "[\(big)]", offsets: "[0,\(big)]"), .truncated),
            (entry("t", "U8", shape: "[2]", offsets: "[\(big - 1),\(big)]"), .shapeMismatch),
            (entry("t", "U8", shape: "[1]", offsets: "[\(big - 1),\(big)]"), .gap),
            (entry("t", "U8", shape: "[1]", offsets: "[0,18446744073709551616]"), .outOfBounds),
        ]
        for (body, code) in cases {
            let error = try openError(fileBytes(header: "{" + body + "}", data: [1, 2, 3, 4]))
            #expect(error.code == code, "\(body): \(error.message)")
        }
    }

    @Test("a file as large as its header says, but larger than memory, fails to read with insufficientMemory")
    func tensorLargerThanMemory() throws {
        // [2^30, 256] F32 = 1 TiB, in a sparse file (no disk blocks are used).
        let byteCount = 1 << 40
        let header = "{" + entry("codebook", shape: "[1073741824,256]", offsets: "[0,\(byteCount)]") + "}"
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("huge.safetensors")
        let prefix = fileBytes(header: header)
        try prefix.write(to: url)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: UInt64(prefix.count + byteCount))
        try handle.close()

        let file = try SafeTensorsFile(contentsOf: url)  // valid: the data section is all there
        #expect(try file.info("codebook").byteCount == byteCount)
        // With the kernel's default (heuristic) or strict overcommit, a 1 TiB allocation is refused
        // and reading must say so; with overcommit_memory=1 every allocation "succeeds", and reading
        // a terabyte is not something a test can do.
        let overcommit = (try? String(contentsOfFile: "/proc/sys/vm/overcommit_memory", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard overcommit != "1" else { return }
        for read in [{ _ = try file.floats("codebook") }, { _ = try file.bytes("codebook") }] as [() throws -> Void] {
            let error = try #require(throws: SafeTensorsError.self) { try read() }
            #expect(error.code == .insufficientMemory)
            #expect(error.tensor == "codebook" && error.message.contains(url.path), "\(error.message)")
        }
    }

    @Test("shapes have at most 64 dimensions: a longer array is refused before it is built")
    func rankLimit() throws {
        func header(rank: Int) -> String {
            let shape = "[" + Array(repeating: "1", count: rank).joined(separator: ",") + "]"
            return "{" + entry("t", shape: shape, offsets: "[0,4]") + "}"
        }
        let error = try openError(fileBytes(header: header(rank: 65), data: [0, 0, 128, 63]))
        #expect(error.code == .invalidHeader)
        #expect(error.message.contains("64"), "\(error.message)")
        // A million-element array is refused the same way (it would otherwise become a million JSON values).
        let long = try openError(fileBytes(header: header(rank: 1_000_000), data: [0, 0, 128, 63]))
        #expect(long.code == .invalidHeader)

        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("rank64.safetensors")
        try fileBytes(header: header(rank: 64), data: [0, 0, 128, 63]).write(to: url)
        #expect(try SafeTensorsFile(contentsOf: url).floats("t") == [1])
    }

    @Test("the header is validated entry by entry: an error in an early entry is reported with its tensor")
    func streamingValidation() throws {
        let header = "{" + entry("a", shape: "[-1]", offsets: "[0,4]") + "," + entry("b", shape: "[1]", offsets: "[4,8]") + "}"
        let error = try openError(fileBytes(header: header, data: [UInt8](repeating: 0, count: 8)))
        #expect(error.code == .invalidShape && error.tensor == "a")
        let notObject = try openError(fileBytes(header: "[1, 2]"))
        #expect(notObject.code == .invalidHeader && notObject.message.contains("an array, not a JSON object"), "\(notObject.message)")
        let trailing = try openError(fileBytes(header: "{} x"))
        #expect(trailing.code == .invalidHeader && trailing.message.contains("not valid JSON"), "\(trailing.message)")
    }
}
