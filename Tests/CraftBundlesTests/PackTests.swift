import CraftCore
import Foundation
import Testing

@testable import CraftBundles

@Suite("Packing bundles")
struct PackTests {
    @Test("packing fills sizes and digests, and verify/unpack accept the result")
    func packVerifyUnpack() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let source = temp.path("encoder")
        try makeEncoderDirectory(at: source)
        let packed = try BundleArchive.pack(directory: source)
        #expect(packed.url.lastPathComponent == "demo-encoder-1.0.0.craft")
        #expect(packed.url.deletingLastPathComponent().standardizedFileURL.path.trimmingCharacters(in: ["/"]) == temp.url.standardizedFileURL.path.trimmingCharacters(in: ["/"]))
        #expect(packed.manifest.files.map(\.path) == ["features.safetensors", "weights/codebook.safetensors"])
        let codebookData = try Data(contentsOf: source.appendingPathComponent("weights/codebook.safetensors"))
        #expect(packed.manifest.file(at: "weights/codebook.safetensors")?.size == Int64(codebookData.count))
        #expect(packed.manifest.file(at: "weights/codebook.safetensors")?.sha256 == FileDigest.sha256(codebookData))
        #expect(packed.digest == "sha256:" + FileDigest.sha256(try Data(contentsOf: packed.url)))
        #expect(try BundleArchive.digest(of: packed.url) == packed.digest)

        #expect(try BundleArchive.readManifest(of: packed.url) == packed.manifest)
        let verified = try BundleArchive.verify(packed.url)
        #expect(verified.manifest == packed.manifest && verified.digest == packed.digest && verified.size == packed.size)

        let destination = temp.path("out/demo-encoder")
        let unpacked = try BundleArchive.unpack(packed.url, into: destination)
        #expect(unpacked.manifest == packed.manifest)
        #expect(temp.contents(of: "out") == ["demo-encoder", "demo-encoder/craft.json", "demo-encoder/features.safetensors", "demo-encoder/weights", "demo-encoder/weights/codebook.safetensors"])
        #expect(try Data(contentsOf: destination.appendingPathComponent("weights/codebook.safetensors")) == codebookData)
        #expect(try BundleArchive.open(directory: destination).manifest == packed.manifest)
        // The unpacked manifest is the canonical JSON that was packed.
        #expect(try Data(contentsOf: destination.appendingPathComponent("craft.json")) == packed.manifest.canonicalJSON())
    }

    @Test("the archive layout is reproducible: craft.json first, sorted, mtime 0, gzip without timestamp")
    func archiveLayout() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let source = temp.path("encoder")
        try makeEncoderDirectory(at: source)
        let packed = try BundleArchive.pack(directory: source, to: temp.path("x.craft"))
        let bytes = [UInt8](try Data(contentsOf: packed.url))
        #expect(bytes[0] == 0x1F && bytes[1] == 0x8B && bytes[2] == 8)  // gzip, deflate
        #expect(bytes[3] & 0x08 == 0, "no file name is stored in the gzip header")
        #expect(bytes[4..<8].allSatisfy { $0 == 0 }, "gzip MTIME must be zero, got \(bytes[4..<8])")
        let reader = try TarReader(url: packed.url)
        var order: [String] = []
        while let header = try reader.nextEntry() {
            order.append(header.path)
            #expect(header.modificationTime == 0 && header.userID == 0 && header.groupID == 0, "\(header.path)")
            #expect(header.userName.isEmpty && header.groupName.isEmpty, "\(header.path)")
            #expect(header.permissions == (header.type == .directory ? 0o755 : 0o644), "\(header.path)")
        }
        #expect(order.first == "craft.json")
        #expect(Array(order.dropFirst()) == ["features.safetensors", "weights", "weights/codebook.safetensors"])
    }

    @Test("same input gives the same bytes, also after touching mtimes and across output names")
    func reproducible() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let source = temp.path("encoder")
        try makeEncoderDirectory(at: source)
        let first = try BundleArchive.pack(directory: source, to: temp.path("first.craft"))
        let later = Date(timeIntervalSince1970: 1_900_000_000)
        for path in ["craft.json", "features.safetensors", "weights/codebook.safetensors", "weights"] {
            try FileManager.default.setAttributes([.modificationDate: later, .posixPermissions: 0o600], ofItemAtPath: source.appendingPathComponent(path).path)
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: source.appendingPathComponent("weights").path)
        let second = try BundleArchive.pack(directory: source, to: temp.path("second.craft"))
        #expect(try Data(contentsOf: first.url) == Data(contentsOf: second.url))
        #expect(first.digest == second.digest)
        // Re-packing the unpacked bundle (manifest now complete) gives the same bytes again.
        let unpacked = try BundleArchive.unpack(first.url, into: temp.path("unpacked"))
        let third = try BundleArchive.pack(directory: unpacked.directory, to: temp.path("third.craft"))
        #expect(third.digest == first.digest)
    }

    @Test("refuses an encoder whose declared codebook hash is wrong, naming both hashes")
    func refusesWrongHash() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let source = temp.path("encoder")
        let wrong = "sha256:" + String(repeating: "1", count: 64)
        try makeEncoderDirectory(at: source, declaredHash: wrong)
        let right = try Sample.hash(Sample.codebook())
        let error = expectBundleError(.codebookHashMismatch, entry: "codebook.hash") { _ = try BundleArchive.pack(directory: source) }
        #expect(error?.message.contains(wrong) == true)
        #expect(error?.message.contains(right) == true)
        #expect(error.map { ErrorCategory.integrity == $0.category } == true)
        #expect(temp.contents().allSatisfy { !$0.hasSuffix(".craft") && !$0.contains(".tmp-") })
    }

    @Test("refuses a codebook tensor whose shape differs from the declared one")
    func refusesWrongShape() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let source = temp.path("encoder")
        try makeEncoderDirectory(at: source) { json in
            var codebook = json["codebook"] as? [String: Any] ?? [:]
            codebook["entries"] = 16
            json["codebook"] = codebook
        }
        let error = expectBundleError(.codebookHashMismatch) { _ = try BundleArchive.pack(directory: source) }
        #expect(error?.message.contains("1×8×4") == true)
    }

    @Test("refuses unlisted files, missing files and symbolic links")
    func refusesBadDirectories() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let source = temp.path("encoder")
        try makeEncoderDirectory(at: source)
        try Data("x".utf8).write(to: source.appendingPathComponent(".DS_Store"))
        expectBundleError(.unlistedEntry, entry: ".DS_Store") { _ = try BundleArchive.pack(directory: source) }
        try FileManager.default.removeItem(at: source.appendingPathComponent(".DS_Store"))

        try FileManager.default.createSymbolicLink(atPath: source.appendingPathComponent("link").path, withDestinationPath: "/etc/passwd")
        expectBundleError(.unsafeEntry, entry: "link") { _ = try BundleArchive.pack(directory: source) }
        try FileManager.default.removeItem(at: source.appendingPathComponent("link"))

        try FileManager.default.removeItem(at: source.appendingPathComponent("features.safetensors"))
        expectBundleError(.missingEntry, entry: "features.safetensors") { _ = try BundleArchive.pack(directory: source) }
        expectBundleError(.notFound) { _ = try BundleArchive.pack(directory: temp.path("nowhere")) }
        #expect(!temp.contents().contains { $0.hasSuffix(".craft") })
    }

    @Test("a backend is packed with its declared hash, and an existing output directory gets NAME-VERSION.craft")
    func packsBackend() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let source = temp.path("backend")
        try makeBackendDirectory(at: source, hash: "sha256:" + String(repeating: "c", count: 64))
        try FileManager.default.createDirectory(at: temp.path("dist"), withIntermediateDirectories: true)
        let packed = try BundleArchive.pack(directory: source, to: temp.path("dist"))
        #expect(packed.url.lastPathComponent == "demo-backend-2.1.0.craft")
        #expect(packed.manifest.codebook.hash == "sha256:" + String(repeating: "c", count: 64))
        expectBundleError(.io) { _ = try BundleArchive.pack(directory: source, to: source.appendingPathComponent("inside.craft")) }
    }
}
