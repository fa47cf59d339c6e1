import ArgumentParser
import CraftBundles
import CraftRegistry
import Foundation

/// `craft-registry pack DIR`: make a reproducible `.craft` file from a bundle directory.
struct RegistryPackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Pack a bundle directory (craft.json and the files it lists) into NAME-VERSION.craft.",
        discussion: """
            Sizes and sha256 of every file are computed into the manifest; an encoder's codebook \
            hash is recomputed and packing is refused when the declared one differs. The same \
            inputs always give the same bytes. See docs/bundle-format.md.

            Examples (from the repository root):
              craft-registry pack examples/bundles/digits-vq --output-directory dist
              craft-registry pack examples/bundles/digits-vq -o dist/digits-vq.craft --json
            """)

    @OptionGroup var options: RegistryOptions

    @Argument(help: "A directory holding craft.json and the files it lists.")
    var directory: String

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The .craft file to write.", valueName: "file"))
    var output: String?

    @Option(help: ArgumentHelp("Write NAME-VERSION.craft into this directory.", valueName: "dir"))
    var outputDirectory: String?

    func validate() throws {
        if output != nil, outputDirectory != nil {
            throw ValidationError("give either --output FILE or --output-directory DIR, not both.")
        }
    }

    func run() throws {
        let source = URL(fileURLWithPath: directory)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CommandError(.notFound, "\(source.path) is not a directory; give the bundle directory that holds craft.json")
        }
        let packed = try ProgressLine.run("packing \(source.lastPathComponent)", bytes: Self.directorySize(source)) {
            if let outputDirectory {
                return try Self.pack(source, intoDirectory: URL(fileURLWithPath: outputDirectory))
            }
            return try BundleArchive.pack(directory: source, to: output.map { URL(fileURLWithPath: $0) })
        }
        if options.json {
            struct Result: Encodable {
                var file: String
                var name: String
                var version: String
                var kind: String
                var digest: String
                var size: Int64
            }
            try Output.json(Result(
                file: packed.url.path, name: packed.manifest.name, version: packed.manifest.version.description,
                kind: packed.manifest.kind.rawValue, digest: packed.digest, size: packed.size))
        } else {
            Output.line("Packed \(packed.manifest.name)@\(packed.manifest.version) → \(packed.url.path) (\(Output.size(packed.size)), \(packed.digest))")
        }
    }

    /// Packs into `folder/NAME-VERSION.craft` (created when missing). The packer writes a scratch
    /// file next to the output and renames it into place, replacing only a regular file: a device node,
    /// FIFO, socket, symbolic link or directory at the output path is refused.
    static func pack(_ source: URL, intoDirectory folder: URL) throws -> PackedBundle {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw CommandError(.other, "cannot create the output directory \(folder.path) (\(error.localizedDescription)); check that its parent is writable")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CommandError(.other, "\(folder.path) is not a directory; give --output-directory a directory")
        }
        return try BundleArchive.pack(directory: source, to: folder)
    }

    static func directorySize(_ directory: URL) -> Int64 {
        guard let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.fileSizeKey]) else { return 0 }
        var total: Int64 = 0
        for case let url as URL in walker {
            total += Int64((try? url.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0)
        }
        return total
    }
}
