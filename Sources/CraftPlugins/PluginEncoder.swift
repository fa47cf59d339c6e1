// A vision encoder served by an out-of-process plugin: Craft preprocesses, the plugin encodes, and
// Craft checks every code and shape and builds the vectors from its own verified codebook.
import CraftBundles
import CraftCore
import CraftImaging
import CraftPipeline
import Foundation
import TensorCore

/// A ``VisionEncoder`` whose `encode` runs in a runtime plugin (docs/runtime-protocol.md).
///
/// Craft keeps what the compatibility checker and the pipeline rely on: the codebook is read from
/// the bundle and its hash recomputed by Craft (never taken from the plugin); images are
/// preprocessed by Craft as the manifest says; every code the plugin returns is checked to be inside
/// the codebook and every shape against the grid, and the tokens' vectors are the codebook's own.
public struct PluginEncoder: VisionEncoder, @unchecked Sendable {
    let connection: PluginConnection
    let space: Codebook
    let preprocessing: ImagePreprocessing
    let reference: String
    public let grid: (rows: Int, columns: Int)
    public let imageSize: (height: Int, width: Int)
    /// The plugin process, stopped when the last copy of this encoder goes away.
    let lifetime: PluginLifetime

    public var codebook: any CodebookSpace { space }

    /// Loads `bundle` in the plugin behind `connection` (already past its handshake).
    init(bundle: UnpackedBundle, connection: PluginConnection, runtime: PluginOffer, manifestObject: Any) throws {
        let manifest = bundle.manifest
        reference = manifest.reference
        self.connection = connection
        lifetime = PluginLifetime(connection)
        // The codebook, read and hashed by Craft before the plugin sees the bundle.
        space = try bundle.verifiedCodebook ?? CodebookVerification.verifiedCodebook(manifest, in: bundle.directory)
        guard let specifics = manifest.encoder else {
            throw BundleError(.invalidManifest, "\(manifest.reference) has no encoder section (image_size, tokens_per_image); a plugin encoder's bundle needs one", entry: "encoder")
        }
        // The bundle's own preprocessing, read as the built-in runtimes read it; the manifest gives the size.
        var recipe = try ImagePreprocessing(bundle: bundle)
        recipe.width = specifics.imageSize
        recipe.height = specifics.imageSize
        preprocessing = recipe
        imageSize = (specifics.imageSize, specifics.imageSize)

        let (loaded, _) = try connection.request(
            ["type": "load", "runtime": runtime.id, "kind": "encoder", "directory": bundle.directory.path, "manifest": manifestObject],
            expecting: "loaded", timeout: connection.timeouts.load, doing: "loading \(manifest.reference)")
        guard let gridValues = loaded["grid"] as? [Int], gridValues.count == 2, gridValues[0] > 0, gridValues[1] > 0,
              gridValues[0] * gridValues[1] == specifics.tokensPerImage else {
            connection.shutdown()
            throw PluginError(.invalidAnswer, "the runtime plugin \(connection.name) loaded \(manifest.reference) with a grid of \(loaded["grid"].map { "\($0)" } ?? "no size"), but the bundle declares \(specifics.tokensPerImage) tokens per image; a loaded encoder answers {\"grid\": [rows, columns]}")
        }
        grid = (gridValues[0], gridValues[1])
    }

    public func preprocess(_ image: RGBImage) throws -> Tensor {
        let converted = try Image(width: image.width, height: image.height, colorModel: .rgb, bytes: image.pixels)
        let pixels = try converted.pixelValues(preprocessing)
        return Tensor(pixels.values, shape: pixels.shape)
    }

    public func encode(_ pixels: Tensor) throws -> [VisualTokens] {
        guard pixels.rank == 4, pixels.shape[1] == 3, pixels.shape[2] == imageSize.height, pixels.shape[3] == imageSize.width else {
            throw CraftCoreError(.shapeMismatch, "\(reference) encodes pixels shaped [batch, 3, \(imageSize.height), \(imageSize.width)], not \(pixels.shape)")
        }
        let batch = pixels.shape[0], count = grid.rows * grid.columns, depth = space.depth
        let (_, tensors) = try connection.request(
            ["type": "encode"], tensors: [PluginTensor(name: "pixels", floats: pixels.scalars, shape: pixels.shape)],
            expecting: "encoded", timeout: connection.timeouts.call, doing: "encoding \(batch) image\(batch == 1 ? "" : "s") for \(reference)")
        guard let codes = tensors.first(where: { $0.name == "codes" }), codes.dataType == .int32, codes.shape == [batch, count, depth] else {
            throw invalid("codes shaped \(tensors.first { $0.name == "codes" }.map { "\($0.shape) (\($0.dataType.rawValue))" } ?? "(missing)"); they must be int32 [\(batch), \(count), \(depth)] (batch, tokens, codebook depth)")
        }
        guard let norms = tensors.first(where: { $0.name == "residual_norms" }), norms.dataType == .float32, norms.shape == [batch, count] else {
            throw invalid("residual norms shaped \(tensors.first { $0.name == "residual_norms" }.map { "\($0.shape) (\($0.dataType.rawValue))" } ?? "(missing)"); they must be float32 [\(batch), \(count)]")
        }
        let codeValues = codes.integers, normValues = norms.floats
        if let index = codeValues.firstIndex(where: { $0 < 0 || Int($0) >= space.entries }) {
            throw invalid("the code \(codeValues[index]) at image \(index / (count * depth)), token \(index / depth % count), outside the codebook's \(space.entries) entries")
        }
        if let index = normValues.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            throw invalid("the residual norm \(normValues[index]) at image \(index / count), token \(index % count), which is not a finite non-negative number")
        }
        let positions = (0..<count).map { GridPosition(row: $0 / grid.columns, column: $0 % grid.columns) }
        return try (0..<batch).map { image in
            let imageCodes = Array(codeValues[(image * count * depth)..<((image + 1) * count * depth)])
            let indices = IndexTensor(imageCodes, shape: [count, depth])
            return try VisualTokens(
                codebookHash: space.hash, grid: grid, codes: indices, positions: positions,
                residualNorms: Array(normValues[(image * count)..<((image + 1) * count)]),
                features: try space.embed(indices))
        }
    }

    /// The plugin returned something Craft refuses: stop it and say what.
    private func invalid(_ what: String) -> PluginError {
        connection.process.failure(.invalidAnswer, "the runtime plugin \(connection.name) returned \(what) for \(reference); it was stopped")
    }
}

/// Stops a plugin's process when the last model using it is released.
final class PluginLifetime: @unchecked Sendable {
    let connection: PluginConnection
    init(_ connection: PluginConnection) { self.connection = connection }
    deinit { connection.shutdown() }
}
