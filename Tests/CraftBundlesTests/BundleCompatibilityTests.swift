import CraftCore
import Foundation
import Testing

@testable import CraftBundles

@Suite("Compatibility of bundles")
struct BundleCompatibilityTests {
    /// Packs the source directory `name` and unpacks it to `name-unpacked`.
    func unpack(_ temp: TemporaryDirectory, _ name: String) throws -> UnpackedBundle {
        let packed = try BundleArchive.pack(directory: temp.path(name), to: temp.path("\(name).craft"))
        return try BundleArchive.unpack(packed.url, into: temp.path("\(name)-unpacked"))
    }

    func failed(_ report: CompatibilityReport) -> [String] {
        report.failures.map { "\($0.code)/\($0.subject.rawValue)" }
    }

    @Test("a matching pair passes every check and yields a CheckedPair")
    func passes() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try makeEncoderDirectory(at: temp.path("src-e"))
        try makeBackendDirectory(at: temp.path("src-b"), hash: try Sample.hash(Sample.codebook()))
        let encoder = try BundleArchive.verify(try BundleArchive.pack(directory: temp.path("src-e")).url)
        let backend = try BundleArchive.verify(try BundleArchive.pack(directory: temp.path("src-b")).url)
        let report = checkCompatibility(encoder: encoder, backend: backend, runtimes: .tables)
        #expect(report.isCompatible, "\(report.renderText())")
        #expect(report.checks.count == 13)
        let pair = try report.requirePairing()
        #expect(pair.codebook.hash == (try Sample.hash(Sample.codebook())))
        #expect(report.renderText().contains("compatible: demo-encoder@1.0.0 can be paired with demo-backend@2.1.0"))
        // Extraction for the hash recomputation left nothing in the temporary directory.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path).filter { $0.hasPrefix("craft-extract-") }
        #expect(leftovers.isEmpty)
    }

    @Test("a hash mismatch names both bundles, both hashes and the wrong side")
    func hashMismatch() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try makeEncoderDirectory(at: temp.path("e"))
        let otherHash = try Sample.hash(Sample.codebook(scale: 2))
        try makeBackendDirectory(at: temp.path("b"), hash: otherHash)
        let report = checkCompatibility(encoder: try unpack(temp, "e"), backend: try unpack(temp, "b"), runtimes: .tables)
        #expect(failed(report) == ["codebook.hash-match/pair"])
        let check = try #require(report.failures.first)
        let encoderHash = try Sample.hash(Sample.codebook())
        #expect(check.reason.contains("demo-encoder@1.0.0") && check.reason.contains("demo-backend@2.1.0"))
        #expect(check.reason.contains(encoderHash) && check.reason.contains(otherHash))
        #expect(check.wrongSide == .backend)
        #expect(report.pairing == nil)
        do {
            _ = try report.requirePairing()
            Issue.record("expected requirePairing to throw")
        } catch let error as CraftCoreError {
            #expect(error.category == .incompatible)
            #expect(error.message.contains("codebook.hash-match"))
        }
    }

    @Test("a tampered encoder (declared hash ≠ its tensor) is caught and blamed")
    func tamperedEncoder() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try makeEncoderDirectory(at: temp.path("e"))
        let declared = try Sample.hash(Sample.codebook())
        let unpacked = try unpack(temp, "e")
        // Swap the codebook tensor after unpacking, as an attacker editing the files would.
        let swapped = Sample.codebook(scale: 3)
        try writeSafeTensors(unpacked.url(for: "weights/codebook.safetensors"), [("codebook", [Sample.entries, Sample.dimension], swapped)])
        try makeBackendDirectory(at: temp.path("b"), hash: declared)
        // A full check of the files catches the swap too (its sha256 no longer matches).
        expectBundleError(.digestMismatch, entry: "weights/codebook.safetensors") { _ = try BundleArchive.open(directory: unpacked.directory) }
        let encoder = try BundleArchive.open(directory: unpacked.directory, verifyFiles: false)
        let report = checkCompatibility(encoder: encoder, backend: try unpack(temp, "b"), runtimes: .tables)
        #expect(failed(report) == ["encoder.codebook-hash.recomputed/encoder", "codebook.hash-match/pair"])
        let recomputed = try Sample.hash(swapped)
        for check in report.failures {
            #expect(check.wrongSide == .encoder)
            #expect(check.reason.contains(recomputed) && check.reason.contains(declared))
        }
    }

    @Test("shape and metric mismatches fail their own checks")
    func shapeAndMetric() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try makeEncoderDirectory(at: temp.path("e"))
        let hash = try Sample.hash(Sample.codebook())
        try makeBackendDirectory(at: temp.path("b"), hash: hash, entries: 16, metric: .cosine)
        let report = checkCompatibility(encoder: try unpack(temp, "e"), backend: try unpack(temp, "b"), runtimes: .tables)
        #expect(failed(report) == ["codebook.shape/pair", "codebook.metric/pair"])
        #expect(report.failures[0].reason.contains("1×8×4") && report.failures[0].reason.contains("1×16×4"))
        #expect(report.failures[1].reason.contains("l2") && report.failures[1].reason.contains("cosine"))
    }

    @Test("an unknown runtime, a context overflow and a Craft version outside the range fail")
    func runtimeContextVersion() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try makeEncoderDirectory(at: temp.path("e"), tokensPerImage: 80) { $0["requires"] = ["craft": "^2.0"] }
        try makeBackendDirectory(at: temp.path("b"), hash: try Sample.hash(Sample.codebook()), contextLength: 64, runtime: "llama")
        let report = checkCompatibility(encoder: try unpack(temp, "e"), backend: try unpack(temp, "b"), runtimes: .tables)
        #expect(failed(report) == ["runtime.registered/backend", "context.fits/pair", "craft.version/encoder"])
        #expect(report.failures[0].reason.contains("llama") && report.failures[0].reason.contains("table-backend ^1.0 (backend)"))
        #expect(report.failures[1].reason.contains("80") && report.failures[1].reason.contains("64"))
        #expect(report.failures[2].reason.contains("^2.0") && report.failures[2].reason.contains(CraftVersion.current))
    }

    @Test("swapped arguments fail the kind checks")
    func swapped() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try makeEncoderDirectory(at: temp.path("e"))
        try makeBackendDirectory(at: temp.path("b"), hash: try Sample.hash(Sample.codebook()))
        let report = checkCompatibility(encoder: try unpack(temp, "b"), backend: try unpack(temp, "e"), runtimes: .tables)
        #expect(!report.isCompatible)
        #expect(failed(report).contains("bundle.kind/encoder") && failed(report).contains("bundle.kind/backend"))
    }

    @Test("the JSON rendering has stable keys")
    func jsonKeys() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try makeEncoderDirectory(at: temp.path("e"))
        try makeBackendDirectory(at: temp.path("b"), hash: "sha256:" + String(repeating: "d", count: 64))
        let report = checkCompatibility(encoder: try unpack(temp, "e"), backend: try unpack(temp, "b"), runtimes: .tables)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.renderJSON().utf8)) as? [String: Any])
        #expect(json.keys.sorted() == ["backend", "checks", "compatible", "craft_version", "encoder", "schema_version"])
        #expect(json["compatible"] as? Bool == false)
        let encoder = try #require(json["encoder"] as? [String: Any])
        #expect(encoder.keys.sorted() == ["codebook_hash", "name", "runtime", "version"])
        #expect(encoder["runtime"] as? String == "table-encoder@1.0.0")
        let checks = try #require(json["checks"] as? [[String: Any]])
        #expect(checks.count == 13)
        #expect(checks.map { $0["code"] as? String ?? "" } == [
            "manifest.valid", "manifest.valid", "bundle.kind", "bundle.kind", "encoder.codebook-hash.recomputed", "codebook.hash-match",
            "codebook.shape", "codebook.metric", "runtime.registered", "runtime.registered", "context.fits", "craft.version", "craft.version",
        ])
        for check in checks { #expect(Set(check.keys) == ["code", "subject", "passed", "reason", "wrong_side"]) }
        let failure = try #require(checks.first { $0["passed"] as? Bool == false })
        #expect(failure["wrong_side"] as? String == "backend")
    }
}
