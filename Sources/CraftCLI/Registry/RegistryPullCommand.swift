import ArgumentParser
import CraftBundles
import CraftRegistry
import Foundation

/// `craft-registry pull REF`: copy, verify and unpack a published bundle.
struct RegistryPullCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Copy, verify and unpack a published bundle; print the directory it is in.",
        discussion: """
            The bundle is unpacked into the cache ($CRAFT_CACHE, else ~/.craft/cache), in a \
            directory named by its digest (sha256-<hex>); an existing entry is re-checked and \
            reused. With -o DIR it is unpacked into DIR instead (DIR must not exist). The digest \
            must match the index and signatures must verify (exit 4 otherwise).

            An oci://HOST[:PORT]/REPOSITORY[:TAG|@sha256:DIGEST] reference pulls from an OCI \
            registry (docs/registry.md, "OCI registries"): the manifest must be a Craft bundle, \
            every digest is checked, and a signature pushed beside it is checked against the trusted \
            keys of --registry.

            Examples (from the repository root):
              craft-registry pull digits-siglip-vq@^1.0
              craft-registry pull digits-llama --output-directory models/digits-llama

            From an OCI registry:
              craft-registry pull oci://HOST/REPOSITORY:TAG
            """)

    @OptionGroup var options: RegistryOptions
    @OptionGroup var selection: VersionSelectionOptions
    @OptionGroup var signing: SignatureOptions

    @Argument(help: "NAME, NAME@VERSION, NAME@RANGE, or oci://HOST/REPOSITORY[:TAG].")
    var reference: String

    @Option(help: ArgumentHelp("Unpack into this new directory instead of the cache.", valueName: "dir"))
    var outputDirectory: String?

    @Option(help: ArgumentHelp("The cache directory (default: $CRAFT_CACHE, else ~/.craft/cache).", valueName: "dir"))
    var cache: String?

    func validate() throws {
        if OCIReference.isOCI(reference) {
            _ = try OCIReference(parsing: reference)
        } else {
            _ = try parseReference(reference)
        }
    }

    func run() throws {
        if OCIReference.isOCI(reference) { return try pullOCI() }
        // An interrupted command removes its scratch files (staging copy, download, unpack directory).
        let registry = try options.resolvedRegistry(cache: cache)
        let reference = try parseReference(reference)
        let cacheLocation = cache.map { BundleCache(root: URL(fileURLWithPath: $0)) } ?? .locate()
        let resolved = try registry.resolve(reference, includePrerelease: selection.includePrerelease)
        let pulled = try ProgressLine.run("pulling \(resolved.reference)", bytes: resolved.record.size) {
            try registry.pull(
                reference, includePrerelease: selection.includePrerelease, requireSignature: signing.requireSignature,
                cache: cacheLocation, destination: outputDirectory.map { URL(fileURLWithPath: $0) })
        }
        if options.json {
            struct Result: Encodable {
                var name: String
                var version: String
                var digest: String
                var directory: String
                var reusedCache: Bool
                var signatures: SignatureRow
            }
            try Output.json(Result(
                name: pulled.bundle.name, version: pulled.bundle.record.version, digest: pulled.bundle.record.digest,
                directory: pulled.directory.path, reusedCache: pulled.reusedCache, signatures: SignatureRow(pulled.signatures)))
        } else {
            Output.line(pulled.directory.path)
        }
    }

    /// `pull oci://…`: into the cache (and with -o, unpacked again into DIR).
    private func pullOCI() throws {
        let registry = try options.resolvedRegistry()
        var oci = OCIBundles(cache: cache.map { BundleCache(root: URL(fileURLWithPath: $0)) } ?? .locate(),
                             allowInsecure: registry.allowInsecure, offline: registry.offline)
        oci.progress = TransferProgress.reporter("downloading")
        let trusted = registry.exists && !registry.isRemote ? try registry.trustedKeys() : []
        let pulled = try oci.pull(try OCIReference(parsing: reference), trustedKeys: trusted, requireSignature: signing.requireSignature)
        var directory = pulled.directory
        if let outputDirectory {
            let target = URL(fileURLWithPath: outputDirectory)
            guard !FileManager.default.fileExists(atPath: target.path) else {
                throw CommandError(.usage, "\(target.path) already exists; choose a new -o directory or delete it")
            }
            directory = try BundleArchive.unpack(pulled.file, into: target, expectedDigest: pulled.digest).directory
        }
        if options.json {
            struct Result: Encodable {
                var name: String
                var version: String
                var digest: String
                var manifestDigest: String
                var directory: String
                var file: String
                var reusedCache: Bool
                var signatures: SignatureRow
            }
            try Output.json(Result(
                name: pulled.manifest.name, version: "\(pulled.manifest.version)", digest: pulled.digest, manifestDigest: pulled.manifestDigest,
                directory: directory.path, file: pulled.file.path, reusedCache: pulled.reusedCache, signatures: SignatureRow(pulled.signatures)))
        } else {
            Output.line(directory.path)
        }
    }
}
