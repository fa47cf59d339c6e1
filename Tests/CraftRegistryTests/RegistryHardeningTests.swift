import CraftBundles
import CraftCore
import Foundation
import Testing
@testable import CraftRegistry

/// Regression tests for the registry defects found by the attack on the release binaries: hostile
/// index fields, lying codebook hashes, silent index damage, leftover temporaries, edited cache entries.
@Suite("Registry hardening: hostile indexes, codebook lies, index damage, scratch files, cache edits")
struct RegistryHardeningTests {
    // MARK: - 1. Hostile index fields

    /// Rewrites the first version record of `name`'s shard with `edit`.
    func editShard(_ registry: Registry, _ name: String, _ edit: (inout [String: Any]) -> Void) throws {
        let url = registry.shardURL(for: name)
        var shard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var versions = try #require(shard["versions"] as? [[String: Any]])
        edit(&versions[0])
        shard["versions"] = versions
        try JSONSerialization.data(withJSONObject: shard, options: [.sortedKeys]).write(to: url)
    }

    @Test func aTraversingDigestIsRejectedAndPullDeletesNothingOutsideTheCache() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        let cache = BundleCache(root: scratch.path("home/.craft/cache"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder))
        let first = try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache)
        let hex = String(first.bundle.record.digest.dropFirst(7))
        // The victim: a directory outside the cache that the hostile digest points at.
        let victim = scratch.path("victim")
        try FileManager.default.createDirectory(at: victim, withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: victim.appendingPathComponent("file.txt"))
        try editShard(registry, "derm-vq") { $0["digest"] = "sha256:\(hex)/../../../../victim" }

        let pull = #expect(throws: RegistryError.self) { try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache) }
        #expect(pull?.code == .corruptIndex)
        #expect(pull?.category == .integrity)
        #expect(pull?.message.contains(registry.shardURL(for: "derm-vq").path) == true)
        #expect(pull?.message.contains("versions[0].digest") == true)
        #expect(FileManager.default.fileExists(atPath: victim.appendingPathComponent("file.txt").path))
        #expect(FileManager.default.fileExists(atPath: first.directory.appendingPathComponent("craft.json").path))
        // info resolves through the same validated shard.
        let info = #expect(throws: RegistryError.self) { try registry.resolve(BundleReference(parsing: "derm-vq")) }
        #expect(info?.code == .corruptIndex)
        // And the cache itself refuses such a digest.
        #expect(throws: RegistryError.self) { try cache.entry(for: "sha256:\(hex)/../../..") }
        #expect(try cache.entry(for: "sha256:" + hex).lastPathComponent == "sha256-" + hex)
    }

    /// A shard field and a hostile JSON value for it.
    static let hostileFields: [(String, String)] = [
        ("version", #""1.0.0/../../x""#),
        ("path", #""bundles/derm-vq/../../../etc/passwd""#),
        ("path", #""bundles/derm-vq/derm-vq-9.9.9.craft""#),
        ("digest", #""sha256:ABC""#),
        ("kind", #""../encoder""#),
        ("domains", #"["../x"]"#),
        ("runtime", #"{"id": "../x", "version": "1.0.0"}"#),
        ("runtime", #"{"id": "table-encoder", "version": "latest"}"#),
        ("codebook", #"{"hash": "sha256:../x", "entries": 4, "dim": 3, "depth": 1, "metric": "l2"}"#),
        ("codebook", #"{"hash": "sha256:\#(String(repeating: "a", count: 64))", "entries": 4, "dim": 3, "depth": 1, "metric": "manhattan"}"#),
        ("size", "-1"),
        ("summary", #""\u001b[2Jtext that clears the terminal""#),
    ]

    @Test(arguments: hostileFields)
    func everyShardFieldIsValidatedAndNamed(field: String, json: String) throws {
        let value = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder))
        try editShard(registry, "derm-vq") { $0[field] = value }
        let error = #expect(throws: RegistryError.self) { try registry.readShard(named: "derm-vq") }
        #expect(error?.code == .corruptIndex)
        #expect(error?.message.contains("index/de/derm-vq.json") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("versions[0].\(field)") == true, "\(error?.message ?? "")")
        let listed = try registry.list()
        #expect(listed.bundles.isEmpty && listed.problems.count == 1)
    }

    @Test func signaturesAndTheTopLevelIndexAreValidatedToo() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        let file = try TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder)
        let signature = try BundleSignature.sign(digest: BundleArchive.digest(of: file), with: SigningKey.generate())
        try registry.publish(file, signatures: [signature])
        try editShard(registry, "derm-vq") { record in
            var signatures = record["signatures"] as? [[String: Any]] ?? []
            signatures[0]["digest"] = "sha256:" + String(repeating: "0", count: 64)
            record["signatures"] = signatures
        }
        let error = #expect(throws: RegistryError.self) { try registry.readShard(named: "derm-vq") }
        #expect(error?.message.contains("versions[0].signatures[0].digest") == true, "\(error?.message ?? "")")

        try Data(#"{"format": "craft.registry/v1", "names": ["../../etc"], "shard_layout": "x"}"#.utf8).write(to: registry.indexURL)
        let top = #expect(throws: RegistryError.self) { try registry.readIndex() }
        #expect(top?.code == .corruptIndex)
        #expect(top?.message.contains("registry.json: names[0]") == true, "\(top?.message ?? "")")
    }

    @Test func aSymlinkedCacheEntryIsUnlinkedNeverFollowed() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        let published = try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder))
        let cache = BundleCache(root: scratch.path("cache"))
        try FileManager.default.createDirectory(at: cache.root, withIntermediateDirectories: true)
        let victim = scratch.path("victim")
        try FileManager.default.createDirectory(at: victim, withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: victim.appendingPathComponent("file.txt"))
        let entry = try cache.entry(for: published.record.digest)
        try FileManager.default.createSymbolicLink(at: entry, withDestinationURL: victim)

        let pulled = try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache)
        #expect(!pulled.reusedCache)
        #expect(FileManager.default.fileExists(atPath: victim.appendingPathComponent("file.txt").path))
        let type = try FileManager.default.attributesOfItem(atPath: entry.path)[.type] as? FileAttributeType
        #expect(type == .typeDirectory)
        #expect(FileManager.default.fileExists(atPath: entry.appendingPathComponent("craft.json").path))
        #expect(!CachePaths.isDirectChild(cache.root.appendingPathComponent("sha256-x/../../victim"), of: cache.root))
    }

    // MARK: - 2. Lying codebook hashes

    @Test func publishAndVerifyRecomputeTheCodebookHash() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "llm-a", version: "1.0.0", kind: .backend, seed: 1))
        let stolen = try TestBundles.codebookHash(seed: 1)
        let lie = try TestBundles.lyingEncoder(in: scratch.url, name: "liar-vq", version: "1.0.0", declaredHash: stolen)
        // The archive itself is sound: only the hash is a lie.
        #expect(try BundleArchive.verify(lie).manifest.codebook.hash == stolen)

        let publish = #expect(throws: RegistryError.self) { try registry.publish(lie) }
        #expect(publish?.code == .codebookMismatch)
        #expect(publish?.category == .integrity)
        #expect(publish?.message.contains(lie.path) == true)
        #expect(try registry.readIndex().names == ["llm-a"])
        #expect(try registry.search(String(stolen.dropFirst(7).prefix(12))).hits.map(\.bundle.name) == ["llm-a"])
        let staged = (try? FileManager.default.contentsOfDirectory(atPath: scratch.path("reg/.staging").path)) ?? []
        #expect(staged.isEmpty, "\(staged)")

        let file = #expect(throws: RegistryError.self) { try BundleVerification.verify(file: lie, trustedKeys: []) }
        #expect(file?.code == .codebookMismatch)

        // A lie smuggled into the registry by hand (file and shard written directly) fails verify REF.
        let target = scratch.path("reg/bundles/liar-vq/liar-vq-1.0.0.craft")
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: lie, to: target)
        let verified = try BundleArchive.verify(target)
        let shard = IndexShard(name: "liar-vq", versions: [IndexedVersion(
            manifest: verified.manifest, digest: verified.digest, size: verified.size, path: "bundles/liar-vq/liar-vq-1.0.0.craft")])
        try JSONFormatting.encode(shard).write(to: registry.shardURL(for: "liar-vq").creatingParent())
        let ref = #expect(throws: RegistryError.self) { try registry.verify(BundleReference(parsing: "liar-vq")) }
        #expect(ref?.code == .codebookMismatch)
        #expect(ref?.category == .integrity)
    }

    @Test func verifyRefusesAShardThatDescribesItsBundleOtherwise() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder, seed: 1))
        let other = try TestBundles.codebookHash(seed: 2)
        try editShard(registry, "derm-vq") { record in
            var codebook = record["codebook"] as? [String: Any] ?? [:]
            codebook["hash"] = other
            record["codebook"] = codebook
        }
        let error = #expect(throws: RegistryError.self) { try registry.verify(BundleReference(parsing: "derm-vq")) }
        #expect(error?.code == .corruptIndex)
        #expect(error?.message.contains("index/de/derm-vq.json") == true)
    }

    // MARK: - 3. Index damage

    func publishEight(_ registry: Registry, in scratch: Scratch) throws {
        for (index, name) in ["a-llm", "b-llm", "c-vq", "d-vq", "e-llm", "f-vq", "g-llm", "h-vq"].enumerated() {
            let kind: BundleKind = name.hasSuffix("vq") ? .encoder : .backend
            try registry.publish(TestBundles.packed(in: scratch.url, name: name, version: "1.0.0", kind: kind, seed: index))
        }
    }

    @Test func aDeletedRegistryJSONIsReportedRefusedByPublishAndRepairedByReindex() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try publishEight(registry, in: scratch)
        try registry.yank(name: "c-vq", version: "1.0.0")
        try FileManager.default.removeItem(at: registry.indexURL)

        let listed = try registry.list(includePrerelease: true)
        #expect(listed.problems.count == 1)
        #expect(listed.problems.first?.message.contains("registry.json is missing") == true)
        #expect(listed.bundles.count == 7)  // every shard is still read; c-vq is yanked

        let next = try TestBundles.packed(in: scratch.url, name: "new-llm", version: "1.0.0", kind: .backend)
        let refused = #expect(throws: RegistryError.self) { try registry.publish(next) }
        #expect(refused?.code == .corruptIndex)
        #expect(refused?.message.contains("reindex") == true)
        #expect(!FileManager.default.fileExists(atPath: registry.indexURL.path))

        let result = try registry.reindex()
        #expect(result.problems.isEmpty)
        #expect(result.names.count == 8 && result.kept.count == 8 && result.added.isEmpty)
        #expect(result.rewritten == ["registry.json"])
        #expect(try registry.readShard(named: "c-vq")?.versions.first?.yanked == true)
        #expect(try registry.list().problems.isEmpty)
        try registry.publish(next)
        #expect(try registry.readIndex().names.count == 9)
    }

    @Test func aMissingShardIsNotANewNameAndReindexRestoresItsVersions() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        for version in ["1.0.0", "1.1.0"] {
            try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: version, kind: .encoder, seed: 1))
        }
        try registry.publish(TestBundles.packed(in: scratch.url, name: "tiny-llm", version: "1.0.0", kind: .backend, seed: 1))
        try FileManager.default.removeItem(at: registry.shardURL(for: "derm-vq"))

        let next = try TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.2.0", kind: .encoder, seed: 1)
        let refused = #expect(throws: RegistryError.self) { try registry.publish(next) }
        #expect(refused?.code == .corruptIndex)
        #expect(refused?.message.contains("derm-vq") == true)
        #expect(refused?.message.contains("reindex") == true)
        let problems = try registry.list().problems.map(\.message).joined(separator: "\n")
        #expect(problems.contains("bundles/derm-vq"), "\(problems)")

        let result = try registry.reindex()
        #expect(result.added == ["derm-vq@1.0.0", "derm-vq@1.1.0"])
        #expect(result.kept == ["tiny-llm@1.0.0"])
        #expect(try registry.shard(named: "derm-vq").versions.map(\.version) == ["1.0.0", "1.1.0"])
        try registry.publish(next)
        #expect(try registry.shard(named: "derm-vq").versions.map(\.version) == ["1.0.0", "1.1.0", "1.2.0"])
    }

    @Test func aGarbageRegistryJSONKeepsIntactShardsUsable() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try publishEight(registry, in: scratch)
        try Data("garbage{".utf8).write(to: registry.indexURL)

        #expect(try registry.resolve(BundleReference(parsing: "a-llm")).record.version == "1.0.0")
        let pulled = try registry.pull(BundleReference(parsing: "a-llm"), cache: BundleCache(root: scratch.path("cache")))
        #expect(FileManager.default.fileExists(atPath: pulled.directory.appendingPathComponent("craft.json").path))
        let listed = try registry.list()
        #expect(listed.bundles.count == 8)
        #expect(listed.problems.first?.message.contains("registry.json") == true)
        #expect(throws: RegistryError.self) { try registry.publish(TestBundles.packed(in: scratch.url, name: "z-llm", version: "1.0.0", kind: .backend)) }
        // A name the index forgot is damage too.
        try registry.reindex()
        try Data(#"{"format": "craft.registry/v1", "names": ["a-llm"], "shard_layout": "index/{first two characters of the name, '_'-padded}/{name}.json"}"#.utf8)
            .write(to: registry.indexURL)
        let hidden = try registry.list()
        #expect(hidden.bundles.count == 8)
        #expect(hidden.problems.first?.message.contains("does not list") == true)
    }

    @Test func reindexKeepsSignaturesLeavesAnIntactIndexAloneAndReportsBadFiles() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        let file = try TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder)
        let signature = try BundleSignature.sign(digest: BundleArchive.digest(of: file), with: SigningKey.generate())
        try registry.publish(file, signatures: [signature])
        try registry.publish(TestBundles.packed(in: scratch.url, name: "tiny-llm", version: "1.0.0", kind: .backend))
        let shardBytes = try Data(contentsOf: registry.shardURL(for: "derm-vq"))
        let indexBytes = try Data(contentsOf: registry.indexURL)

        let intact = try registry.reindex()
        #expect(intact.rewritten.isEmpty && intact.removed.isEmpty && intact.problems.isEmpty)
        #expect(try Data(contentsOf: registry.shardURL(for: "derm-vq")) == shardBytes)
        #expect(try Data(contentsOf: registry.indexURL) == indexBytes)

        // A file nobody published (a lie about its codebook) dropped into bundles/ is not indexed.
        let lie = try TestBundles.lyingEncoder(in: scratch.url, name: "liar-vq", version: "1.0.0", declaredHash: try TestBundles.codebookHash(seed: 0))
        let target = scratch.path("reg/bundles/liar-vq/liar-vq-1.0.0.craft")
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: lie, to: target)
        // A bundle whose file is gone is dropped.
        try FileManager.default.removeItem(at: scratch.path("reg/bundles/tiny-llm/tiny-llm-1.0.0.craft"))
        let result = try registry.reindex()
        #expect(result.problems.count == 1)
        #expect(result.problems.first?.code == .codebookMismatch)
        #expect(result.dropped == ["tiny-llm@1.0.0"])
        #expect(result.names == ["derm-vq"])
        #expect(try registry.shard(named: "derm-vq").versions.first?.signatures == [signature])
        #expect(!FileManager.default.fileExists(atPath: registry.shardURL(for: "tiny-llm").path))
    }

    // MARK: - 4. Scratch files of interrupted commands

    @Test func publishSweepsStagingAndTemporariesOfDeadWritersOnly() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder))
        let dead = try TestProcesses.deadPID()
        let live = try TestProcesses.liveProcess()
        defer { live.terminate(); live.waitUntilExit() }
        let uuid = { UUID().uuidString }
        let files: [(path: String, swept: Bool)] = [
            (".staging/craft-publish-\(dead)-\(uuid()).craft", true),
            (".staging/craft-publish-\(live.processIdentifier)-\(uuid()).craft", false),
            (".registry.json.tmp-\(dead)-\(uuid())", true),
            ("index/de/.derm-vq.json.tmp-\(dead)-\(uuid())", true),
            ("index/de/.derm-vq.json.tmp-\(live.processIdentifier)-\(uuid())", false),
            (".staging/\(uuid()).craft", true),  // an old version's copy, two days old
            (".staging/\(uuid()).craft", false),  // an old version's copy, fresh: its writer may be alive
        ]
        for (position, file) in files.enumerated() {
            let url = scratch.path("reg/\(file.path)")
            try Data(repeating: 7, count: 1000).write(to: url)
            if position == 5 {
                try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -2 * 86_400)], ofItemAtPath: url.path)
            }
        }
        try registry.publish(TestBundles.packed(in: scratch.url, name: "tiny-llm", version: "1.0.0", kind: .backend))
        for file in files {
            #expect(FileManager.default.fileExists(atPath: scratch.path("reg/\(file.path)").path) == !file.swept, "\(file.path)")
        }
    }

    @Test func pullSweepsCachePartialsOfDeadPullsOnly() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder))
        let cache = BundleCache(root: scratch.path("cache"))
        try FileManager.default.createDirectory(at: cache.root, withIntermediateDirectories: true)
        let dead = try TestProcesses.deadPID()
        let live = try TestProcesses.liveProcess()
        defer { live.terminate(); live.waitUntilExit() }
        let deadPull = cache.root.appendingPathComponent(".craft-pull-\(dead)-\(UUID().uuidString)")
        let livePull = cache.root.appendingPathComponent(".craft-pull-\(live.processIdentifier)-\(UUID().uuidString)")
        let deadUnpack = cache.root.appendingPathComponent(".craft-unpack-\(dead)-\(UUID().uuidString)")
        let oldDownload = cache.root.appendingPathComponent(".sha256-\(String(repeating: "a", count: 64)).download-\(UUID().uuidString).craft")
        for directory in [deadPull, livePull, deadUnpack] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data(repeating: 1, count: 1000).write(to: directory.appendingPathComponent("download.craft"))
        }
        try Data(repeating: 1, count: 1000).write(to: oldDownload)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -2 * 86_400)], ofItemAtPath: oldDownload.path)

        let pulled = try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache)
        #expect(!FileManager.default.fileExists(atPath: deadPull.path))
        #expect(!FileManager.default.fileExists(atPath: deadUnpack.path))
        #expect(!FileManager.default.fileExists(atPath: oldDownload.path))
        #expect(FileManager.default.fileExists(atPath: livePull.path))
        let left = try FileManager.default.contentsOfDirectory(atPath: cache.root.path).sorted()
        #expect(left == [livePull.lastPathComponent, pulled.directory.lastPathComponent].sorted(), "\(left)")

        // With -o DIR, the scratch directory lives next to DIR and is swept there.
        let out = scratch.path("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let deadOut = out.appendingPathComponent(".craft-pull-\(dead)-\(UUID().uuidString)")
        let liveOut = out.appendingPathComponent(".craft-pull-\(live.processIdentifier)-\(UUID().uuidString)")
        for directory in [deadOut, liveOut] { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        _ = try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache, destination: out.appendingPathComponent("derm"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).sorted() == [liveOut.lastPathComponent, "derm"].sorted())
    }

    // MARK: - 5. Edited cache entries

    @Test func aCacheEntryEditedTogetherWithItsManifestIsNotServed() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder))
        let cache = BundleCache(root: scratch.path("cache"))
        let first = try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache)
        let features = first.directory.appendingPathComponent("features.txt")
        let original = try Data(contentsOf: features)

        // Edit a file and make the cached craft.json agree with the edit.
        let edited = Data("features chosen by an attacker\n".utf8)
        try edited.write(to: features)
        let manifestURL = first.directory.appendingPathComponent("craft.json")
        var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as? [String: Any])
        var files = try #require(manifest["files"] as? [[String: Any]])
        for index in files.indices where files[index]["path"] as? String == "features.txt" {
            files[index]["size"] = edited.count
            files[index]["sha256"] = String(try BundleArchive.digest(of: features).dropFirst(7))
        }
        manifest["files"] = files
        try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys, .prettyPrinted]).write(to: manifestURL)
        // The entry is consistent with its own manifest: checking it alone would serve it.
        #expect(throws: Never.self) { try BundleArchive.open(directory: first.directory, verifyFiles: true) }

        let second = try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache)
        #expect(!second.reusedCache)
        #expect(try Data(contentsOf: second.directory.appendingPathComponent("features.txt")) == original)
        let third = try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache)
        #expect(third.reusedCache)

        // A registry file that no longer has its indexed digest is never vouched for by the cache.
        let stored = scratch.path("reg/bundles/derm-vq/derm-vq-1.0.0.craft")
        var bytes = try Data(contentsOf: stored)
        bytes[bytes.count / 2] ^= 0x55
        try bytes.write(to: stored)
        let tampered = #expect(throws: RegistryError.self) { try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache) }
        #expect(tampered?.code == .digestMismatch)
    }
}

extension URL {
    /// Creates the parent directory and returns the URL (for writing a file at a fresh path).
    func creatingParent() throws -> URL {
        try FileManager.default.createDirectory(at: deletingLastPathComponent(), withIntermediateDirectories: true)
        return self
    }
}
