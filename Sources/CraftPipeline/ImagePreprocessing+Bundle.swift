// How an encoder bundle asks for its images to be prepared: one reading for every runtime, built in
// or plugin, so the same bundle sees the same pixels whichever runtime encodes them.
import CraftBundles
import CraftFiles
import CraftImaging
import Foundation

extension ImagePreprocessing {
    /// The largest `preprocessor_config.json` read (a Hugging Face image processor config is a few hundred bytes).
    static let maximumConfigurationBytes = 4 << 20

    /// The preprocessing `bundle` declares: its `preprocessor_config.json` (a Hugging Face image
    /// processor config) when the manifest lists one, else SigLIP's with the manifest's
    /// `encoder.mean` and `encoder.std` when given.
    ///
    /// The size is the config's (or SigLIP's 224); a runtime sets it from the model or the manifest.
    ///
    /// - Throws: ``BundleError`` naming the bundle and the file when the listed config is absent,
    ///   too large or not an image processor config.
    public init(bundle: UnpackedBundle) throws {
        let manifest = bundle.manifest
        let path = "preprocessor_config.json"
        guard manifest.file(at: path) != nil else {
            self = .siglip
            if let mean = manifest.encoder?.mean { self.mean = mean.map { Float($0) } }
            if let std = manifest.encoder?.std { self.std = std.map { Float($0) } }
            return
        }
        let url = bundle.url(for: path)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw BundleError(.missingEntry, "\(manifest.reference) lists \"\(path)\" (the image preprocessing) but \(bundle.directory.path) does not hold it; unpack the bundle again", entry: path)
        }
        do {
            self = try JSONDecoder().decode(ImagePreprocessing.self, from: BoundedFile.read(url, limit: Self.maximumConfigurationBytes))
        } catch {
            let reason = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
            throw BundleError(.invalidManifest, "\(path) of \(manifest.reference) is not a Hugging Face image processor config: \(reason)", entry: path, cause: error)
        }
    }
}
