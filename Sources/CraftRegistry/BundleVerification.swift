import CraftBundles
import Foundation

/// The outcome of verifying a bundle file: its archive checks passed and its signatures were checked.
public struct BundleVerification: Sendable {
    /// The file that was verified.
    public var file: URL
    /// The archive-level result (manifest, digest, size).
    public var bundle: VerifiedBundle
    /// What the signatures established.
    public var signatures: SignatureStatus
    /// `NAME@VERSION` when the bundle came from a registry.
    public var reference: String?

    /// Verifies a `.craft` file on disk: the hostile archive checks of ``BundleArchive/verify(_:limits:)``,
    /// the codebook hash recomputed from the codebook tensor (a declared hash is a claim, not a proof),
    /// then the detached signature in `signatureFile` (by default `FILE.sig` when it exists).
    ///
    /// - Parameters:
    ///   - trustedKeys: keys whose signatures count as trusted (usually the registry's).
    ///   - requireSignature: refuse an unsigned or untrusted bundle (``RegistryError/Code/untrusted``).
    public static func verify(
        file: URL, signatureFile: URL? = nil, trustedKeys: [PublicKey], requireSignature: Bool = false,
        limits: BundleLimits = .default
    ) throws -> BundleVerification {
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw RegistryError(.notFound, "the bundle file \(file.path) does not exist; check the path")
        }
        let verified = try BundleArchive.verify(file, limits: limits)
        try CodebookCheck.verify(file, manifest: verified.manifest, limits: limits, source: file.path)
        let sigURL = signatureFile ?? file.appendingPathExtension("sig")
        var signatures: [BundleSignature] = []
        if FileManager.default.fileExists(atPath: sigURL.path) {
            signatures = [try BundleSignature.read(from: sigURL)]
        } else if signatureFile != nil {
            throw RegistryError(.notFound, "the signature file \(sigURL.path) does not exist; check the --signature path")
        }
        let status = try SignatureStatus.evaluate(
            signatures, digest: verified.digest, trustedKeys: trustedKeys, source: file.lastPathComponent)
        if requireSignature { try status.requireTrusted(source: file.lastPathComponent) }
        return BundleVerification(file: file, bundle: verified, signatures: status, reference: nil)
    }
}

extension Registry {
    /// Verifies a published version: the file's digest must equal the index's, its signatures must
    /// verify (against this registry's trusted keys), the archive must pass every hostile check, and
    /// the codebook hash recomputed from its tensor must be the declared one (and the index's).
    public func verify(
        _ reference: BundleReference, includePrerelease: Bool = false, requireSignature: Bool = false,
        limits: BundleLimits = .default
    ) throws -> BundleVerification {
        let bundle = try resolve(reference, includePrerelease: includePrerelease)
        guard FileManager.default.fileExists(atPath: bundle.file.path) else {
            throw RegistryError(
                .notFound, "the index lists \(bundle.reference) but its file \(bundle.file.path) is missing; republish it")
        }
        let status = try signatureStatus(of: bundle)
        if requireSignature { try status.requireTrusted(source: bundle.reference) }
        let digest = try BundleArchive.digest(of: bundle.file)
        guard digest == bundle.record.digest else {
            throw RegistryError(
                .digestMismatch, "\(bundle.file.path) has digest \(digest) but the index records \(bundle.record.digest) for \(bundle.reference): the file was modified or replaced; do not use it")
        }
        let verified = try BundleArchive.verify(bundle.file, limits: limits)
        try CodebookCheck.verify(bundle.file, manifest: verified.manifest, limits: limits, source: bundle.reference)
        try checkRecord(of: bundle, against: verified.manifest, size: verified.size)
        return BundleVerification(file: bundle.file, bundle: verified, signatures: status, reference: bundle.reference)
    }
}

extension Registry {
    /// Refuses an index record that describes a bundle otherwise than the bundle's own `craft.json`
    /// (kind, summary, runtime, codebook) or size: the shard was edited after publishing, and what
    /// `search`, `compatible` and `info` advertise is not what the file holds.
    ///
    /// - Throws: ``RegistryError/Code/corruptIndex`` naming the shard and `craft-registry reindex`.
    public func checkRecord(of bundle: ResolvedBundle, against manifest: BundleManifest, size: Int64) throws {
        let indexed = IndexedVersion(
            manifest: manifest, digest: bundle.record.digest, size: size, path: bundle.record.path,
            signatures: bundle.record.signatures)
        var recorded = bundle.record
        recorded.yanked = false
        if indexed != recorded {
            throw RegistryError(
                .corruptIndex, "the shard \(shardURL(for: bundle.name).path) describes \(bundle.reference) otherwise than its bundle's craft.json (kind, summary, runtime, codebook or size differ); the shard was edited: run craft-registry reindex")
        }
    }
}

/// The codebook-hash check of `verify` and `publish`: the hash is recomputed from the codebook tensor
/// (``CodebookVerification/verify(bundle:manifest:limits:)``), so that a bundle declaring another
/// bundle's codebook is refused instead of being advertised as that bundle's partner.
enum CodebookCheck {
    /// - Throws: ``RegistryError/Code/codebookMismatch`` (exit 4) naming `source` when the declared
    ///   codebook hash or shape is not the tensor's.
    static func verify(_ file: URL, manifest: BundleManifest, limits: BundleLimits, source: String) throws {
        do {
            try CodebookVerification.verify(bundle: file, manifest: manifest, limits: limits)
        } catch let error as BundleError where error.code == .codebookHashMismatch {
            throw RegistryError(.codebookMismatch, "\(source): \(error.message)", cause: error)
        }
    }
}
