import CraftBundles
import CraftCore
import CraftImaging
import CraftRegistry
import CraftRuntimes
import Foundation

/// Where `craft run`, `craft eval` and `craft tokens` open bundles: a ``BundleOpener`` whose scratch
/// directory `$TMPDIR/craft-run-PID-UUID` is removed afterwards, and on SIGINT, SIGTERM or SIGHUP
/// (``ScratchFiles``), with a progress line for large bundles.
struct RuntimeWorkspace {
    /// The prefix of the workspace's scratch name.
    static let scratchPrefix = "craft-run"

    let opener: BundleOpener
    /// What every bundle opened here must satisfy (`--include-prerelease`, `--require-signature`).
    let policy: OpeningPolicy

    init(policy: OpeningPolicy = OpeningPolicy()) throws {
        self.policy = policy
        var opener = try BundleOpener(prefix: Self.scratchPrefix)
        opener.announce = { label, bytes in
            let line = ProgressLine(label, bytes: bytes)
            return { line.finish() }
        }
        opener.oci.progress = TransferProgress.reporter("downloading")
        self.opener = opener
    }

    func remove() { opener.remove() }

    /// Opens the bundle an argument names: a bundle directory, a .craft file or a registry REF (see
    /// ``BundleOpener/open(_:role:registry:)``: packed bundles are read once, and what is unpacked is
    /// what was checked).
    func unpack(_ argument: String, registry: Registry, as role: String) throws -> UnpackedBundle {
        try open(argument, registry: registry, as: role).bundle
    }

    /// Opens the bundle an argument names, held to the workspace's ``policy`` (a bundle directory
    /// carries no signature, so it is refused when a signature is required).
    func open(_ argument: String, registry: Registry, as role: String) throws -> OpenedBundle {
        try opener.open(BundleSource(argument: argument), role: role, registry: registry, policy: policy)
    }

    /// Reads an image argument as RGB; a missing file is exit 2, a file that is not a readable PNG or
    /// JPEG exit 64 (``imageError(_:path:context:)``).
    static func loadImage(_ path: String) throws -> RGBImage {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandError(.notFound, "the image \(path) does not exist; pass a PNG or JPEG file")
        }
        do {
            return try ImageInput.rgbImage(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw imageError(error, path: path)
        }
    }

    /// An image that cannot be read, categorised the same way everywhere (docs/cli.md, exit codes):
    /// a missing file is not found (2); bytes that are not a PNG or JPEG Craft decodes, or are too
    /// large, are the caller's input to fix (64); an operating-system failure is other (1).
    /// `context` prefixes the sentence (a dataset's file and line).
    static func imageError(_ error: any Error, path: String, context: String? = nil) -> CommandError {
        let reason = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
        let category: ErrorCategory
        switch (error as? ImageError)?.code {
        case ImageError.Code.notFound?: category = .notFound
        case ImageError.Code.io?, nil: category = .other
        default: category = .usage
        }
        let prefix = context.map { "\($0): " } ?? ""
        return CommandError(category, "\(prefix)cannot read the image \(path): \(reason)")
    }
}

extension RuntimeWorkspace {
    /// Verifies and unpacks the encoder and backend arguments, and runs the compatibility checker.
    /// On failure prints the report (text, or JSON when `json`) and throws exit status 3.
    func checkedPair(encoder: String, backend: String, registry: Registry, runtimes: RuntimeRegistry, json: Bool) throws
        -> (pair: CheckedPair, encoder: UnpackedBundle, backend: UnpackedBundle)
    {
        let encoderBundle = try unpack(encoder, registry: registry, as: "encoder")
        let backendBundle = try unpack(backend, registry: registry, as: "backend")
        let report = checkCompatibility(encoder: encoderBundle, backend: backendBundle, runtimes: runtimes)
        QuantizerBypass.warn(encoderBundle.manifest)
        guard let pair = report.pairing else {
            Output.line((json ? try report.renderJSON() : report.renderText()).trimmingCharacters(in: .newlines))
            let first = report.failures.first.map { " (\($0.code): \($0.reason))" } ?? ""
            throw CommandError(.incompatible, "\(encoderBundle.manifest.reference) and \(backendBundle.manifest.reference) cannot be paired\(first); see the report above")
        }
        return (pair, encoderBundle, backendBundle)
    }

    /// Steps 1 to 4 of `craft run` (docs/architecture.md): resolves and opens the encoder and
    /// backend arguments (hashing the codebook once), checks the pair (``checkedPair(encoder:backend:registry:runtimes:json:)``)
    /// and loads the ``Pipeline`` with `runtimes`.
    func pipeline(encoder: String, backend: String, registry: Registry, runtimes: RuntimeRegistry, json: Bool) throws -> Pipeline {
        let (pair, encoderBundle, backendBundle) = try checkedPair(
            encoder: encoder, backend: backend, registry: registry, runtimes: runtimes, json: json)
        return try Pipeline(pair: pair, encoder: encoderBundle, backend: backendBundle, runtimes: runtimes)
    }
}

/// What an image argument (`--image`, a dataset's `"image"`) names for an encoder: a picture file,
/// or, for an encoder whose images are the rows of its feature table (``IndexedImageEncoder``, such
/// as `table-encoder`), an image index.
enum ImageArgument {
    /// A PNG or JPEG file.
    case file(String)
    /// Image `index` of the encoder's table.
    case index(Int, of: any IndexedImageEncoder)

    /// Reads `text` for `encoder`.
    ///
    /// - Parameters:
    ///   - field: How errors name the argument (`--image`, `DATA line 3: "image"`).
    ///   - reference: The encoder bundle's `NAME@VERSION`, for errors.
    /// - Throws: ``CommandError`` (usage, exit 64) when the encoder takes indices and `text` is not one.
    init(_ text: String, for encoder: any VisionEncoder, reference: String, field: String) throws {
        guard let indexed = encoder as? any IndexedImageEncoder else {
            self = .file(text)
            return
        }
        self = .index(try Self.index(text, of: indexed, reference: reference, field: field), of: indexed)
    }

    /// Reads `text` as an image index of `encoder`'s table.
    ///
    /// - Throws: ``CommandError`` (usage, exit 64) when `text` is not an integer.
    static func index(_ text: String, of encoder: any IndexedImageEncoder, reference: String, field: String) throws -> Int {
        guard let index = Int(text) else {
            throw CommandError(.usage, "\(field) must be an image index 0..<\(encoder.imageCount), not \(text): the images of \(reference) are the rows of its feature table")
        }
        return index
    }
}

extension Pipeline {
    /// Warns on stderr when `keepRatio` prunes with uniform code frequencies (the encoder bundle
    /// carries no ``Pipeline/codeFrequenciesFile``).
    func warnIfPruningUniformly(keepRatio: Double) {
        guard keepRatio < 1, prunesWithUniformFrequencies else { return }
        Output.warning("\(pair.encoder.reference) carries no \(Pipeline.codeFrequenciesFile); pruning with uniform code frequencies (tokens rank by residual norm and isolation)")
    }
}

/// An encoder whose bundle says `config.bypass_quantizer` (the continuous fine-tuning baseline,
/// `craft train --method continuous`) hands the backend its continuous features, not codebook
/// vectors: the codebook hash still matches, so the checker passes, but the backend never saw such
/// inputs in training. `pair`, `run`, `eval`, `tokens`' callers and `serve` warn about it.
enum QuantizerBypass {
    static func warn(_ manifest: BundleManifest) {
        guard manifest.config?["bypass_quantizer"]?.boolValue == true else { return }
        Output.warning("\(manifest.reference) bypasses its quantizer (config.bypass_quantizer: a continuous fine-tuning baseline); its tokens are not codebook vectors, so a backend sharing the codebook hash still reads inputs it was never trained on")
    }
}
