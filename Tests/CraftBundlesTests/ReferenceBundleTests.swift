import CraftCore
import Foundation
import Testing

@testable import CraftBundles

/// Bundles written by Python alone (scripts/make_reference_bundles.py: tarfile, gzip, safetensors,
/// the codebook hash computed from docs/codebook-hash.md) read, pair and run in Swift.
@Suite("Reference bundles written by Python")
struct ReferenceBundleTests {
    static let codebookHash = "sha256:db2922b97aabf6c286711bf91063cdc198ae51b17cd54c69eaee79110f50ef7c"

    func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: "craft", subdirectory: "Fixtures"))
    }

    @Test("they verify, with the digests the script printed")
    func verify() throws {
        let encoder = try BundleArchive.verify(try fixture("py-encoder-1.0.0"))
        let backend = try BundleArchive.verify(try fixture("py-backend-1.0.0"))
        #expect(encoder.digest == "sha256:725a72bae4bf0d7cbf9b3f2d18b380e95f26c63eafb87df55e3ffb51311cd18b")
        #expect(backend.digest == "sha256:63734e41cbe3bd56c6e392cc023645ecd0f62482c944d6fe0e802153060509ee")
        #expect(encoder.manifest.files.map(\.path) == ["features.safetensors", "weights/codebook.safetensors"])
        #expect(encoder.manifest.unknownFields["x-written-by"] == "python")
    }

    @Test("Swift recomputes the Python codebook hash, pairs them and runs both runtimes")
    func pairAndRun() throws {
        let report = checkCompatibility(encoder: try BundleArchive.verify(try fixture("py-encoder-1.0.0")), backend: try BundleArchive.verify(try fixture("py-backend-1.0.0")), runtimes: .tables)
        #expect(report.isCompatible, "\(report.renderText())")
        #expect(try report.requirePairing().codebook.hash == Self.codebookHash)

        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let encoder = try RuntimeRegistry.tables.load(try BundleArchive.unpack(try fixture("py-encoder-1.0.0"), into: temp.path("e")), as: TableEncoder.self)
        let backend = try RuntimeRegistry.tables.load(try BundleArchive.unpack(try fixture("py-backend-1.0.0"), into: temp.path("b")), as: TableBackend.self)
        let expected = [[0, 1, 2, 3], [4, 5, 6, 7], [7, 7, 0, 0]]
        for (image, codes) in expected.enumerated() {
            #expect(try encoder.tokens(forImage: image).codes.scalars == codes.map { Int32($0) })
        }
        #expect(try (0..<3).map { backend.answer(try encoder.tokens(forImage: $0)) } == ["ascending", "descending", "mixed"])
    }

    @Test("re-packing the unpacked Python bundle with Swift keeps its manifest and files")
    func repack() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let unpacked = try BundleArchive.unpack(try fixture("py-encoder-1.0.0"), into: temp.path("e"))
        let packed = try BundleArchive.pack(directory: unpacked.directory, to: temp.path("swift.craft"))
        #expect(packed.manifest == unpacked.manifest)
        #expect(try BundleArchive.verify(packed.url).files == unpacked.manifest.files)
    }
}
