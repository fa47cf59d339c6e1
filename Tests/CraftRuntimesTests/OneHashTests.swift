import CraftBundles
import CraftCore
import CraftRegistry
import Foundation
import RuntimeTestSupport
import Testing

@testable import CraftRuntimes

@Suite("One codebook hash per run")
struct OneHashTests {
    @Test("open, check, load and answer hash the encoder's codebook once; the runtime reuses the opener's codebook")
    func openCheckLoadAnswerHashesOnce() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try TinyBundles.packedPair(in: scratch)
        let image = try ImageInput.rgbImage(contentsOf: URL(fileURLWithPath: inputs.image))
        let opener = try BundleOpener(prefix: "craft-one-hash-test")
        defer { opener.remove() }

        let count = CodebookHash.Count()
        let pipeline = try CodebookHash.$computations.withValue(count) {
            let encoder = try opener.open(.file(URL(fileURLWithPath: inputs.encoder)), role: "encoder", registry: nil)
            let backend = try opener.open(.file(URL(fileURLWithPath: inputs.backend)), role: "backend", registry: nil)
            let pair = try checkCompatibility(encoder: encoder.bundle, backend: backend.bundle, runtimes: .craftDefault).requirePairing()
            #expect(pair.codebook == encoder.codebook)
            let pipeline = try Pipeline(pair: pair, encoder: encoder.bundle, backend: backend.bundle)
            _ = try pipeline.measuredAnswer(image: image, prompt: "what is this ?", options: GenerationOptions(maximumNewTokens: 2))
            return pipeline
        }
        #expect(count.value == 1)
        #expect(pipeline.encoder.codebook.hash == pipeline.pair.codebook.hash)
    }

    @Test("a bundle not opened by a BundleOpener has no verified codebook, and loading it hashes its tensor")
    func unopenedBundleHashesOnLoad() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try TinyBundles.encoderDirectory(at: scratch.path("enc"))
        let unpacked = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        #expect(unpacked.verifiedCodebook == nil)
        let count = CodebookHash.Count()
        _ = try CodebookHash.$computations.withValue(count) { try RuntimeRegistry.craftDefault.loadEncoder(unpacked) }
        #expect(count.value == 1)
    }

    @Test("a manifest edited after opening to declare another codebook drops the verified codebook")
    func editedManifestDropsVerifiedCodebook() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try TinyBundles.packedPair(in: scratch)
        let opener = try BundleOpener(prefix: "craft-one-hash-test")
        defer { opener.remove() }
        var encoder = try opener.open(.file(URL(fileURLWithPath: inputs.encoder)), role: "encoder", registry: nil).bundle
        #expect(encoder.verifiedCodebook?.hash == encoder.manifest.codebook.hash)
        encoder.manifest.codebook.hash = try TinyBundles.hash(TinyBundles.codebook(seed: 3))
        #expect(encoder.verifiedCodebook == nil)
        let error = try #require(throws: BundleError.self) { try RuntimeRegistry.craftDefault.loadEncoder(encoder) }
        #expect(error.code == .codebookHashMismatch)
    }
}
