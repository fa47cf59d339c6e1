import CraftCore
import Foundation
import Testing

@testable import CraftBundles

/// Every rule of docs/bundle-format.md for reading bundles, each broken by a crafted archive.
@Suite("Hostile bundles")
struct HostileBundleTests {
    let payload = Data("hello, bundle".utf8)

    /// Verifies and unpacks `bundle`, expecting both to fail with `code` naming `entry`, and checks
    /// that the destination's parent is left empty.
    func expectRefused(
        _ bundle: URL, _ code: BundleError.Code, entry: String?, limits: BundleLimits = .default, in temp: TemporaryDirectory,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        expectBundleError(code, entry: entry, sourceLocation: sourceLocation) { _ = try BundleArchive.verify(bundle, limits: limits) }
        let parent = temp.path("dest-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        expectBundleError(code, entry: entry, sourceLocation: sourceLocation) {
            _ = try BundleArchive.unpack(bundle, into: parent.appendingPathComponent("bundle"), limits: limits)
        }
        let left = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? ["<unreadable>"]
        #expect(left.isEmpty, "unpack left \(left) behind", sourceLocation: sourceLocation)
    }

    func bundle(_ temp: TemporaryDirectory, _ entries: [RawTarEntry]) throws -> URL {
        let url = temp.path("hostile-\(UUID().uuidString).craft")
        try writeRawBundle(url, entries)
        return url
    }

    func manifest(listing files: [(String, Data)], edit: (inout [String: Any]) -> Void = { _ in }) throws -> RawTarEntry {
        RawTarEntry(path: "craft.json", kind: .file(try manifestData(listing: files.map { (path: $0.0, data: $0.1) }, edit: edit)))
    }

    @Test("a well-formed raw bundle is accepted (the hostile cases differ from it in one way)")
    func baseline() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let url = try bundle(temp, [try manifest(listing: [("data/a.bin", payload)]), .init(path: "data", kind: .directory), .init(path: "data/a.bin", kind: .file(payload))])
        let verified = try BundleArchive.verify(url)
        #expect(verified.files.map(\.path) == ["data/a.bin"])
        let unpacked = try BundleArchive.unpack(url, into: temp.path("ok"))
        #expect(try Data(contentsOf: unpacked.url(for: "data/a.bin")) == payload)
    }

    @Test("absolute paths and '..' are refused")
    func unsafePaths() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        for path in ["/etc/evil", "../evil", "data/../../evil", "./craft2.json", "a//b"] {
            let url = try bundle(temp, [try manifest(listing: [("a.bin", payload)]), .init(path: path, kind: .file(payload)), .init(path: "a.bin", kind: .file(payload))])
            expectRefused(url, .unsafeEntry, entry: path, in: temp)
        }
        #expect(!FileManager.default.fileExists(atPath: temp.url.deletingLastPathComponent().appendingPathComponent("evil").path))
    }

    @Test("symbolic links, hard links, devices and FIFOs are refused")
    func forbiddenTypes() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let kinds: [RawTarEntry.Kind] = [.symbolicLink(target: "/etc/passwd"), .hardLink(target: "a.bin"), .characterDevice, .fifo]
        for kind in kinds {
            let url = try bundle(temp, [try manifest(listing: [("a.bin", payload)]), .init(path: "a.bin", kind: .file(payload)), .init(path: "x", kind: kind)])
            expectRefused(url, .unsafeEntry, entry: "x", in: temp)
        }
    }

    @Test("duplicate, unlisted and missing entries are refused")
    func entrySets() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let duplicate = try bundle(temp, [try manifest(listing: [("a.bin", payload)]), .init(path: "a.bin", kind: .file(payload)), .init(path: "a.bin", kind: .file(payload))])
        expectRefused(duplicate, .duplicateEntry, entry: "a.bin", in: temp)
        let secondManifest = try bundle(temp, [try manifest(listing: [("a.bin", payload)]), .init(path: "a.bin", kind: .file(payload)), try manifest(listing: [])])
        expectRefused(secondManifest, .duplicateEntry, entry: "craft.json", in: temp)
        let unlisted = try bundle(temp, [try manifest(listing: [("a.bin", payload)]), .init(path: "a.bin", kind: .file(payload)), .init(path: "b.bin", kind: .file(payload))])
        expectRefused(unlisted, .unlistedEntry, entry: "b.bin", in: temp)
        let unlistedDirectory = try bundle(temp, [try manifest(listing: [("a.bin", payload)]), .init(path: "a.bin", kind: .file(payload)), .init(path: "empty", kind: .directory)])
        expectRefused(unlistedDirectory, .unlistedEntry, entry: "empty", in: temp)
        let missing = try bundle(temp, [try manifest(listing: [("a.bin", payload), ("b.bin", payload)]), .init(path: "a.bin", kind: .file(payload))])
        expectRefused(missing, .missingEntry, entry: "b.bin", in: temp)
    }

    @Test("size and sha256 mismatches are refused")
    func contentMismatches() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let other = Data("hello, bundlE".utf8)  // same size, other bytes
        let sha = try bundle(temp, [try manifest(listing: [("a.bin", payload)]), .init(path: "a.bin", kind: .file(other))])
        expectRefused(sha, .digestMismatch, entry: "a.bin", in: temp)
        let size = try bundle(temp, [try manifest(listing: [("a.bin", payload)]), .init(path: "a.bin", kind: .file(payload + Data("!".utf8)))])
        expectRefused(size, .sizeMismatch, entry: "a.bin", in: temp)
    }

    @Test("limits: entry count, path length, file size, total size, compression ratio")
    func limits() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let files = (0..<4).map { ("f\($0).bin", payload) }
        let many = try bundle(temp, [try manifest(listing: files)] + files.map { RawTarEntry(path: $0.0, kind: .file($0.1)) })
        var limits = BundleLimits.default
        limits.maxEntries = 3
        expectRefused(many, .limitExceeded, entry: "f2.bin", limits: limits, in: temp)
        #expect(throws: Never.self) { try BundleArchive.verify(many) }

        let longPath = String(repeating: "p", count: 300)
        let long = try bundle(temp, [try manifest(listing: [("a.bin", payload)]), .init(path: longPath, kind: .file(payload))])
        expectRefused(long, .limitExceeded, entry: longPath, in: temp)

        let big = Data(count: 5000)
        let bigBundle = try bundle(temp, [try manifest(listing: [("big.bin", big)]), .init(path: "big.bin", kind: .file(big))])
        limits = .default
        limits.maxFileSize = 4096
        expectRefused(bigBundle, .limitExceeded, entry: "big.bin", limits: limits, in: temp)
        limits = .default
        limits.maxTotalSize = 4096
        expectRefused(bigBundle, .limitExceeded, entry: "big.bin", limits: limits, in: temp)

        // A zip bomb in miniature: 4 MiB of zeros compress about 1000×.
        let zeros = Data(count: 4 << 20)
        let bomb = try bundle(temp, [try manifest(listing: [("zeros.bin", zeros)]), .init(path: "zeros.bin", kind: .file(zeros))])
        limits = .default
        limits.maxCompressionRatio = 50
        limits.compressionRatioGrace = 64 << 10
        expectRefused(bomb, .limitExceeded, entry: "zeros.bin", limits: limits, in: temp)
        #expect(throws: Never.self) { try BundleArchive.verify(bomb) }
    }

    @Test("truncated gzip, not gzip, empty and garbage files are refused")
    func corruptFiles() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        var state: UInt64 = 42
        let noise = Data((0..<400_000).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        })
        let good = try bundle(temp, [try manifest(listing: [("a.bin", noise)]), .init(path: "a.bin", kind: .file(noise))])
        let bytes = try Data(contentsOf: good)
        let truncated = temp.path("truncated.craft")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        expectRefused(truncated, .corruptArchive, entry: "a.bin", in: temp)

        let plainTar = temp.path("plain.craft")
        try Data("craft.json".utf8 + Data(count: 1014)).write(to: plainTar)
        expectRefused(plainTar, .corruptArchive, entry: nil, in: temp)
        let empty = temp.path("empty.craft")
        try Data().write(to: empty)
        expectRefused(empty, .corruptArchive, entry: nil, in: temp)
        let fakeGzip = temp.path("fake.craft")
        try Data([0x1F, 0x8B, 0x08, 0x00] + Array(repeating: UInt8(0x41), count: 100)).write(to: fakeGzip)
        expectRefused(fakeGzip, .corruptArchive, entry: nil, in: temp)
        expectBundleError(.notFound) { _ = try BundleArchive.verify(temp.path("absent.craft")) }
    }

    @Test("craft.json must come first, and readManifest reads nothing else")
    func manifestFirst() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let late = try bundle(temp, [.init(path: "a.bin", kind: .file(payload)), try manifest(listing: [("a.bin", payload)])])
        expectRefused(late, .manifestNotFirst, entry: "a.bin", in: temp)
        expectBundleError(.manifestNotFirst, entry: "a.bin") { _ = try BundleArchive.readManifest(of: late) }
        // readManifest succeeds on a bundle whose later entries are broken: it stops after craft.json.
        let brokenLater = try bundle(temp, [try manifest(listing: [("a.bin", payload)]), .init(path: "../evil", kind: .file(payload))])
        #expect(try BundleArchive.readManifest(of: brokenLater).name == "hostile")
        expectRefused(brokenLater, .unsafeEntry, entry: "../evil", in: temp)
        let noManifest = try bundle(temp, [])
        expectRefused(noManifest, .manifestNotFirst, entry: "craft.json", in: temp)
    }

    @Test("malformed manifests are refused naming the field")
    func malformedManifests() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let badSHA = try bundle(temp, [try manifest(listing: [("a.bin", payload)]) { json in
            json["files"] = [["path": "a.bin", "size": 13, "sha256": "xyz"]]
        }, .init(path: "a.bin", kind: .file(payload))])
        expectRefused(badSHA, .invalidManifest, entry: "files[0].sha256", in: temp)
        let noName = try bundle(temp, [try manifest(listing: [("a.bin", payload)]) { $0["name"] = nil }, .init(path: "a.bin", kind: .file(payload))])
        expectRefused(noName, .invalidManifest, entry: "name", in: temp)
        let badKind = try bundle(temp, [try manifest(listing: [("a.bin", payload)]) { $0["backend"] = nil }, .init(path: "a.bin", kind: .file(payload))])
        expectRefused(badKind, .invalidManifest, entry: "backend", in: temp)
        let notJSON = try bundle(temp, [.init(path: "craft.json", kind: .file(Data("{\"schema\": ".utf8)))])
        expectRefused(notJSON, .invalidManifest, entry: "craft.json", in: temp)
        let manifestDirectory = try bundle(temp, [.init(path: "craft.json", kind: .directory)])
        expectBundleError(.unsafeEntry, entry: "craft.json") { _ = try BundleArchive.verify(manifestDirectory) }
    }

    @Test("unpack refuses an existing destination and leaves it untouched")
    func existingDestination() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let url = try bundle(temp, [try manifest(listing: [("a.bin", payload)]), .init(path: "a.bin", kind: .file(payload))])
        let destination = temp.path("existing")
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: destination.appendingPathComponent("mine.txt"))
        expectBundleError(.io) { _ = try BundleArchive.unpack(url, into: destination) }
        #expect(temp.contents(of: "existing") == ["mine.txt"])
    }
}

@Suite("Corrupted bundles")
struct CorruptedBundleTests {
    /// Seeded mutations of a valid bundle: every outcome is either a typed error or the original
    /// content, never a crash, an untyped error, or a silently different bundle.
    @Test("byte flips and truncations give a BundleError or the unchanged bundle")
    func seededMutations() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try makeEncoderDirectory(at: temp.path("src"))
        let packed = try BundleArchive.pack(directory: temp.path("src"), to: temp.path("good.craft"))
        let original = [UInt8](try Data(contentsOf: packed.url))
        var state: UInt64 = 0x5EED
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var outcomes: [String: Int] = [:]
        for round in 0..<120 {
            var bytes = original
            if round % 3 == 2 {
                bytes = Array(bytes.prefix(next(bytes.count)))
            } else {
                for _ in 0..<(1 + next(3)) { bytes[next(bytes.count)] ^= UInt8(1 + next(255)) }
            }
            let url = temp.path("mutant.craft")
            try Data(bytes).write(to: url)
            do {
                let verified = try BundleArchive.verify(url)
                #expect(verified.manifest == packed.manifest, "round \(round): a mutated bundle verified with another manifest")
                outcomes["accepted", default: 0] += 1
            } catch let error as BundleError {
                outcomes[error.code.name, default: 0] += 1
            } catch {
                Issue.record("round \(round): untyped error \(error)")
            }
        }
        #expect((outcomes["accepted"] ?? 0) < 10, "\(outcomes)")
    }

    /// libarchive does not check the gzip trailer; Craft does, so a damaged CRC-32, a wrong length or
    /// bytes appended after the stream are refused by verify and unpack.
    @Test("a damaged gzip trailer or trailing bytes are refused")
    func gzipTrailerIsChecked() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try makeEncoderDirectory(at: temp.path("src"))
        let packed = try BundleArchive.pack(directory: temp.path("src"), to: temp.path("good.craft"))
        let original = [UInt8](try Data(contentsOf: packed.url))
        _ = try BundleArchive.verify(packed.url)
        var crc = original
        crc[crc.count - 8] ^= 0x01
        var length = original
        length[length.count - 1] ^= 0x80
        let appended = original + [0x00, 0x01, 0x02]
        for (label, bytes) in [("crc", crc), ("length", length), ("appended", appended)] {
            let url = temp.path("\(label).craft")
            try Data(bytes).write(to: url)
            expectBundleError(.corruptArchive) { _ = try BundleArchive.verify(url) }
            expectBundleError(.corruptArchive) { _ = try BundleArchive.unpack(url, into: temp.path("out-\(label)")) }
            #expect(!FileManager.default.fileExists(atPath: temp.path("out-\(label)").path))
        }
    }
}
