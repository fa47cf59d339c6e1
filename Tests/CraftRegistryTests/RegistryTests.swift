import CraftBundles
import CraftCore
import Foundation
import Testing
@testable import CraftRegistry

@Suite("Registry: publish, index, lookups")
struct RegistryTests {
    @Test func publishWritesShardsIndexAndBundleFiles() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        let encoder = try TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder, seed: 1)
        let backend = try TestBundles.packed(in: scratch.url, name: "tiny-llm", version: "0.3.0", kind: .backend, seed: 1)
        let first = try registry.publish(encoder)
        let second = try registry.publish(backend)
        #expect(first.outcome == .published)
        #expect(second.outcome == .published)

        let index = try registry.readIndex()
        #expect(index.format == "craft.registry/v1")
        #expect(index.names == ["derm-vq", "tiny-llm"])
        #expect(FileManager.default.fileExists(atPath: scratch.path("reg/index/de/derm-vq.json").path))
        #expect(FileManager.default.fileExists(atPath: scratch.path("reg/index/ti/tiny-llm.json").path))
        #expect(FileManager.default.fileExists(atPath: scratch.path("reg/bundles/derm-vq/derm-vq-1.0.0.craft").path))

        let record = try #require(try registry.readShard(named: "derm-vq")?.versions.first)
        #expect(record.kind == .encoder)
        #expect(record.codebook.hash == (try TestBundles.codebookHash(seed: 1)))
        #expect(record.codebook.entries == 4 && record.codebook.dim == 3 && record.codebook.metric == "l2")
        #expect(record.digest == (try BundleArchive.digest(of: encoder)))
        #expect(record.size == Int64(try Data(contentsOf: encoder).count))
        #expect(record.path == "bundles/derm-vq/derm-vq-1.0.0.craft")

        let listed = try registry.list()
        #expect(listed.problems.isEmpty)
        #expect(listed.bundles.map(\.name) == ["derm-vq", "tiny-llm"])
        #expect(try registry.list(kind: .backend).bundles.map(\.name) == ["tiny-llm"])
        // Nothing is left in staging.
        let staged = try FileManager.default.contentsOfDirectory(atPath: scratch.path("reg/.staging").path)
        #expect(staged.isEmpty)
    }

    @Test func republishingIdenticalBytesIsANoOp() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        let bundle = try TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder)
        try registry.publish(bundle)
        let shardBefore = try Data(contentsOf: registry.shardURL(for: "derm-vq"))
        let indexBefore = try Data(contentsOf: registry.indexURL)
        let again = try registry.publish(bundle)
        #expect(again.outcome == .unchanged)
        #expect(try Data(contentsOf: registry.shardURL(for: "derm-vq")) == shardBefore)
        #expect(try Data(contentsOf: registry.indexURL) == indexBefore)
    }

    @Test func differentBytesUnderAPublishedVersionAreRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        let original = try TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder, extra: "a")
        let impostor = try TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder, extra: "b")
        let buildVariant = try TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0+rebuild", kind: .encoder, extra: "c")
        try registry.publish(original)
        for candidate in [impostor, buildVariant] {
            let error = #expect(throws: RegistryError.self) { try registry.publish(candidate) }
            #expect(error?.code == .conflict)
            #expect(error?.category == .integrity)
            #expect(error?.message.contains("derm-vq@1.0.0") == true)
        }
        let kept = try registry.resolve(BundleReference(parsing: "derm-vq@1.0.0"))
        #expect(kept.record.digest == (try BundleArchive.digest(of: original)))
        #expect(try BundleArchive.digest(of: kept.file) == kept.record.digest)
    }

    @Test func rangesAndPreReleaseRules() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        for version in ["1.0.0", "1.1.0", "1.2.0-beta.1", "2.0.0-rc.1"] {
            try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: version, kind: .encoder))
        }
        func resolve(_ text: String, pre: Bool = false) throws -> String {
            try registry.resolve(BundleReference(parsing: text), includePrerelease: pre).record.version
        }
        #expect(try resolve("derm-vq") == "1.1.0")
        #expect(try resolve("derm-vq", pre: true) == "2.0.0-rc.1")
        #expect(try resolve("derm-vq@^1.0") == "1.1.0")
        #expect(try resolve("derm-vq@^1.0", pre: true) == "1.2.0-beta.1")
        // A range naming a pre-release of the same core admits it without the flag (npm rule).
        #expect(try resolve("derm-vq@>=1.2.0-beta.0 <2.0.0") == "1.2.0-beta.1")
        #expect(try resolve("derm-vq@1.x") == "1.1.0")
        #expect(try resolve("derm-vq@~1.0.0") == "1.0.0")
        #expect(try resolve("derm-vq@1.2.0-beta.1") == "1.2.0-beta.1")
        let error = #expect(throws: RegistryError.self) { try resolve("derm-vq@^3.0") }
        #expect(error?.code == .notFound)
        #expect(error?.category == .notFound)
        #expect(error?.message.contains("1.1.0") == true)
        let missing = #expect(throws: RegistryError.self) { try resolve("nothing-here") }
        #expect(missing?.code == .notFound)
    }

    @Test func yankHidesFromRangesButNotFromExactVersions() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        for version in ["1.0.0", "1.1.0"] {
            try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: version, kind: .encoder))
        }
        try registry.yank(name: "derm-vq", version: "1.1.0")
        #expect(try registry.resolve(BundleReference(parsing: "derm-vq")).record.version == "1.0.0")
        #expect(try registry.resolve(BundleReference(parsing: "derm-vq@^1.0")).record.version == "1.0.0")
        let exact = try registry.resolve(BundleReference(parsing: "derm-vq@1.1.0"))
        #expect(exact.record.yanked)
        #expect(try registry.list().bundles.first?.record.version == "1.0.0")
        try registry.yank(name: "derm-vq", version: "1.1.0", yanked: false)
        #expect(try registry.resolve(BundleReference(parsing: "derm-vq")).record.version == "1.1.0")
        let error = #expect(throws: RegistryError.self) { try registry.yank(name: "derm-vq", version: "9.9.9") }
        #expect(error?.code == .notFound)
    }

    @Test func removeDeletesVersionsAndFinallyTheName() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        for version in ["1.0.0", "1.1.0"] {
            try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: version, kind: .encoder))
        }
        let removed = try registry.remove(name: "derm-vq", version: "1.1.0")
        #expect(!FileManager.default.fileExists(atPath: registry.bundleURL(for: removed).path))
        #expect(try registry.shard(named: "derm-vq").versions.map(\.version) == ["1.0.0"])
        try registry.remove(name: "derm-vq", version: "1.0.0")
        #expect(try registry.readIndex().names.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: registry.shardURL(for: "derm-vq").path))
        let error = #expect(throws: RegistryError.self) { try registry.shard(named: "derm-vq") }
        #expect(error?.code == .notFound)
    }

    @Test func compatibleFindsTheOtherSideWithTheSameCodebook() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder, seed: 1))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "xray-vq", version: "1.0.0", kind: .encoder, seed: 2))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "llm-a", version: "1.0.0", kind: .backend, seed: 1))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "llm-b", version: "2.0.0", kind: .backend, seed: 1))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "llm-c", version: "1.0.0", kind: .backend, seed: 2))
        // llm-b's newer version reads another codebook: its older one still pairs.
        try registry.publish(TestBundles.packed(in: scratch.url, name: "llm-b", version: "3.0.0", kind: .backend, seed: 2))

        let forDerm = try registry.compatible(with: BundleReference(parsing: "derm-vq"))
        #expect(forDerm.partners.map { "\($0.name)@\($0.record.version)" } == ["llm-a@1.0.0", "llm-b@2.0.0"])
        let forC = try registry.compatible(with: BundleReference(parsing: "llm-c"))
        #expect(forC.partners.map(\.name) == ["xray-vq"])
        #expect(forC.subject.record.kind == .backend)
    }

    @Test func searchRanksExactThenPrefixThenContainsThenTagsThenSummary() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "derm", version: "1.0.0", kind: .encoder, seed: 1))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "dermatology-vq", version: "1.0.0", kind: .encoder, seed: 2))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "clinical-derm", version: "1.0.0", kind: .encoder, seed: 3))
        try registry.publish(TestBundles.packed(
            in: scratch.url, name: "skin-lesions", version: "1.0.0", kind: .encoder, seed: 4, domains: ["derm"]))
        try registry.publish(TestBundles.packed(
            in: scratch.url, name: "general-llm", version: "1.0.0", kind: .backend, seed: 5,
            summary: "A backend tuned on derm reports"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "unrelated", version: "1.0.0", kind: .backend, seed: 6))

        let hits = try registry.search("derm")
        #expect(hits.problems.isEmpty)
        #expect(hits.hits.map(\.bundle.name) == ["derm", "dermatology-vq", "clinical-derm", "skin-lesions", "general-llm"])
        #expect(hits.hits.first?.reasons.first == "name")

        // Filters.
        #expect(try registry.search("derm", kind: .backend).hits.map(\.bundle.name) == ["general-llm"])
        #expect(try registry.search("derm", domain: "derm").hits.map(\.bundle.name) == ["skin-lesions"])
        // Kind and runtime words, multi-word queries (every word must match).
        #expect(try registry.search("backend reports").hits.map(\.bundle.name) == ["general-llm"])
        #expect(try registry.search("table-backend").hits.map(\.bundle.name).sorted() == ["general-llm", "unrelated"])
        #expect(try registry.search("nothing-like-this").hits.isEmpty)

        // Codebook hash prefix, with and without the sha256: prefix.
        let hash = try TestBundles.codebookHash(seed: 4)
        let hex = String(hash.dropFirst(7).prefix(10))
        #expect(try registry.search(hex).hits.map(\.bundle.name) == ["skin-lesions"])
        #expect(try registry.search("sha256:" + hex).hits.first?.reasons.contains("codebook-hash") == true)
    }

    @Test func aCorruptShardIsAClearErrorNamingTheFileAndDoesNotHideOthers() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "tiny-llm", version: "1.0.0", kind: .backend))
        let shard = registry.shardURL(for: "derm-vq")
        try Data("{\"format\": \"craft.registry.index/v1\", \"name\": \"derm-vq\", \"versions\": [{\"version\": 3".utf8).write(to: shard)

        let error = #expect(throws: RegistryError.self) { try registry.shard(named: "derm-vq") }
        #expect(error?.code == .corruptIndex)
        #expect(error?.category == .integrity)
        #expect(error?.message.contains(shard.path) == true)

        let listed = try registry.list()
        #expect(listed.bundles.map(\.name) == ["tiny-llm"])
        #expect(listed.problems.count == 1)
        #expect(listed.problems.first?.message.contains("derm-vq.json") == true)

        // A shard with the wrong type at a key names the key path.
        try Data("{\"format\": \"craft.registry.index/v1\", \"name\": \"derm-vq\", \"versions\": [{\"version\": 3}]}".utf8).write(to: shard)
        let typed = #expect(throws: RegistryError.self) { try registry.shard(named: "derm-vq") }
        #expect(typed?.message.contains("versions[0]") == true)

        // Publishing over a corrupt shard is refused rather than silently replacing history.
        let next = try TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.1.0", kind: .encoder)
        let refused = #expect(throws: RegistryError.self) { try registry.publish(next) }
        #expect(refused?.code == .corruptIndex)

        try Data("not json".utf8).write(to: registry.indexURL)
        let top = #expect(throws: RegistryError.self) { try registry.readIndex() }
        #expect(top?.message.contains("registry.json") == true)
    }

    @Test func aMissingRegistryIsNotFound() throws {
        let registry = Registry(root: URL(fileURLWithPath: "/nonexistent/craft-registry-\(UUID().uuidString)"))
        let error = #expect(throws: RegistryError.self) { try registry.list() }
        #expect(error?.code == .noRegistry)
        #expect(error?.category == .notFound)
    }

    @Test func locationResolutionOrder() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let home = scratch.path("home")
        let work = scratch.path("work")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let fromHome = Registry.locate(explicit: nil, environment: [:], currentDirectory: work, home: home)
        #expect(fromHome.source == .home)
        #expect(fromHome.registry.root.path == home.appendingPathComponent(".craft/registry").path)
        try FileManager.default.createDirectory(at: work.appendingPathComponent("registry"), withIntermediateDirectories: true)
        let local = Registry.locate(explicit: nil, environment: [:], currentDirectory: work, home: home)
        #expect(local.source == .workingDirectory)
        let environment = Registry.locate(explicit: nil, environment: ["CRAFT_REGISTRY": "/srv/reg"], currentDirectory: work, home: home)
        #expect(environment.source == .environment)
        #expect(environment.registry.root.path == "/srv/reg")
        let option = Registry.locate(explicit: "mine", environment: ["CRAFT_REGISTRY": "/srv/reg"], currentDirectory: work, home: home)
        #expect(option.source == .option)
        #expect(option.registry.root.path == work.appendingPathComponent("mine").path)
    }

    @Test func referencesParse() throws {
        #expect(try BundleReference(parsing: "derm-vq") == BundleReference(name: "derm-vq"))
        #expect(try BundleReference(parsing: "derm-vq@1.2.3").requirement == .exact("1.2.3"))
        #expect(try BundleReference(parsing: "derm-vq@^1.2").requirement == .range("^1.2"))
        #expect(try BundleReference(parsing: "derm-vq@>=1.0 <2.0").requirement == .range(">=1.0 <2.0"))
        for bad in ["", "Derm", "-x", "derm@", "derm@not a range!", String(repeating: "a", count: 65)] {
            let error = #expect(throws: RegistryError.self) { try BundleReference(parsing: bad) }
            #expect(error?.category == .usage)
        }
    }
}
