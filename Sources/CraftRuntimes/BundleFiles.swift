// Reading the files of an unpacked bundle for the model runtimes: every failure names the bundle and the file.
import CraftBundles
import CraftCore
import CraftFiles
import CraftModels
import Foundation
import SafeTensors
import TensorCore

/// File access for runtimes: checks a file is listed in the manifest and present before reading it.
enum BundleFiles {
    /// The file name of an unsharded Hugging Face checkpoint.
    static let weightsFile = "model.safetensors"
    /// The suffix of a sharded checkpoint's index next to where ``weightsFile`` would be.
    static let indexSuffix = ".index.json"

    /// The URL of a file the manifest must list, or an error naming the bundle and the file.
    ///
    /// A checkpoint's weights (`model.safetensors`, also under a folder such as `text/`) may instead be
    /// sharded: when the manifest lists `model.safetensors.index.json` and not the single file, the
    /// index and every shard it names are required (``requireShardedWeights(_:in:purpose:)``) and the
    /// index's URL is returned.
    static func require(_ path: String, in bundle: UnpackedBundle, purpose: String) throws -> URL {
        if path == weightsFile || path.hasSuffix("/" + weightsFile), bundle.manifest.file(at: path) == nil,
            bundle.manifest.file(at: path + indexSuffix) != nil
        {
            return try requireShardedWeights(path + indexSuffix, in: bundle, purpose: purpose)
        }
        guard bundle.manifest.file(at: path) != nil else {
            throw BundleError(.missingEntry, "\(bundle.manifest.reference) does not list \"\(path)\" (\(purpose)) in its files; add it to the bundle and pack it again", entry: path)
        }
        let url = bundle.url(for: path)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw BundleError(.missingEntry, "\(bundle.manifest.reference) lists \"\(path)\" (\(purpose)) but \(bundle.directory.path) does not hold it; unpack the bundle again", entry: path)
        }
        return url
    }

    /// Checks a sharded checkpoint: the index `indexPath` is listed and present, it is a valid
    /// `model.safetensors.index.json`, and every shard it names (beside it) is listed in the manifest,
    /// so that every byte the model reads was verified against its sha256 at unpacking.
    ///
    /// - Returns: the index's URL.
    /// - Throws: ``BundleError`` naming the bundle and the file when the index is malformed, names a
    ///   shard the manifest does not list, or a tensor is missing from its shard.
    static func requireShardedWeights(_ indexPath: String, in bundle: UnpackedBundle, purpose: String) throws -> URL {
        let manifest = bundle.manifest
        guard manifest.file(at: indexPath) != nil else {
            throw BundleError(.missingEntry, "\(manifest.reference) does not list \"\(indexPath)\" (\(purpose)) in its files; add it to the bundle and pack it again", entry: indexPath)
        }
        let url = bundle.url(for: indexPath)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw BundleError(.missingEntry, "\(manifest.reference) lists \"\(indexPath)\" (\(purpose)) but \(bundle.directory.path) does not hold it; unpack the bundle again", entry: indexPath)
        }
        let folder = indexPath.contains("/") ? String(indexPath[..<(indexPath.lastIndex(of: "/") ?? indexPath.endIndex)]) + "/" : ""
        let weightMap: [String: String]
        do {
            weightMap = try ShardedSafeTensors(indexAt: url).weightMap
        } catch {
            // Say which shard is unlisted when that is the cause (it then is absent from the unpacked bundle).
            if let object = (try? JSONSerialization.jsonObject(with: BoundedFile.read(url, limit: ModelFileLimits.maximumConfigurationBytes))) as? [String: Any],
                let map = object["weight_map"] as? [String: Any]
            {
                let shards = Set(map.values.compactMap { $0 as? String }).sorted()
                if let unlisted = shards.first(where: { manifest.file(at: folder + $0) == nil }) {
                    throw BundleError(.missingEntry, "\(indexPath) of \(manifest.reference) names the shard \"\(unlisted)\", which the bundle does not list in its files; add every shard to the bundle and pack it again", entry: folder + unlisted)
                }
            }
            throw BundleError(.invalidManifest, "the sharded checkpoint \(indexPath) of \(manifest.reference) (\(purpose)) cannot be read: \(describe(error))", entry: indexPath, cause: error)
        }
        for shard in Set(weightMap.values).sorted() where manifest.file(at: folder + shard) == nil {
            throw BundleError(.missingEntry, "\(indexPath) of \(manifest.reference) names the shard \"\(shard)\", which the bundle does not list in its files; add every shard to the bundle and pack it again", entry: folder + shard)
        }
        return url
    }

    /// Reads a float tensor `name` from the safetensors file `path` of the bundle.
    static func tensor(_ name: String, file path: String, in bundle: UnpackedBundle, purpose: String) throws -> Tensor {
        let url = try require(path, in: bundle, purpose: purpose)
        do {
            let file = try SafeTensorsFile(contentsOf: url)
            let values = try file.floats(name)
            let shape = try file.info(name).shape
            return Tensor(values, shape: shape)
        } catch {
            throw BundleError(.invalidManifest, "cannot read tensor \"\(name)\" (\(purpose)) from \(path) of \(bundle.manifest.reference): \(describe(error))", entry: path, cause: error)
        }
    }

    /// Whether the safetensors file at `path` of the bundle holds a tensor `name`.
    static func contains(_ name: String, file path: String, in bundle: UnpackedBundle) -> Bool {
        guard let file = try? SafeTensorsFile(contentsOf: bundle.url(for: path)) else { return false }
        return (try? file.info(name)) != nil
    }

    /// Reads a JSON object from a listed file.
    static func jsonObject(_ path: String, in bundle: UnpackedBundle, purpose: String) throws -> [String: Any] {
        let url = try require(path, in: bundle, purpose: purpose)
        guard let data = try? BoundedFile.read(url, limit: ModelFileLimits.maximumConfigurationBytes),
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else {
            throw BundleError(.invalidManifest, "\(path) of \(bundle.manifest.reference) is not a JSON object (\(purpose)); use the model's original file", entry: path)
        }
        return object
    }

    /// One readable sentence for any error.
    static func describe(_ error: any Error) -> String {
        (error as? LocalizedError)?.errorDescription ?? String(describing: error)
    }
}
