// `swift package craft-pack [DIR ...] [--output-directory DIR]`: packs Craft bundle directories of a package
// through the `craft-registry pack` executable. With no DIR, packs every directory under the package
// that holds a `craft.json`.
import Foundation
import PackagePlugin

@main
struct CraftPack: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) async throws {
        var extractor = ArgumentExtractor(arguments)
        let outputOption = extractor.extractOption(named: "output-directory").last
        let directories = extractor.remainingArguments
        let root = context.package.directoryURL
        let outputDirectory = outputOption.map { URL(fileURLWithPath: $0, relativeTo: root) }
            ?? root.appending(path: "bundles")

        let inputs: [URL] = directories.isEmpty
            ? findBundleDirectories(under: root)
            : directories.map { URL(fileURLWithPath: $0, relativeTo: root) }
        if inputs.isEmpty {
            Diagnostics.error("craft-pack: no directory holding a craft.json was found; name one: swift package craft-pack DIR")
            return
        }
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        let tool = try context.tool(named: "craft-registry")
        for directory in inputs {
            let process = Process()
            process.executableURL = tool.url
            process.arguments = ["pack", directory.path, "--output-directory", outputDirectory.path]
            try process.run()
            process.waitUntilExit()
            if process.terminationReason != .exit || process.terminationStatus != 0 {
                Diagnostics.error("craft-pack: packing \(directory.path) failed (exit \(process.terminationStatus)); see the message above")
            }
        }
    }

    private func findBundleDirectories(under root: URL) -> [URL] {
        let skipped: Set<String> = [".build", ".git", ".venv-ref"]
        var found: [URL] = []
        guard let walker = FileManager.default.enumerator(
            at: root, includingPropertiesForKeys: [.isDirectoryKey], options: [.skipsHiddenFiles])
        else { return [] }
        for case let url as URL in walker {
            if skipped.contains(url.lastPathComponent) || url.lastPathComponent.hasPrefix(".build") {
                walker.skipDescendants()
                continue
            }
            if url.lastPathComponent == "craft.json" {
                found.append(url.deletingLastPathComponent())
            }
        }
        return found.sorted { $0.path < $1.path }
    }
}
