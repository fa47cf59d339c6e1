// Reading the files of an unpacked bundle for the model runtimes: every failure names the bundle and the file.
import CraftBundles
import CraftCore
import Foundation
import SafeTensors
import TensorCore

/// File access for runtimes: checks a file is listed in the manifest and present before reading it.
enum BundleFiles {
    /// The URL of a file the manifest must list, or an error naming the bundle and the file.
    static func require(_ path: String, in bundle: UnpackedBundle, purpose: String) throws -> URL {
        guard bundle.manifest.file(at: path) != nil else {
            throw BundleError(.missingEntry, "\(bundle.manifest.reference) does not list \"\(path)\" (\(purpose)) in its files; add it to the bundle and pack it again", entry: path)
        }
        let url = bundle.url(for: path)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw BundleError(.missingEntry, "\(bundle.manifest.reference) lists \"\(path)\" (\(purpose)) but \(bundle.directory.path) does not hold it; unpack the bundle again", entry: path)
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
        guard let data = try? Data(contentsOf: url),
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
