// Writing a new version of an encoder bundle: the base bundle's files with some replaced or added,
// a new manifest (name, version, config, provenance), packed reproducibly and unpacked beside the
// packed file. Everything is built in a hidden staging directory and renamed into place at the end,
// so an interrupted run never leaves a half-written bundle.
import CraftBundles
import CraftCore
import Foundation

/// A new bundle version derived from a base bundle.
struct DerivedBundle {
    /// The base bundle.
    var base: UnpackedBundle
    /// The new name.
    var name: String
    /// The new version.
    var version: SemanticVersion
    /// Files to write (bundle path → writer given the destination URL); they replace base files of
    /// the same path or are added.
    var files: [String: (URL) throws -> Void] = [:]
    /// `config` members to set (merged over the base's `config`).
    var config: [String: JSONValue] = [:]
    /// The new top-level `provenance`.
    var provenance: JSONValue?
    /// A new summary line, or the base's.
    var summary: String?
    /// New domain tags, or the base's.
    var domains: [String]?

    /// The written bundle.
    struct Output {
        /// The unpacked bundle directory `<output>/<name>-<version>`.
        var directory: URL
        /// The packed bundle `<output>/<name>-<version>.craft`.
        var file: URL
        /// Its manifest as packed (sizes and digests filled in).
        var manifest: BundleManifest
        /// Its digest, `sha256:…`.
        var digest: String
        /// Its size in bytes.
        var size: Int64
    }

    /// Writes the bundle into `outputDirectory` as `NAME-VERSION/` and `NAME-VERSION.craft`,
    /// replacing earlier outputs of the same name and version.
    ///
    /// - Throws: ``BundleError`` when the new manifest is invalid or the codebook tensor no longer
    ///   hashes to the declared hash; ``AdaptationError`` (`io`) when a file cannot be written.
    func write(into outputDirectory: URL) throws -> Output {
        let fileManager = FileManager.default
        var manifest = base.manifest
        manifest.name = name
        manifest.version = version
        if let summary { manifest.summary = summary }
        if let domains { manifest.domains = domains }
        if !config.isEmpty {
            var members = manifest.config?.objectValue ?? [:]
            for (key, value) in config { members[key] = value }
            manifest.config = .object(members)
        }
        manifest.provenance = provenance
        try manifest.validate()

        let staging = outputDirectory.appendingPathComponent(".craft-staging-\(UUID().uuidString)")
        defer { try? fileManager.removeItem(at: staging) }
        let tree = staging.appendingPathComponent("bundle")
        do {
            try fileManager.createDirectory(at: tree, withIntermediateDirectories: true)
            var entries: [BundleFileEntry] = []
            for entry in base.manifest.files where files[entry.path] == nil {
                let destination = tree.appendingPathComponent(entry.path)
                try fileManager.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                try fileManager.copyItem(at: base.url(for: entry.path), to: destination)
                entries.append(entry)
            }
            for (path, writer) in files.sorted(by: { $0.key < $1.key }) {
                let destination = tree.appendingPathComponent(path)
                try fileManager.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                try writer(destination)
                // Packing computes the size and digest.
                entries.append(BundleFileEntry(path: path, size: 0, sha256: String(repeating: "0", count: 64)))
            }
            manifest.files = entries
            try manifest.canonicalJSON().write(to: tree.appendingPathComponent(BundleManifest.fileName))
        } catch let error as AdaptationError {
            throw error
        } catch let error as BundleError {
            throw error
        } catch {
            throw AdaptationError(.io, "cannot stage the new bundle \(name)@\(version) in \(staging.path) (\(describe(error))); check free space and permissions")
        }

        let fileName = "\(name)-\(version).\(BundleArchive.fileExtension)"
        let stagedFile = staging.appendingPathComponent(fileName)
        _ = try BundleArchive.pack(directory: tree, to: stagedFile)
        // The directory form is the packed bundle unpacked, so its craft.json lists sizes and digests.
        let stagedDirectory = staging.appendingPathComponent("unpacked")
        _ = try BundleArchive.unpack(stagedFile, into: stagedDirectory)

        let finalDirectory = outputDirectory.appendingPathComponent("\(name)-\(version)")
        let finalFile = outputDirectory.appendingPathComponent(fileName)
        do {
            for url in [finalDirectory, finalFile] where fileManager.fileExists(atPath: url.path) {
                try fileManager.removeItem(at: url)
            }
            try fileManager.moveItem(at: stagedDirectory, to: finalDirectory)
            try fileManager.moveItem(at: stagedFile, to: finalFile)
        } catch {
            throw AdaptationError(.io, "cannot move the new bundle into \(outputDirectory.path) (\(describe(error))); check permissions")
        }
        let verified = try BundleArchive.verify(finalFile)
        return Output(directory: finalDirectory, file: finalFile, manifest: verified.manifest, digest: verified.digest, size: verified.size)
    }

    /// The default next version: `major.(minor+1).0` (a retrained encoder), or `major.minor.(patch+1)`
    /// (the same weights with new metadata).
    static func nextVersion(after version: SemanticVersion, minor: Bool) -> SemanticVersion {
        minor
            ? SemanticVersion(major: version.major, minor: version.minor + 1, patch: 0)
            : SemanticVersion(major: version.major, minor: version.minor, patch: version.patch + 1)
    }

    /// Creates `directory` (and parents).
    static func createOutputDirectory(_ directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw AdaptationError(.io, "cannot create the output directory \(directory.path) (\(describe(error))); check the path and permissions")
        }
    }
}
