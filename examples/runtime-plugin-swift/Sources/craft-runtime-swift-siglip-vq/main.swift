// A runtime plugin written in Swift with CraftPluginKit: it serves the runtime `swift-siglip-vq`,
// the miniature's SigLIP-VQ encoder, from its own process. The plugin is only its model: the kit
// speaks craft.runtime/v1 (docs/runtime-protocol.md). Here the model is Craft's own SigLIP-VQ
// runtime, so its codes equal the built-in runtime's; a plugin author puts theirs in its place.
import CraftBundles
import CraftModels
import CraftPluginKit
import CraftRuntimes
import Foundation
import TensorCore

/// The bundle's SigLIP tower and codebook, run by CraftModels.
struct SiglipVQModel: PluginEncoderModel {
    let encoder: SiglipVQEncoder

    init(directory: URL) throws {
        // The bundle Craft unpacked and verified; read it as a siglip-vq bundle.
        encoder = try SiglipVQRuntime.load(try BundleArchive.open(directory: directory, verifyFiles: false))
    }

    var grid: (rows: Int, columns: Int) { encoder.grid }

    func encode(pixels: [Float], shape: [Int]) throws -> (codes: [Int32], residualNorms: [Float]) {
        let tokens = try encoder.encode(Tensor(pixels, shape: shape))
        return (tokens.flatMap(\.codes.scalars), tokens.flatMap(\.residualNorms))
    }
}

var server = PluginServer(plugin: "swift-siglip-vq", version: "1.0.0")
server.encoder("swift-siglip-vq", version: "1.0.0", summary: "SigLIP-VQ encoder served by a Swift plugin (CraftPluginKit)") { request in
    try SiglipVQModel(directory: request.directory)
}
server.run()
