import Foundation
import Testing

@testable import CraftBundles

@Suite("Packing and manifests: outputs, limits first, duplicate keys, linear validation")
struct PackingSafetyTests {
    @Test("pack replaces only a regular file: a FIFO or symbolic link at the output is refused and left as it was")
    func outputMustBeARegularFile() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try makeEncoderDirectory(at: temp.path("src"))
        let fifo = temp.path("out/fifo.craft")
        try FileManager.default.createDirectory(at: temp.path("out"), withIntermediateDirectories: true)
        #expect(mkfifo(fifo.path, 0o644) == 0)
        let error = expectBundleError(.io) { _ = try BundleArchive.pack(directory: temp.path("src"), to: fifo) }
        #expect(error?.message.contains(fifo.path) == true && error?.message.contains("FIFO") == true, "\(error?.message ?? "")")
        var status = stat()
        #expect(lstat(fifo.path, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO, "the FIFO was replaced")
        let target = temp.path("out/target.txt")
        try Data("keep".utf8).write(to: target)
        let link = temp.path("out/link.craft")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        _ = expectBundleError(.io) { _ = try BundleArchive.pack(directory: temp.path("src"), to: link) }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link.path) == target.path)
        // A regular file is replaced; no scratch file is left in the output directory.
        let regular = temp.path("out/regular.craft")
        try Data("old".utf8).write(to: regular)
        let packed = try BundleArchive.pack(directory: temp.path("src"), to: regular)
        #expect(try BundleArchive.verify(regular).digest == packed.digest)
        #expect(temp.contents(of: "out").sorted() == ["fifo.craft", "link.craft", "regular.craft", "target.txt"])
    }

    @Test("pack checks sizes against the limits before hashing: a 32 GiB sparse file is refused at once")
    func sizesBeforeHashing() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let source = temp.path("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try manifestData(listing: [("big.bin", Data())]).write(to: source.appendingPathComponent("craft.json"))
        let big = source.appendingPathComponent("big.bin")
        #expect(FileManager.default.createFile(atPath: big.path, contents: nil))
        #expect(truncate(big.path, 32 << 30) == 0)
        var limits = BundleLimits.default
        limits.maxFileSize = 1 << 20
        let start = Date()
        _ = expectBundleError(.limitExceeded, entry: "big.bin") { _ = try BundleArchive.pack(directory: source, to: temp.path("big.craft"), limits: limits) }
        #expect(Date().timeIntervalSince(start) < 5, "took \(Date().timeIntervalSince(start)) s: the file was read")
    }

    @Test("craft.json larger than maxManifestSize is refused before it is read, when packing and when opening a directory")
    func manifestSizeCap() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let source = temp.path("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        let manifest = source.appendingPathComponent("craft.json")
        #expect(FileManager.default.createFile(atPath: manifest.path, contents: nil))
        #expect(truncate(manifest.path, 4 << 30) == 0)
        let packError = expectBundleError(.limitExceeded, entry: "craft.json") { _ = try BundleArchive.pack(directory: source, to: temp.path("x.craft")) }
        #expect(packError?.message.contains(manifest.path) == true)
        _ = expectBundleError(.limitExceeded) { _ = try BundleArchive.open(directory: source) }
        _ = expectBundleError(.limitExceeded) { _ = try BundleManifest.load(from: manifest, maxSize: 1024) }
    }

    @Test("duplicate keys in craft.json are refused naming the key and where it is")
    func duplicateKeys() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let good = String(decoding: try manifestData(listing: [("a.bin", Data("a".utf8)), ("b.bin", Data("b".utf8))]), as: UTF8.self)
        #expect(throws: Never.self) { _ = try BundleManifest.decode(Data(good.utf8)) }
        // A second "files" at the end: Python and jq would read the empty list, Craft the other.
        let topLevel = String(good.dropLast()) + ",\"files\":[]}"
        let error = expectBundleError(.invalidManifest, entry: "files") { _ = try BundleManifest.decode(Data(topLevel.utf8), source: "my/craft.json") }
        #expect(error?.message.contains("\"files\"") == true && error?.message.contains("my/craft.json") == true, "\(error?.message ?? "")")
        let escaped = String(good.dropLast()) + ",\"\\u0066iles\":[]}"
        _ = expectBundleError(.invalidManifest, entry: "files") { _ = try BundleManifest.decode(Data(escaped.utf8)) }
        let nested = good.replacingOccurrences(of: "{\"path\":\"b.bin\"", with: "{\"path\":\"b.bin\",\"path\":\"c.bin\"")
        #expect(nested != good)
        _ = expectBundleError(.invalidManifest, entry: "files[1].path") { _ = try BundleManifest.decode(Data(nested.utf8)) }
        // The same key in different objects is fine.
        #expect(JSONDuplicateKeys.firstDuplicate(in: Data(#"{"a":{"a":1},"b":[{"a":1},{"a":"\"a\""}]}"#.utf8)) == nil)

        // In a bundle, and in a directory being packed (the error names the user's craft.json).
        let bundle = temp.path("dup.craft")
        try writeRawBundle(bundle, [
            RawTarEntry(path: "craft.json", kind: .file(Data(topLevel.utf8))),
            RawTarEntry(path: "a.bin", kind: .file(Data("a".utf8))), RawTarEntry(path: "b.bin", kind: .file(Data("b".utf8))),
        ])
        _ = expectBundleError(.invalidManifest, entry: "files") { _ = try BundleArchive.verify(bundle) }
        let source = temp.path("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try Data(topLevel.utf8).write(to: source.appendingPathComponent("craft.json"))
        try Data("a".utf8).write(to: source.appendingPathComponent("a.bin"))
        try Data("b".utf8).write(to: source.appendingPathComponent("b.bin"))
        let packError = expectBundleError(.invalidManifest, entry: "files") { _ = try BundleArchive.pack(directory: source, to: temp.path("p.craft")) }
        #expect(packError?.message.contains(source.appendingPathComponent("craft.json").path) == true, "\(packError?.message ?? "")")
    }

    @Test("manifest validation is linear in the file count and still finds file/directory clashes")
    func linearValidation() throws {
        let hash = String(repeating: "0", count: 64)
        var json = try JSONSerialization.jsonObject(with: try manifestData(listing: [])) as! [String: Any]
        json["files"] = (0..<40_000).map { ["path": "d\($0 / 100)/f\($0).bin", "size": 1, "sha256": hash] }
        let manifest = try BundleManifest.decode(try JSONSerialization.data(withJSONObject: json))
        let start = Date()
        #expect(manifest.problems().isEmpty)
        #expect(Date().timeIntervalSince(start) < 5, "validating 40,000 files took \(Date().timeIntervalSince(start)) s")
        for paths in [["a/b", "a"], ["a", "a/b"], ["x/a/b/c", "x/a"]] {
            json["files"] = paths.map { ["path": $0, "size": 1, "sha256": hash] }
            let clash = try BundleManifest.decode(try JSONSerialization.data(withJSONObject: json))
            #expect(clash.problems().map(\.field) == ["files[1].path"], "\(paths)")
        }
    }
}
