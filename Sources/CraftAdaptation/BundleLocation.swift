// Naming the bundles an adaptation reads: an unpacked bundle directory, a `.craft` file, or a
// registry reference `NAME[@VERSION|@RANGE]`; and the temporary workspace packed bundles unpack into.
import CraftBundles
import CraftRegistry
import Foundation

/// Where a bundle comes from.
///
/// ```swift
/// let encoder = BundleLocation(argument: "registry/bundles/base/base-1.0.0.craft")   // .file
/// let backend = BundleLocation(argument: "tiny-llm@^1.0")                           // .registry
/// ```
public enum BundleLocation: Sendable, Equatable, CustomStringConvertible {
    /// A directory holding an unpacked bundle (`craft.json` and its files); read in place, verified.
    case directory(URL)
    /// A packed `.craft` file; verified and unpacked into a temporary directory.
    case file(URL)
    /// A registry reference `NAME`, `NAME@VERSION` or `NAME@RANGE`, resolved in the request's registry.
    case registry(String)

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
        if FileManager.default.fileExists(atPath: argument) || argument.hasSuffix(".craft") || argument.contains("/") {
            self.init(path: URL(fileURLWithPath: argument))
        } else {
            self = .registry(argument)
        }
    }

    public var description: String {
        switch self {
        case .directory(let url), .file(let url): url.path
        case .registry(let reference): reference
        }
    }
}

/// A bundle opened for reading, with where it came from.
struct OpenedBundle: Sendable {
    /// The unpacked bundle.
    var bundle: UnpackedBundle
    /// The packed file's digest (`sha256:…`) when it came packed.
    var digest: String?
    /// The manifest.
    var manifest: BundleManifest { bundle.manifest }
}

/// A scratch directory that packed bundles are unpacked into, `$TMPDIR/craft-adapt-PID-UUID`,
/// removed with ``remove()`` and on SIGINT, SIGTERM or SIGHUP (``ScratchFiles``).
struct AdaptationWorkspace {
    /// The prefix of the workspace's scratch name.
    static let scratchPrefix = "craft-adapt"

    let root: URL
    private let scratch: ScratchFiles.Tracked

    init() throws {
        root = ScratchFiles.directory.appendingPathComponent(ScratchFiles.name(Self.scratchPrefix))
        scratch = ScratchFiles.track(root)
        do {
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        } catch {
            ScratchFiles.remove(scratch)
            throw AdaptationError(.io, "cannot create the temporary directory \(root.path) to unpack bundles (\(error.localizedDescription)); check TMPDIR")
        }
    }

    func remove() { ScratchFiles.remove(scratch) }

    /// Opens the bundle at `location`, verifying it: every listed file's size and sha256 (directories),
    /// every hostile-archive check (files and registry entries), the index digest (registry entries).
    ///
    /// Packed bundles are read once: the digest is computed from the bytes being unpacked, and a
    /// registry entry's must be the index's, so a file renamed over the entry meanwhile is refused
    /// instead of used (no verify-then-unpack race).
    func open(_ location: BundleLocation, role: String, registry: Registry?) throws -> OpenedBundle {
        switch location {
        case .directory(let url):
            guard FileManager.default.fileExists(atPath: url.appendingPathComponent(BundleManifest.fileName).path) else {
                throw AdaptationError(.notFound, "the \(role) directory \(url.path) holds no craft.json; pass an unpacked bundle directory, a .craft file or a registry reference")
            }
            return OpenedBundle(bundle: try BundleArchive.open(directory: url, verifyFiles: true), digest: nil)
        case .file(let url):
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw AdaptationError(.notFound, "the \(role) bundle \(url.path) does not exist; pass a .craft file, a bundle directory or a registry reference")
            }
            let unpacked = try BundleArchive.unpack(url, into: root.appendingPathComponent(role))
            return OpenedBundle(bundle: unpacked, digest: unpacked.digest)
        case .registry(let text):
            guard let registry else {
                throw AdaptationError(.invalidRequest, "the \(role) \(text) is a registry reference but no registry was given; pass --registry PATH or a .craft file")
            }
            let reference: BundleReference
            do {
                reference = try BundleReference(parsing: text)
            } catch {
                throw AdaptationError(.invalidRequest, "the \(role) \"\(text)\" is neither an existing path nor a registry reference NAME[@VERSION|@RANGE] (\(describe(error)))")
            }
            let resolved = try registry.resolve(reference)
            _ = try registry.signatureStatus(of: resolved)
            guard FileManager.default.fileExists(atPath: resolved.file.path) else {
                throw AdaptationError(.notFound, "the index lists \(resolved.reference) but its file \(resolved.file.path) is missing; republish it")
            }
            let unpacked = try BundleArchive.unpack(
                resolved.file, into: root.appendingPathComponent(role), expectedDigest: resolved.record.digest)
            return OpenedBundle(bundle: unpacked, digest: unpacked.digest)
        }
    }
}
