// The one way every command and library entry point names and opens a bundle: an unpacked bundle
// directory, a packed `.craft` file, or a registry reference, each verified, packed ones read once.
import CraftBundles
import CraftCore
import Foundation

/// Where a bundle comes from.
///
/// ```swift
/// let encoder = BundleSource(argument: "adapted/digits-siglip-vq-1.1.0.craft")   // .file
/// let backend = BundleSource(argument: "digits-llama@^1.0")                      // .registry
/// let local = BundleSource(argument: "work/encoder")                             // .directory
/// ```
public enum BundleSource: Sendable, Equatable, CustomStringConvertible {
    /// A directory holding an unpacked bundle (`craft.json` and its files); read in place, every
    /// listed file's size and digest checked.
    case directory(URL)
    /// A packed `.craft` file; unpacked into a scratch directory while its digest is computed.
    case file(URL)
    /// A registry reference `NAME`, `NAME@VERSION` or `NAME@RANGE`.
    case registry(String)
    /// A bundle in an OCI distribution registry, `oci://HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]`.
    case oci(String)

    /// A path: a directory when one exists there, else a file.
    public init(path url: URL) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            self = .directory(url)
        } else {
            self = .file(url)
        }
    }

    /// A command-line argument: an existing path, or anything that looks like one (ends in `.craft`,
    /// holds a `/`), is a path; everything else is a registry reference.
    public init(argument: String) {
        if OCIReference.isOCI(argument) {
            self = .oci(argument)
        } else if let url = Self.webURL(argument) {
            // Refused when opened, with what to do instead (a registry URL and a NAME).
            self = .file(url)
        } else if Self.looksLikePath(argument) {
            self.init(path: URL(fileURLWithPath: argument))
        } else {
            self = .registry(argument)
        }
    }

    /// An `http://` or `https://` address, which names no file Craft can open directly.
    static func webURL(_ text: String) -> URL? {
        let lowered = text.lowercased()
        guard lowered.hasPrefix("https://") || lowered.hasPrefix("http://"), let url = URL(string: text), url.host != nil else { return nil }
        return url
    }

    /// Whether an argument names a path rather than a registry reference.
    public static func looksLikePath(_ text: String) -> Bool {
        FileManager.default.fileExists(atPath: text) || text.hasSuffix(".craft") || text.contains("/")
    }

    /// The registry reference, parsed; `nil` for paths.
    ///
    /// - Throws: ``RegistryError`` `badReference` when the text is not `NAME[@VERSION|@RANGE]`.
    public func reference() throws -> BundleReference? {
        guard case .registry(let text) = self else { return nil }
        return try BundleReference(parsing: text)
    }

    public var description: String {
        switch self {
        case .directory(let url), .file(let url): url.isFileURL ? url.path : url.absoluteString
        case .registry(let reference), .oci(let reference): reference
        }
    }
}

/// What a caller requires of the bundles it opens, beyond their verification: pre-release versions
/// considered when a range is resolved, and a signature by a key the registry trusts.
public struct OpeningPolicy: Sendable, Equatable {
    /// Consider pre-release versions (`1.0.0-beta.1`) when resolving names and ranges.
    public var includePrerelease: Bool
    /// Refuse (integrity, exit 4) a bundle that is unsigned or signed only by untrusted keys; a bundle
    /// directory carries no signature, so it is refused then.
    public var requireSignature: Bool

    public init(includePrerelease: Bool = false, requireSignature: Bool = false) {
        self.includePrerelease = includePrerelease
        self.requireSignature = requireSignature
    }
}

/// A bundle opened for reading: the unpacked bundle and what opening it proved.
public struct OpenedBundle: Sendable {
    /// The unpacked bundle (in the opener's scratch directory, or the directory itself).
    public var bundle: UnpackedBundle
    /// Where it came from.
    public var source: BundleSource
    /// The packed file's digest (`sha256:…`), computed from the bytes that were unpacked; `nil` for
    /// directories.
    public var digest: String?
    /// The verdict on its detached signatures: a registry entry's, or a file's `FILE.sig`; `nil` when
    /// there are none to check.
    public var signature: SignatureStatus?
    /// The codebook identity recomputed from the bundle's codebook tensor (equal to the declared one,
    /// or opening failed); `nil` when the manifest names no codebook tensor (most backends). The
    /// codebook itself is ``UnpackedBundle/verifiedCodebook``, reused by the checker and the runtimes.
    public var codebook: CodebookIdentity? { bundle.verifiedCodebook?.identity }
    /// The manifest.
    public var manifest: BundleManifest { bundle.manifest }
}

/// Opens bundles into a scratch directory `$TMPDIR/PREFIX-PID-UUID`, removed by ``remove()`` and on
/// SIGINT, SIGTERM or SIGHUP (``ScratchFiles``).
///
/// Packed bundles are read once: every hostile-archive check runs while the file is unpacked and the
/// digest is computed from the same bytes, so a registry entry's digest is checked against the index
/// on what was unpacked, and a file renamed over the path meanwhile is refused instead of used.
///
/// ```swift
/// let opener = try BundleOpener(prefix: "my-tool")
/// defer { opener.remove() }
/// let encoder = try opener.open(.registry("digits-siglip-vq@^1.1"), role: "encoder", registry: registry)
/// ```
public struct BundleOpener: Sendable {
    /// The scratch directory packed bundles unpack into.
    public let root: URL
    /// Called before a packed bundle is unpacked with a label (`unpacking NAME@VERSION`) and its size
    /// in bytes; the closure it returns is called when unpacking ends. For progress lines.
    public var announce: (@Sendable (_ label: String, _ bytes: Int64) -> @Sendable () -> Void)?
    /// How `oci://` references are pulled (credentials, `--insecure`, the cache).
    public var oci = OCIBundles()
    private let scratch: ScratchFiles.Tracked

    /// Creates the scratch directory.
    ///
    /// - Throws: ``RegistryError`` `io` when it cannot be created (naming it and `TMPDIR`).
    public init(prefix: String) throws {
        root = ScratchFiles.directory.appendingPathComponent(ScratchFiles.name(prefix))
        scratch = ScratchFiles.track(root)
        do {
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        } catch {
            ScratchFiles.remove(scratch)
            throw RegistryError(.io, "cannot create the temporary directory \(root.path) to unpack bundles (\(error.localizedDescription)); check TMPDIR", cause: error)
        }
    }

    /// Removes the scratch directory and everything unpacked into it.
    public func remove() { ScratchFiles.remove(scratch) }

    /// Opens and verifies the bundle at `source` under `role` (`encoder`, `backend`, …: the name of
    /// its scratch subdirectory and the word used in errors).
    ///
    /// - Directories: `craft.json` required; every listed file's size and sha256 checked.
    /// - Files: unpacked with every archive check; a `FILE.sig` next to it is checked against the
    ///   computed digest and the registry's trusted keys.
    /// - References: resolved in `registry` (prereleases only when named or `includePrerelease`), its
    ///   signatures checked, its file unpacked with the digest the index records, the index record
    ///   compared with the unpacked `craft.json` (``Registry/checkRecord(of:against:size:)``).
    /// - Every bundle naming a codebook tensor: its codebook hash recomputed and compared with the
    ///   declared one (``OpenedBundle/codebook``).
    /// - Throws: ``RegistryError`` (`notFound`, `noRegistry`, `badReference`, `digestMismatch`,
    ///   `badSignature`, …) or ``BundleError`` for a malformed bundle (`codebookHashMismatch` for a
    ///   codebook hash that is not its tensor's).
    public func open(
        _ source: BundleSource, role: String, registry: Registry?, includePrerelease: Bool = false
    ) throws -> OpenedBundle {
        var opened = try openUnchecked(source, role: role, registry: registry, includePrerelease: includePrerelease)
        // A declared codebook hash is a claim: recompute it from the tensor (a lie is an integrity
        // failure, exit 4, not an incompatible pair).
        // The one hash of the run: the checker and the runtimes reuse this codebook.
        if opened.manifest.codebook.tensor != nil {
            opened.bundle.openedCodebook = try CodebookVerification.verifiedCodebook(opened.manifest, in: opened.bundle.directory)
        }
        return opened
    }

    /// Opens `source` (``open(_:role:registry:includePrerelease:)``) and holds it to `policy`.
    ///
    /// - Throws: what that method throws, and ``RegistryError`` (integrity, exit 4) for a bundle
    ///   without a trusted signature when ``OpeningPolicy/requireSignature``.
    public func open(_ source: BundleSource, role: String, registry: Registry?, policy: OpeningPolicy) throws -> OpenedBundle {
        let opened = try open(source, role: role, registry: registry, includePrerelease: policy.includePrerelease)
        if policy.requireSignature { try (opened.signature ?? .unsigned).requireTrusted(source: source.description) }
        return opened
    }

    private func openUnchecked(
        _ source: BundleSource, role: String, registry: Registry?, includePrerelease: Bool
    ) throws -> OpenedBundle {
        let destination = root.appendingPathComponent(role)
        switch source {
        case .directory(let url):
            guard FileManager.default.fileExists(atPath: url.appendingPathComponent(BundleManifest.fileName).path) else {
                if FileManager.default.fileExists(atPath: url.appendingPathComponent("config.json").path) {
                    throw RegistryError(.usage, "the \(role) directory \(url.path) is a Hugging Face model folder, not a Craft bundle; make a bundle of it with craft convert \(role == "backend" ? "backend" : "encoder") --model \(url.path) (docs/models.md)")
                }
                throw RegistryError(.notFound, "the \(role) directory \(url.path) holds no craft.json; pass an unpacked bundle directory, a .craft file or a registry reference")
            }
            if BundleArchive.isPackingSource(url) {
                throw RegistryError(.usage, "the \(role) directory \(url.path) is a bundle source (its craft.json lists files without size and sha256); pack it first with craft-registry pack \(url.path) and pass the .craft file")
            }
            return OpenedBundle(bundle: try BundleArchive.open(directory: url, verifyFiles: true), source: source, digest: nil, signature: nil)
        case .file(let url):
            guard url.isFileURL else {
                throw RegistryError(.usage, "the \(role) \(url.absoluteString) is a web address, which Craft does not download directly; pass --registry with the registry's URL and the bundle's NAME[@VERSION], or download the .craft file first")
            }
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw RegistryError(.notFound, "the \(role) bundle \(url.path) does not exist; pass a .craft file, a bundle directory or a registry reference")
            }
            let unpacked = try announced("unpacking \(url.lastPathComponent)", bytes: Self.size(of: url)) {
                try BundleArchive.unpack(url, into: destination)
            }
            var signature: SignatureStatus?
            let signatureURL = url.appendingPathExtension("sig")
            if FileManager.default.fileExists(atPath: signatureURL.path), let digest = unpacked.digest {
                let trusted = registry?.exists == true ? try registry?.trustedKeys() ?? [] : []
                signature = try SignatureStatus.evaluate(
                    [try BundleSignature.read(from: signatureURL)], digest: digest, trustedKeys: trusted, source: url.lastPathComponent)
            }
            return OpenedBundle(bundle: unpacked, source: source, digest: unpacked.digest, signature: signature)
        case .oci(let text):
            let reference = try OCIReference(parsing: text)
            let trusted = registry?.exists == true && registry?.isRemote == false ? try registry?.trustedKeys() ?? [] : []
            var oci = self.oci
            oci.allowInsecure = oci.allowInsecure || registry?.allowInsecure == true
            oci.offline = oci.offline || registry?.offline == true
            let pulled = try oci.pull(reference, trustedKeys: trusted)
            return OpenedBundle(bundle: pulled.bundle, source: source, digest: pulled.digest, signature: pulled.signatures)
        case .registry(let text):
            guard let registry else {
                throw RegistryError(.usage, "the \(role) \(text) is a registry reference but no registry was given; pass --registry PATH, or a .craft file or bundle directory")
            }
            let reference: BundleReference
            do {
                reference = try BundleReference(parsing: text)
            } catch let error as RegistryError {
                throw RegistryError(.badReference, "the \(role) \"\(text)\" is neither an existing path nor a registry reference NAME[@VERSION|@RANGE] (\(error.message))", cause: error)
            }
            let resolved = try registry.resolve(reference, includePrerelease: includePrerelease)
            let signature = try registry.signatureStatus(of: resolved)
            try registry.localFile(of: resolved)  // downloaded and verified first when the registry is remote
            let unpacked = try announced("unpacking \(resolved.reference)", bytes: resolved.record.size) {
                try BundleArchive.unpack(resolved.file, into: destination, expectedDigest: resolved.record.digest)
            }
            // Same bytes as the index's digest, so the same size; the shard must still describe them.
            try registry.checkRecord(of: resolved, against: unpacked.manifest, size: resolved.record.size)
            return OpenedBundle(bundle: unpacked, source: source, digest: unpacked.digest, signature: signature)
        }
    }

    private func announced<T>(_ label: String, bytes: Int64, _ body: () throws -> T) rethrows -> T {
        let finish = announce?(label, bytes)
        defer { finish?() }
        return try body()
    }

    private static func size(of url: URL) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.int64Value ?? 0
    }
}
