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

            Examples:
              craft-registry pack encoders/clinical-vq
              craft-registry pack encoders/clinical-vq -o dist/clinical-vq.craft
              craft-registry pack encoders/clinical-vq --output-directory dist --json
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

    /// Packs into `folder/NAME-VERSION.craft`: the name is known only once the manifest has been
    /// read by the packer, so pack to a temporary name in the folder, then rename (atomic).
    static func pack(_ source: URL, intoDirectory folder: URL) throws -> PackedBundle {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temporary = folder.appendingPathComponent(".craft-pack-\(UUID().uuidString).craft")
        defer { try? FileManager.default.removeItem(at: temporary) }
        var packed = try BundleArchive.pack(directory: source, to: temporary)
        let final = folder.appendingPathComponent("\(packed.manifest.name)-\(packed.manifest.version).craft")
        guard rename(temporary.path, final.path) == 0 else {
            throw CommandError(.other, "cannot move the packed bundle into place as \(final.path); check that \(folder.path) is writable")
        }
        packed.url = final
        return packed
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
