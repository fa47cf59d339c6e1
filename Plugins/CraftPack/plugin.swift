// `swift package craft-pack [DIR ...] [--output-directory DIR] [--configuration debug|release]`: packs Craft
// bundle directories of a package through the `craft-registry pack` executable. With no DIR, packs every
// directory under the package that holds a `craft.json`.
//
// The plugin asks the package manager to build `craft-registry` (release unless `--configuration debug`)
// instead of declaring it as the plugin's tool: a declared tool is built a second time for the host by every
// `swift build`, which doubled the build of Craft and of every package depending on it.
import Foundation
import PackagePlugin

@main
struct CraftPack: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) async throws {
        var extractor = ArgumentExtractor(arguments)
        let outputOption = extractor.extractOption(named: "output-directory").last
        let configurationOption = extractor.extractOption(named: "configuration").last ?? "release"
        let directories = extractor.remainingArguments
        let root = context.package.directoryURL
        let outputDirectory = outputOption.map { URL(fileURLWithPath: $0, relativeTo: root) }
            ?? root.appending(path: "bundles")

        let configuration: PackageManager.BuildConfiguration
        switch configurationOption {
        case "release": configuration = .release
        case "debug": configuration = .debug
        default:
            Diagnostics.error("craft-pack: --configuration must be debug or release, not '\(configurationOption)'")
            return
        }
        let inputs: [URL] = directories.isEmpty
            ? findBundleDirectories(under: root)
            : directories.map { URL(fileURLWithPath: $0, relativeTo: root) }
        if inputs.isEmpty {
            Diagnostics.error("craft-pack: no directory holding a craft.json was found; name one: swift package craft-pack DIR")
            return
        }
        guard let tool = try buildCraftRegistry(configuration: configuration) else { return }
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        for directory in inputs {
            let process = Process()
            process.executableURL = tool
            process.arguments = ["pack", directory.path, "--output-directory", outputDirectory.path]
            try process.run()
            process.waitUntilExit()
            if process.terminationReason != .exit || process.terminationStatus != 0 {
                Diagnostics.error("craft-pack: packing \(directory.path) failed (exit \(process.terminationStatus)); see the message above")
            }
        }
    }

    /// Builds the `craft-registry` product (a no-op when it is up to date) and returns its executable.
    private func buildCraftRegistry(configuration: PackageManager.BuildConfiguration) throws -> URL? {
        // The build's progress is shown (echoLogs): a first release build takes minutes.
        let result = try packageManager.build(
            .product("craft-registry"), parameters: .init(configuration: configuration, logging: .concise, echoLogs: true))
        guard result.succeeded else {
            Diagnostics.error("craft-pack: building craft-registry failed; the build's messages are above")
            return nil
        }
        guard let executable = result.builtArtifacts.first(where: {
            $0.kind == .executable && $0.url.lastPathComponent == "craft-registry"
        }) else {
            Diagnostics.error("craft-pack: the build of craft-registry produced no craft-registry executable")
            return nil
        }
        return executable.url
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
