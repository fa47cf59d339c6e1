// Recomputing a bundle's codebook hash from its codebook tensor (docs/codebook-hash.md, docs/compatibility.md).
import CraftCore
import Foundation
import SafeTensors

/// Reads a bundle's codebook tensor and recomputes its hash: a declared hash is a claim, never trusted.
public enum CodebookVerification {
    /// The hash recomputed from the codebook tensor the manifest names, with the tensor's shape checked
    /// against the declared `entries`, `dim` and `depth`. A `[K, D]` tensor declared with depth N > 1
    /// is one codebook shared by the N levels (hashed as its logical `[N][K][D]` values).
    ///
    /// - Parameters:
    ///   - manifest: The bundle's manifest; `codebook.tensor` must name a safetensors file and tensor.
    ///   - directory: The directory holding the bundle's files (an unpacked bundle or a pack source).
    /// - Returns: The recomputed codebook identity (hash, shape and the declared metric).
    /// - Throws: ``BundleError`` when the tensor is missing, unreadable, has another shape, or holds
    ///   non-finite values.
    public static func recompute(_ manifest: BundleManifest, in directory: URL) throws -> CodebookIdentity {
        try load(manifest, in: directory).identity
    }

    /// The codebook tensor the manifest names, loaded (and so hashed, once) as a searchable
    /// ``Codebook`` with the declared metric; shapes are read as by ``recompute(_:in:)``.
    ///
    /// - Throws: ``BundleError`` when the tensor is missing, unreadable, has another shape, or holds
    ///   non-finite values.
    public static func load(_ manifest: BundleManifest, in directory: URL) throws -> Codebook {
        guard let tensor = manifest.codebook.tensor else {
            throw BundleError(.invalidManifest, "\(manifest.reference) names no codebook tensor (codebook.tensor), so its codebook hash cannot be recomputed; add {\"file\": ..., \"name\": ...}", entry: "codebook.tensor")
        }
        guard BundlePath.problem(with: tensor.file) == nil else {
            throw BundleError(.invalidManifest, "\(manifest.reference): codebook.tensor.file \"\(tensor.file)\" is not a valid bundle path", entry: "codebook.tensor.file")
        }
        let url = directory.appendingPathComponent(tensor.file)
        let values: [Float]
        let shape: [Int]
        do {
            let file = try SafeTensorsFile(contentsOf: url)
            shape = try file.info(tensor.name).shape
            values = try file.floats(tensor.name)
        } catch {
            let reason = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
            throw BundleError(.invalidManifest, "cannot read the codebook tensor \"\(tensor.name)\" of \(manifest.reference) from \(tensor.file): \(reason)", entry: tensor.file, cause: error)
        }
        var logical = values
        let depth: Int, entries: Int, dimension: Int
        switch shape.count {
        case 2 where manifest.codebook.depth > 1:
            // One [K, D] codebook shared by every level: hashed as its logical [depth][K][D] values.
            (depth, entries, dimension) = (manifest.codebook.depth, shape[0], shape[1])
            logical = Codebook.sharedLevels(values, depth: depth)
        case 2: (depth, entries, dimension) = (1, shape[0], shape[1])
        case 3: (depth, entries, dimension) = (shape[0], shape[1], shape[2])
        default:
            throw BundleError(.invalidManifest, "the codebook tensor \"\(tensor.name)\" in \(tensor.file) of \(manifest.reference) has shape \(shape); expected [K, D] or [depth, K, D]", entry: tensor.file)
        }
        let declared = manifest.codebook
        guard entries == declared.entries, dimension == declared.dimension, depth == declared.depth else {
            throw BundleError(.codebookHashMismatch, "the codebook tensor \"\(tensor.name)\" of \(manifest.reference) has depth×K×D = \(depth)×\(entries)×\(dimension) but craft.json declares \(declared.depth)×\(declared.entries)×\(declared.dimension); fix codebook.entries, dim and depth", entry: tensor.file)
        }
        do {
            return try Codebook(values: logical, entries: entries, dimension: dimension, depth: depth, metric: declared.metric)
        } catch {
            let reason = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
            throw BundleError(.invalidManifest, "the codebook tensor \"\(tensor.name)\" of \(manifest.reference) has no hash: \(reason)", entry: tensor.file, cause: error)
        }
    }

    /// The codebook tensor the manifest names, loaded and hashed once, and refused unless its hash
    /// is the declared one (``load(_:in:)`` then ``check(_:recomputed:)``).
    public static func verifiedCodebook(_ manifest: BundleManifest, in directory: URL) throws -> Codebook {
        let codebook = try load(manifest, in: directory)
        try check(manifest, recomputed: codebook.identity)
        return codebook
    }

    /// Recomputes the hash and throws when it differs from the declared one, naming both.
    public static func verify(_ manifest: BundleManifest, in directory: URL) throws {
        _ = try verifiedCodebook(manifest, in: directory)
    }

    /// Throws when `recomputed` (from ``recompute(_:in:)``) is not the hash the manifest declares.
    public static func check(_ manifest: BundleManifest, recomputed: CodebookIdentity) throws {
        guard recomputed.hash == manifest.codebook.hash else {
            throw BundleError(.codebookHashMismatch, "\(manifest.reference) declares codebook hash \(manifest.codebook.hash) but its codebook tensor \(manifest.codebook.tensor.map { "\"\($0.name)\" in \($0.file)" } ?? "") hashes to \(recomputed.hash); the declared hash is wrong or the tensor was changed: set codebook.hash to the recomputed value only if this tensor is the intended codebook", entry: "codebook.hash")
        }
    }

    /// Recomputes the codebook hash of a packed bundle and throws when it differs from the declared one.
    ///
    /// Only the codebook tensor is extracted (into a temporary directory, removed afterwards); the
    /// whole archive is read and checked on the way, as by ``BundleArchive/verify(_:expectedDigest:limits:)``. A
    /// manifest that names no codebook tensor (a backend) has nothing to recompute.
    ///
    /// - Returns: the recomputed identity, or `nil` when the manifest names no codebook tensor.
    /// - Throws: ``BundleError`` with code ``BundleError/Code/codebookHashMismatch`` (integrity, exit 4)
    ///   when the declared hash or shape is a lie; other ``BundleError``s when the tensor is unreadable.
    @discardableResult
    public static func verify(bundle: URL, manifest: BundleManifest, limits: BundleLimits = .default) throws -> CodebookIdentity? {
        guard let tensor = manifest.codebook.tensor else { return nil }
        let (extracted, scratch) = try BundleArchive.extractChecked(bundle, paths: [tensor.file], limits: limits)
        defer { ScratchFiles.remove(scratch) }
        let recomputed = try recompute(extracted.manifest, in: extracted.directory)
        try check(extracted.manifest, recomputed: recomputed)
        return recomputed
    }
}
