// The committed miniature bundles in registry/ (made by `craft-experiment all`) load, pair and answer,
// and the CRAFT-adapted encoder beats the base encoder on shifted-domain test images with both
// backends (B never trained with it). Margins are below the measured ones (docs/experiment.md).
import CraftBundles
import CraftCore
import CraftExperiment
import CraftRegistry
import Foundation
import RuntimeTestSupport
import Testing

@Suite struct EmbeddedMiniatureTests {
    /// Unpacks `reference` from the embedded registry into `scratch`.
    func unpacked(_ reference: String, _ scratch: Scratch) throws -> URL {
        let resolved = try Registry(root: repositoryRoot.appendingPathComponent("registry")).resolve(BundleReference(parsing: reference))
        let directory = scratch.path(reference.replacingOccurrences(of: "@", with: "-"))
        _ = try BundleArchive.unpack(resolved.file, into: directory)
        return directory
    }

    @Test func adaptedEncoderBeatsBaseOnShiftedImagesWithBothBackends() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        var settings = ExperimentSettings.standard
        settings.testImages = 20
        let data = try ExperimentData(directory: repositoryRoot.appendingPathComponent("examples/data/digits"), settings: settings)
        let strong = try data.dataset(.strong, "test")
        let pixels = try PixelCache(datasets: [strong], preprocessing: data.preprocessing)
        let base = try unpacked("digits-siglip-vq@1.0.0", scratch)
        let adapted = try unpacked("digits-siglip-vq@1.1.0", scratch)
        for backend in ["digits-llama@1.0.0", "digits-gpt2@1.0.0"] {
            let directory = try unpacked(backend, scratch)
            let before = try LoadedPair(encoder: base, backend: directory).score(strong, pixels: pixels)
            let after = try LoadedPair(encoder: adapted, backend: directory).score(strong, pixels: pixels)
            #expect(before.total == 40)
            // Measured (craft eval --limit 40): A 22.5 % -> 75.0 %, B 22.5 % -> 75.0 %; asserted: +30 points.
            #expect(after.accuracy >= before.accuracy + 0.30, "\(backend): base \(before.accuracy), CRAFT \(after.accuracy)")
        }
    }

    @Test func mismatchedPairIsRefusedBeforeLoading() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let adapted = try unpacked("digits-siglip-vq@1.1.0", scratch)
        let other = try unpacked("digits-answers", scratch)
        #expect(throws: ExperimentError.self) { _ = try LoadedPair(encoder: adapted, backend: other) }
    }
}
