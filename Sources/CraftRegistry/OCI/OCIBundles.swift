// Bundles as OCI artifacts (docs/registry.md, "OCI registries"): the manifest's artifactType says
// it is a Craft bundle, its config blob is the bundle's craft.json, its one layer is the .craft file
// (so the layer digest is the bundle digest), and its annotations carry name, version, kind and
// codebook hash. A signature is a sibling artifact tagged `sha256-<manifest hex>.sig`.
import CraftBundles
import CraftFiles
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What `push` put in the registry.
public struct OCIPushResult: Sendable {
    public var reference: OCIReference
    /// The tags the manifest was put under.
    public var tags: [String]
    public var manifestDigest: String
    /// The bundle digest (the layer's).
    public var digest: String
    public var size: Int64
    public var name: String
    public var version: String
    /// The key id of the signature pushed beside it, when FILE.sig exists.
    public var signedBy: String?
    /// Whether the bundle's bytes were sent: `false` when the repository already had the blob.
    public var uploaded = true
}

/// A bundle pulled from an OCI registry into the cache.
public struct OCIPulledBundle: Sendable {
    public var reference: OCIReference
    public var manifestDigest: String
    public var manifest: BundleManifest
    /// The bundle digest (the layer's).
    public var digest: String
    /// The `.craft` file in the cache's blob store.
    public var file: URL
    /// The unpacked bundle in the cache, verified (every file's size and sha256) by this pull.
    public var bundle: UnpackedBundle
    /// Its directory.
    public var directory: URL { bundle.directory }
    public var signatures: SignatureStatus
    public var reusedCache: Bool
}

/// Pushes and pulls bundles to and from OCI distribution registries.
public struct OCIBundles: Sendable {
    public var cache: BundleCache
    public var allowInsecure: Bool
    public var offline: Bool
    public var credentials: @Sendable (String) -> OCICredentials?
    public var progress: (@Sendable (String, Int64, Int64) -> Void)?

    public init(cache: BundleCache = .locate(), allowInsecure: Bool = false, offline: Bool = false,
                credentials: @escaping @Sendable (String) -> OCICredentials? = { OCICredentials.locate(host: $0) }) {
        self.cache = cache
        self.allowInsecure = allowInsecure
        self.offline = offline
        self.credentials = credentials
    }

    /// The tag of the signature artifact of a manifest.
    static func signatureTag(for manifestDigest: String) -> String {
        manifestDigest.replacingOccurrences(of: ":", with: "-") + ".sig"
    }

    /// Verifies `file` (hostile archive checks, every sha256, the codebook hash recomputed) and pushes
    /// it: the bundle layer, its craft.json as the config, the manifest under the reference's tag (or,
    /// without one, under the bundle's version and `latest`), and `FILE.sig` when present.
    public func push(_ file: URL, to reference: OCIReference, limits: BundleLimits = .default) throws -> OCIPushResult {
        guard reference.digest == nil else {
            throw RegistryError(.badReference, "\(reference) pins a digest; push to a tag (oci://HOST/REPOSITORY[:TAG])")
        }
        // The same checks as publish: archive, every sha256, the codebook hash recomputed, a FILE.sig
        // beside it signing these bytes.
        let verified = try BundleVerification.verify(file: file, trustedKeys: [], limits: limits).bundle
        let manifest = verified.manifest
        let digest = verified.digest
        let size = verified.size
        let client = try OCIClient(reference: reference, allowInsecure: allowInsecure, credentials: credentials(reference.host))
        let label = manifest.reference
        let uploaded = try client.upload(file: file, digest: digest, size: size, label: label, progress: progress)
        let configData = try JSONFormatting.encode(manifest)
        let config = try client.upload(data: configData, label: "craft.json of \(label)")
        var annotations = [
            "org.opencontainers.image.title": manifest.defaultFileName,
            "org.opencontainers.image.version": "\(manifest.version)",
            "org.opencontainers.image.description": manifest.summary,
            "org.opencontainers.image.licenses": manifest.license,
            "dev.craft.bundle.name": manifest.name,
            "dev.craft.bundle.kind": manifest.kind.rawValue,
            "dev.craft.codebook.hash": manifest.codebook.hash,
            "dev.craft.runtime": "\(manifest.runtime.id) \(manifest.runtime.version)",
        ]
        annotations["org.opencontainers.image.created"] = ISO8601DateFormatter().string(from: Date())
        let document: [String: Any] = [
            "schemaVersion": 2,
            "mediaType": OCIMediaType.imageManifest,
            "artifactType": OCIMediaType.bundle,
            "config": ["mediaType": OCIMediaType.bundleConfig, "digest": config.digest, "size": config.size],
            "layers": [[
                "mediaType": OCIMediaType.bundleLayer, "digest": digest, "size": size,
                "annotations": ["org.opencontainers.image.title": manifest.defaultFileName],
            ] as [String: Any]],
            "annotations": annotations,
        ]
        let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])
        let tags = reference.tag.map { [$0] } ?? [OCIReference.tag(forVersion: "\(manifest.version)"), "latest"]
        var manifestDigest = ""
        for tag in tags { manifestDigest = try client.putManifest(data, tag: tag) }

        var signedBy: String?
        let signatureFile = file.appendingPathExtension("sig")
        if FileManager.default.fileExists(atPath: signatureFile.path) {
            let signature = try BundleSignature.read(from: signatureFile)
            guard signature.digest == digest else {
                throw RegistryError(.badSignature, "\(signatureFile.path) signs \(signature.digest), not \(file.lastPathComponent) (\(digest)); sign the bundle again")
            }
            let signatureData = try BoundedFile.read(signatureFile, limit: 1 << 16)
            let layer = try client.upload(data: signatureData, label: "the signature of \(label)")
            let empty = try client.upload(data: Data("{}".utf8), label: "an empty config")
            let sibling: [String: Any] = [
                "schemaVersion": 2, "mediaType": OCIMediaType.imageManifest, "artifactType": OCIMediaType.signature,
                "config": ["mediaType": OCIMediaType.emptyConfig, "digest": empty.digest, "size": empty.size],
                "layers": [["mediaType": OCIMediaType.signatureLayer, "digest": layer.digest, "size": layer.size]],
                "annotations": ["dev.craft.signature.key-id": signature.keyID, "dev.craft.bundle.digest": digest],
            ]
            try client.putManifest(try JSONSerialization.data(withJSONObject: sibling, options: [.sortedKeys]),
                                   tag: Self.signatureTag(for: manifestDigest))
            signedBy = signature.keyID
        }
        return OCIPushResult(reference: reference, tags: tags, manifestDigest: manifestDigest, digest: digest, size: size,
                             name: manifest.name, version: "\(manifest.version)", signedBy: signedBy, uploaded: uploaded)
    }

    /// Pulls the bundle `reference` names into the cache: the manifest checked against its digest
    /// and refused unless it is a Craft bundle, the layer downloaded into the blob store with its
    /// digest checked as it streams (resumed after an interruption), the config compared with the
    /// bundle's own craft.json, the signature artifact checked against `trustedKeys`, and the bundle
    /// unpacked (hostile archive checks) and renamed into place.
    public func pull(_ reference: OCIReference, trustedKeys: [PublicKey] = [], requireSignature: Bool = false,
                     limits: BundleLimits = .default) throws -> OCIPulledBundle {
        guard !offline else {
            throw RegistryError(.notCached, "--offline: OCI references are always resolved on their registry; pull \(reference) once without --offline and use the directory it prints")
        }
        let client = try OCIClient(reference: reference, allowInsecure: allowInsecure, credentials: credentials(reference.host))
        guard let (data, manifestDigest) = try client.manifest(reference.manifestReference) else {
            throw RegistryError(.notFound, "\(reference) does not exist: no manifest \(reference.manifestReference) in \(reference.repository)")
        }
        let layer = try Self.bundleLayer(in: data, of: reference)
        let configData = try client.smallBlob(layer.config.digest, size: layer.config.size, limit: OCIClient.documentLimit)
        let label = "\(reference)"
        let file = try BlobStore(directory: cache.root.appendingPathComponent("blobs")).fetch(
            digest: layer.digest, size: layer.size, label: label, from: client.url("/v2/\(reference.repository)/blobs/\(layer.digest)"),
            client: client.http, headers: client.authorizationHeaders, offline: false, progress: progress)

        // The signature artifact, when there is one.
        var signatures: [BundleSignature] = []
        if let (signatureManifest, _) = try client.manifest(Self.signatureTag(for: manifestDigest)) {
            signatures.append(try Self.signature(in: signatureManifest, client: client))
        }
        let status = try SignatureStatus.evaluate(signatures, digest: layer.digest, trustedKeys: trustedKeys, source: label)
        if requireSignature { try status.requireTrusted(source: label) }

        let (opened, reused) = try cache.install(file, digest: layer.digest, limits: limits)
        guard let config = try? BundleManifest.decode(configData), config == opened.manifest else {
            throw RegistryError(.digestMismatch, "the config of \(reference) is not the craft.json inside its bundle: the artifact was assembled wrongly or modified; do not use it")
        }
        return OCIPulledBundle(reference: reference, manifestDigest: manifestDigest, manifest: opened.manifest, digest: layer.digest,
                               file: file, bundle: opened, signatures: status, reusedCache: reused)
    }

    struct Layer {
        var digest: String
        var size: Int64
        var config: (digest: String, size: Int)
    }

    /// The bundle layer a manifest names, or an error saying why it is not a Craft bundle.
    static func bundleLayer(in data: Data, of reference: OCIReference) throws -> Layer {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw RegistryError(.corruptIndex, "the manifest of \(reference) is not a JSON object")
        }
        let config = object["config"] as? [String: Any]
        let artifactType = object["artifactType"] as? String
        let configType = config?["mediaType"] as? String
        guard artifactType == OCIMediaType.bundle || configType == OCIMediaType.bundleConfig else {
            let what = artifactType ?? configType ?? (object["mediaType"] as? String) ?? "an unknown type"
            throw RegistryError(.usage, "\(reference) is not a Craft bundle but \(what); pull it with oras or docker instead")
        }
        let layers = (object["layers"] as? [[String: Any]] ?? []).filter { $0["mediaType"] as? String == OCIMediaType.bundleLayer }
        guard layers.count == 1, let digest = layers[0]["digest"] as? String, IndexValidation.isValidDigest(digest),
              let size = (layers[0]["size"] as? NSNumber)?.int64Value, size > 0,
              let configDigest = config?["digest"] as? String, IndexValidation.isValidDigest(configDigest),
              let configSize = (config?["size"] as? NSNumber)?.intValue, configSize >= 0
        else {
            throw RegistryError(.corruptIndex, "the manifest of \(reference) does not name exactly one bundle layer (\(OCIMediaType.bundleLayer)) and a config with sha256 digests and sizes")
        }
        return Layer(digest: digest, size: size, config: (configDigest, configSize))
    }

    static func signature(in data: Data, client: OCIClient) throws -> BundleSignature {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let layer = (object["layers"] as? [[String: Any]])?.first(where: { $0["mediaType"] as? String == OCIMediaType.signatureLayer }),
              let digest = layer["digest"] as? String, IndexValidation.isValidDigest(digest),
              let size = (layer["size"] as? NSNumber)?.intValue
        else {
            throw RegistryError(.badSignature, "the signature artifact of \(client.reference) is malformed")
        }
        let bytes = try client.smallBlob(digest, size: size, limit: 1 << 16)
        return try BundleSignature.decode(bytes, source: "the signature artifact of \(client.reference)")
    }
}

extension BundleCache {
    /// Unpacks `file` (whose digest is `digest`) into its cache entry, or reuses the entry when it
    /// still is that bundle (its craft.json equal to the file's, every file's size and sha256 as listed).
    ///
    /// - Returns: the entry, opened and verified once.
    func install(_ file: URL, digest: String, limits: BundleLimits) throws -> (bundle: UnpackedBundle, reused: Bool) {
        let target = try entry(for: digest)
        sweep()
        if CachedEntry.exists(target) {
            if let manifest = try? BundleArchive.readManifest(of: file),
               let cached = try? BundleArchive.open(directory: target, verifyFiles: true), cached.manifest == manifest {
                BundleCache.touch(target)
                return (cached, true)
            }
            try removeEntry(target)
        }
        try AtomicFile.createDirectory(root)
        let scratch = root.appendingPathComponent("." + ScratchFiles.name(RegistryScratch.pullPrefix))
        let tracked = ScratchFiles.track(scratch)
        defer { ScratchFiles.remove(tracked) }
        try AtomicFile.createDirectory(scratch)
        let unpacked = try BundleArchive.unpack(file, into: scratch.appendingPathComponent("bundle"), expectedDigest: digest, limits: limits)
        guard rename(unpacked.directory.path, target.path) == 0 else {
            let reason = String(cString: strerror(errno))
            if CachedEntry.exists(target), let cached = try? BundleArchive.open(directory: target, verifyFiles: true), cached.manifest == unpacked.manifest {
                return (cached, true)
            }
            throw RegistryError(.io, "cannot move the unpacked bundle into place as \(target.path) (\(reason))")
        }
        // Just unpacked with every check: opened at its new place without hashing it again.
        return (try BundleArchive.open(directory: target, verifyFiles: false), false)
    }
}
