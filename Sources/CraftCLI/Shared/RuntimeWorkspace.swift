import CraftBundles
import CraftCore
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

    init() throws {
        var opener = try BundleOpener(prefix: Self.scratchPrefix)
        opener.announce = { label, bytes in
            let line = ProgressLine(label, bytes: bytes)
            return { line.finish() }
        }
        self.opener = opener
    }

    func remove() { opener.remove() }

    /// Opens the bundle an argument names: a bundle directory, a .craft file or a registry REF (see
    /// ``BundleOpener/open(_:role:registry:)``: packed bundles are read once, and what is unpacked is
    /// what was checked).
    func unpack(_ argument: String, registry: Registry, as role: String) throws -> UnpackedBundle {
        try open(argument, registry: registry, as: role).bundle
    }

    /// Opens the bundle an argument names, refusing it unless a trusted key signed it when
    /// `requireSignature` (a bundle directory carries no signature, so it is refused then).
    func open(
        _ argument: String, registry: Registry, as role: String, includePrerelease: Bool = false,
        requireSignature: Bool = false
    ) throws -> OpenedBundle {
        let opened = try opener.open(
            BundleSource(argument: argument), role: role, registry: registry, includePrerelease: includePrerelease)
        if requireSignature { try (opened.signature ?? .unsigned).requireTrusted(source: argument) }
        return opened
    }

    /// Reads an image argument as RGB; a missing file is exit 2.
    static func loadImage(_ path: String) throws -> RGBImage {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandError(.notFound, "the image \(path) does not exist; pass a PNG or JPEG file")
        }
        do {
            return try ImageInput.rgbImage(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
            throw CommandError(.other, "cannot read the image \(path): \(reason)")
        }
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
        guard let pair = report.pairing else {
            Output.line((json ? try report.renderJSON() : report.renderText()).trimmingCharacters(in: .newlines))
            let first = report.failures.first.map { " (\($0.code): \($0.reason))" } ?? ""
            throw CommandError(.incompatible, "\(encoderBundle.manifest.reference) and \(backendBundle.manifest.reference) cannot be paired\(first); see the report above")
        }
        return (pair, encoderBundle, backendBundle)
    }
}
