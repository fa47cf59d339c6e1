// Building compatibility candidates from bundles and checking pairs (docs/compatibility.md).
import CraftCore
import Foundation

extension BundleManifest {
    /// The checker's view of this manifest, with what is known about its recomputed codebook hash.
    ///
    /// Use ``CompatibilityCandidate`` from an ``UnpackedBundle`` or ``VerifiedBundle`` (which recompute
    /// the hash) to check a pairing; a manifest alone cannot prove its encoder's hash.
    public func compatibilityCandidate(recomputed: RecomputedHash = .notRecomputed) -> CompatibilityCandidate {
        let requirement = requires?.craft.map { range in
            CraftRequirement(range: range.text, admitsCurrentVersion: SemanticVersion(CraftVersion.current).map { range.contains($0) } ?? false)
        }
        return CompatibilityCandidate(
            name: name, version: version.description, declaredRole: kind == .encoder ? .encoder : .backend,
            declaredCodebook: codebook.identity, recomputedCodebook: recomputed, runtimeID: runtime.id,
            runtimeVersion: runtime.version.description, tokensPerImage: encoder?.tokensPerImage,
            contextLength: backend?.contextLength, craftRequirement: requirement, manifestProblems: problems().map(\.description))
    }
}

extension UnpackedBundle {
    /// The checker's view of this bundle, with the codebook hash recomputed from its tensor when the
    /// manifest names one (always for encoders): the ``verifiedCodebook`` hashed when the bundle was
    /// opened, else the tensor read and hashed now.
    public func compatibilityCandidate() -> CompatibilityCandidate {
        guard manifest.codebook.tensor != nil else {
            return manifest.compatibilityCandidate(recomputed: .notRecomputed)
        }
        if let verifiedCodebook {
            return manifest.compatibilityCandidate(recomputed: .recomputed(verifiedCodebook.identity))
        }
        do {
            return manifest.compatibilityCandidate(recomputed: .recomputed(try CodebookVerification.recompute(manifest, in: directory)))
        } catch {
            let reason = (error as? BundleError)?.message ?? String(describing: error)
            return manifest.compatibilityCandidate(recomputed: .failed(reason))
        }
    }
}

extension VerifiedBundle {
    /// The checker's view of this bundle; for a manifest naming a codebook tensor, the bundle is read
    /// again and only that file is extracted (to a temporary directory, removed afterwards) to recompute
    /// the hash.
    public func compatibilityCandidate(limits: BundleLimits = .default) -> CompatibilityCandidate {
        guard let tensor = manifest.codebook.tensor else {
            return manifest.compatibilityCandidate(recomputed: .notRecomputed)
        }
        do {
            // The file is read again: it must still be the one verified (same digest).
            let (extracted, scratch) = try BundleArchive.extractChecked(url, paths: [tensor.file], limits: limits, expectedDigest: digest)
            defer { ScratchFiles.remove(scratch) }
            return manifest.compatibilityCandidate(recomputed: .recomputed(try CodebookVerification.recompute(extracted.manifest, in: extracted.directory)))
        } catch {
            let reason = (error as? BundleError)?.message ?? String(describing: error)
            return manifest.compatibilityCandidate(recomputed: .failed(reason))
        }
    }
}

/// Checks that an unpacked encoder and an unpacked backend can be paired.
///
/// The encoder's codebook hash is recomputed from its tensor; every check of docs/compatibility.md runs.
/// Wire models only from ``CompatibilityReport/pairing`` (or `requirePairing()`, which throws an
/// `incompatible` error, exit code 3).
public func checkCompatibility(encoder: UnpackedBundle, backend: UnpackedBundle, runtimes: RuntimeRegistry) -> CompatibilityReport {
    CompatibilityChecker(runtimes: runtimes).check(encoder: encoder.compatibilityCandidate(), backend: backend.compatibilityCandidate())
}

/// Checks that a verified encoder bundle and a verified backend bundle can be paired (see the
/// ``UnpackedBundle`` overload); the encoder's codebook tensor is extracted to recompute its hash.
public func checkCompatibility(encoder: VerifiedBundle, backend: VerifiedBundle, runtimes: RuntimeRegistry, limits: BundleLimits = .default) -> CompatibilityReport {
    CompatibilityChecker(runtimes: runtimes).check(encoder: encoder.compatibilityCandidate(limits: limits), backend: backend.compatibilityCandidate(limits: limits))
}
