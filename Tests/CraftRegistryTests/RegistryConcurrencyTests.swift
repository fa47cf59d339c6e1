import CraftBundles
import Foundation
import Testing
@testable import CraftRegistry

/// Thread-safe collection of errors raised on worker threads.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [String] = []
    func add(_ error: Error) {
        lock.lock()
        errors.append(String(describing: error))
        lock.unlock()
    }
    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return errors
    }
}

@Suite("Registry: concurrent writers and lock-free readers")
struct RegistryConcurrencyTests {
    @Test func concurrentPublishersAllLandAndTheIndexStaysValid() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        // Distinct names, plus several versions of one shared name: both the top-level index and a
        // single shard are contended.
        var bundles: [URL] = []
        for index in 0..<4 {
            bundles.append(try TestBundles.packed(in: scratch.url, name: "enc-\(index)", version: "1.0.0", kind: .encoder, seed: index))
        }
        for minor in 0..<4 {
            bundles.append(try TestBundles.packed(in: scratch.url, name: "shared-llm", version: "1.\(minor).0", kind: .backend))
        }
        let errors = ErrorBox()
        let work = bundles
        DispatchQueue.concurrentPerform(iterations: work.count) { position in
            do {
                _ = try Registry(root: registry.root).publish(work[position])
            } catch {
                errors.add(error)
            }
        }
        #expect(errors.all.isEmpty, "\(errors.all)")
        let index = try registry.readIndex()
        #expect(index.names == ["enc-0", "enc-1", "enc-2", "enc-3", "shared-llm"])
        #expect(try registry.shard(named: "shared-llm").versions.map(\.version) == ["1.0.0", "1.1.0", "1.2.0", "1.3.0"])
        let listed = try registry.list()
        #expect(listed.problems.isEmpty)
        for bundle in listed.bundles {
            #expect(try BundleArchive.digest(of: bundle.file) == bundle.record.digest)
        }
        // No temporary files are left next to index files.
        let leftovers = FileManager.default.enumerator(atPath: registry.root.path)?
            .compactMap { $0 as? String }.filter { $0.contains(".tmp-") } ?? []
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test("two concurrent publishers (and a yank) leave index/search.tsv holding exactly what the shards say")
    func concurrentPublishersKeepTheSearchIndexConsistent() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        let bundles = [
            try TestBundles.packed(in: scratch.url, name: "alpha-vq", version: "1.0.0", kind: .encoder, seed: 1),
            try TestBundles.packed(in: scratch.url, name: "beta-llm", version: "1.0.0", kind: .backend, seed: 1),
            try TestBundles.packed(in: scratch.url, name: "beta-llm", version: "2.0.0-rc.1", kind: .backend, seed: 1),
            try TestBundles.packed(in: scratch.url, name: "alpha-vq", version: "1.1.0", kind: .encoder, seed: 1),
        ]
        let errors = ErrorBox()
        // Two publishers, each with its own bundles, at the same time.
        DispatchQueue.concurrentPerform(iterations: 2) { publisher in
            for position in stride(from: publisher, to: bundles.count, by: 2) {
                do { _ = try Registry(root: registry.root).publish(bundles[position]) } catch { errors.add(error) }
            }
        }
        #expect(errors.all.isEmpty, "\(errors.all)")
        let searchIndex = registry.root.appendingPathComponent(SearchIndex.relativePath)
        let shards = try registry.allShards().shards
        #expect(try Data(contentsOf: searchIndex) == SearchIndex.document(of: shards))
        let index = try SearchIndex(data: Data(contentsOf: searchIndex), source: "search.tsv")
        #expect(index.rowCount == 3)  // alpha-vq 1.1.0; beta-llm 1.0.0 and its newer pre-release
        _ = try registry.yank(name: "alpha-vq", version: "1.1.0")
        #expect(try Data(contentsOf: searchIndex) == SearchIndex.document(of: registry.allShards().shards))
        // reindex finds it up to date; removing it makes reindex write it again, byte for byte.
        let expected = try Data(contentsOf: searchIndex)
        #expect(try registry.reindex().rewritten.isEmpty)
        try FileManager.default.removeItem(at: searchIndex)
        #expect(try registry.reindex().rewritten == [SearchIndex.relativePath])
        #expect(try Data(contentsOf: searchIndex) == expected)
    }

    @Test func flockSerialisesTwoLockersEvenInOneProcess() throws {
        // flock(2) locks belong to open file descriptions: two opens in one process conflict just
        // like two processes. Hold the lock here and check that a second locker waits.
        let scratch = try Scratch()
        defer { scratch.remove() }
        let lockURL = scratch.path("lock")
        let entered = ErrorBox()
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? FileLock.withExclusiveLock(at: lockURL) {
                holding.signal()
                release.wait()
            }
        }
        holding.wait()
        Thread.detachNewThread {
            _ = try? FileLock.withExclusiveLock(at: lockURL) { entered.add(RegistryError(.io, "entered")) }
            finished.signal()
        }
        // While the first holder keeps the lock, the second cannot have entered.
        #expect(finished.wait(timeout: .now() + 0.3) == .timedOut)
        #expect(entered.all.isEmpty)
        release.signal()
        #expect(finished.wait(timeout: .now() + 10) == .success)
        #expect(entered.all.count == 1)
    }

    @Test func readersNeverSeeABrokenIndexWhilePublishing() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "seed-llm", version: "1.0.0", kind: .backend))
        var bundles: [URL] = []
        for index in 0..<6 {
            bundles.append(try TestBundles.packed(
                in: scratch.url, name: index % 2 == 0 ? "grow-llm" : "new-\(index)", version: "1.\(index).0", kind: .backend))
        }
        let errors = ErrorBox()
        let done = DispatchSemaphore(value: 0)
        let work = bundles
        Thread.detachNewThread {
            for bundle in work {
                do { _ = try registry.publish(bundle) } catch { errors.add(error) }
            }
            done.signal()
        }
        var reads = 0
        // Bounded: read until the writer is done (at most a few hundred reads).
        while done.wait(timeout: .now()) == .timedOut, reads < 2000 {
            do {
                let (bundles, problems) = try registry.list(includePrerelease: true)
                if !problems.isEmpty { errors.add(problems[0]) }
                if !bundles.contains(where: { $0.name == "seed-llm" }) { errors.add(RegistryError(.io, "seed vanished")) }
                for bundle in bundles where !FileManager.default.fileExists(atPath: bundle.file.path) {
                    errors.add(RegistryError(.io, "indexed \(bundle.reference) before its file existed"))
                }
            } catch {
                errors.add(error)
            }
            reads += 1
        }
        #expect(reads > 0)
        #expect(errors.all.isEmpty, "\(errors.all)")
        #expect(try registry.readIndex().names == ["grow-llm", "new-1", "new-3", "new-5", "seed-llm"])
    }
}
