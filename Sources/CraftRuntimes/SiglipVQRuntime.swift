// The `siglip-vq` runtime: a Hugging Face SigLIP vision tower in an encoder bundle, quantized into the
// bundle's codebook (CraftModels' SiglipVQEncoder). Layout: docs/runtimes.md.
import CraftBundles
import CraftCore
import CraftFiles
import CraftImaging
import CraftModels
import Foundation

/// Loads `siglip-vq` encoder bundles.
///
/// Files: `config.json` and `model.safetensors` (a `SiglipVisionModel`), the codebook tensor named by
/// `codebook.tensor`, and optionally `preprocessor_config.json`. The quantization layer is
/// `encoder.quantization_layer`, else `config.quantization_layer`, else the final (post-layernorm) output.
/// `config.bypass_quantizer: true` (an encoder trained with the continuous fine-tuning baseline) makes
/// the tokens carry the continuous features `z_e` instead of the code vectors
/// (``SiglipVQEncoder/bypassesQuantizer``).
public enum SiglipVQRuntime {
    /// Builds the live encoder from an unpacked encoder bundle.
    ///
    /// - Throws: ``BundleError`` naming the bundle and the file when a file is missing, a tensor has the
    ///   wrong shape, or the codebook tensor does not hash to the declared hash.
    public static func load(_ bundle: UnpackedBundle) throws -> SiglipVQEncoder {
        let manifest = bundle.manifest
        guard manifest.kind == .encoder else {
            throw BundleError(.runtimeFailed, "\(manifest.reference) is a backend bundle; the siglip-vq runtime loads encoder bundles")
        }
        _ = try BundleFiles.require("config.json", in: bundle, purpose: "the SigLIP vision config")
        _ = try BundleFiles.require("model.safetensors", in: bundle, purpose: "the SigLIP vision weights")
        guard let reference = manifest.codebook.tensor else {
            throw BundleError(.invalidManifest, "\(manifest.reference) has no codebook.tensor {\"file\", \"name\"}; a siglip-vq encoder carries its codebook", entry: "codebook.tensor")
        }
        // The codebook hashed when the bundle was opened, else read and hashed here.
        let codebook = try bundle.verifiedCodebook ?? loadCodebook(reference, of: bundle)
        let tower: SiglipVisionModel
        do {
            tower = try SiglipVisionModel(directory: bundle.directory)
        } catch {
            throw BundleError(.runtimeFailed, "cannot load the SigLIP tower from config.json and model.safetensors of \(manifest.reference): \(BundleFiles.describe(error))", entry: "model.safetensors", cause: error)
        }
        let preprocessing = try ImagePreprocessing(bundle: bundle)
        let layer = manifest.encoder?.quantizationLayer ?? manifest.config?["quantization_layer"]?.integerValue.map { Int($0) }
        let bypassesQuantizer = try bypassesQuantizer(manifest)
        let encoder: SiglipVQEncoder
        do {
            encoder = try SiglipVQEncoder(tower: tower, codebook: codebook, quantizeAfterLayer: layer, preprocessing: preprocessing,
                                          bypassesQuantizer: bypassesQuantizer)
        } catch {
            throw BundleError(.invalidManifest, "\(manifest.reference) cannot quantize its SigLIP tower (config.json) with its codebook (\(reference.file)): \(error.message)", entry: "config.json", cause: error)
        }
        if let specifics = manifest.encoder {
            let tokens = encoder.grid.rows * encoder.grid.columns
            guard specifics.tokensPerImage == tokens else {
                throw BundleError(.invalidManifest, "\(manifest.reference) declares encoder.tokens_per_image \(specifics.tokensPerImage) but its tower (config.json) gives a \(encoder.grid.rows)x\(encoder.grid.columns) grid = \(tokens) tokens; fix craft.json", entry: "encoder.tokens_per_image")
            }
            guard specifics.imageSize == encoder.imageSize.width else {
                throw BundleError(.invalidManifest, "\(manifest.reference) declares encoder.image_size \(specifics.imageSize) but its tower (config.json) takes \(encoder.imageSize.width)-pixel images; fix craft.json", entry: "encoder.image_size")
            }
        }
        return encoder
    }

    /// Reads and hashes the codebook tensor of a bundle that was not opened by a `BundleOpener`
    /// (`[K, D]`, `[depth, K, D]`, `[depth·K, D]`, or one `[K, D]` shared by every level).
    static func loadCodebook(_ reference: TensorReference, of bundle: UnpackedBundle) throws -> Codebook {
        let manifest = bundle.manifest
        let codebookTensor = try BundleFiles.tensor(reference.name, file: reference.file, in: bundle, purpose: "the codebook")
        let descriptor = manifest.codebook
        let expected = descriptor.depth == 1 ? [descriptor.entries, descriptor.dimension] : [descriptor.depth, descriptor.entries, descriptor.dimension]
        let shared = descriptor.depth > 1 && codebookTensor.shape == [descriptor.entries, descriptor.dimension]
        guard shared || codebookTensor.shape == expected || codebookTensor.shape == [descriptor.depth * descriptor.entries, descriptor.dimension]
            || codebookTensor.shape == [descriptor.depth, descriptor.entries, descriptor.dimension]
        else {
            throw BundleError(.invalidManifest, "the codebook tensor \"\(reference.name)\" in \(reference.file) of \(manifest.reference) has shape \(codebookTensor.shape) but the manifest declares \(expected) (entries \(descriptor.entries), dim \(descriptor.dimension), depth \(descriptor.depth))", entry: reference.file)
        }
        let codebook: Codebook
        do {
            // A [K, D] tensor with depth > 1 is one codebook shared by every level.
            let values = shared ? Codebook.sharedLevels(codebookTensor.scalars, depth: descriptor.depth) : codebookTensor.scalars
            codebook = try Codebook(values: values, entries: descriptor.entries, dimension: descriptor.dimension,
                                    depth: descriptor.depth, metric: descriptor.metric)
        } catch {
            throw BundleError(.invalidManifest, "the codebook in \(reference.file) of \(manifest.reference) is not usable: \(BundleFiles.describe(error))", entry: reference.file, cause: error)
        }
        guard codebook.hash == descriptor.hash else {
            throw BundleError(.codebookHashMismatch, "\(manifest.reference) declares codebook hash \(descriptor.hash) but its tensor in \(reference.file) hashes to \(codebook.hash); the bundle was altered, rebuild it", entry: reference.file)
        }
        return codebook
    }

    /// `config.bypass_quantizer`: absent means `false`; anything but a JSON Boolean is refused.
    static func bypassesQuantizer(_ manifest: BundleManifest) throws -> Bool {
        guard let value = manifest.config?.objectValue?["bypass_quantizer"], value != .null else { return false }
        guard let flag = value.boolValue else {
            throw BundleError(.invalidManifest, "\(manifest.reference) has config.bypass_quantizer that is not true or false; write a JSON Boolean", entry: "config.bypass_quantizer")
        }
        return flag
    }
}
