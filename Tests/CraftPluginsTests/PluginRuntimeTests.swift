// Runtime plugins over craft.runtime/v1 (docs/runtime-protocol.md): the Python example plugin
// against the built-in runtime, and plugins made to misbehave, each a clear error within its time
// limit with no process left behind.
import CraftBundles
import CraftCore
import CraftImaging
import Foundation
import RuntimeTestSupport
import TensorCore
import Testing

@testable import CraftPlugins
@testable import CraftRuntimes

/// The repository root, the Python of the peers' environment (numpy), and plugin scaffolding.
enum PluginFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let numpyPlugin = root.appendingPathComponent("examples/runtime-plugin-python/craft-runtime-numpy-siglip-vq")
    static let digitsEncoder = root.appendingPathComponent("registry/bundles/digits-siglip-vq/digits-siglip-vq-1.1.0.craft")

    /// `.build/peers-venv`'s python, with numpy (scripts/ensure-python-peers.sh installs it once).
    static let python: String = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [root.appendingPathComponent("scripts/ensure-python-peers.sh").path]
        let output = Pipe()
        process.standardOutput = output
        try? process.run()
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    /// Writes `craft-runtime-ID` into `directory`: a shell script, or Python run by the peers' python.
    static func install(_ id: String, in directory: URL, shell: String? = nil, python source: String? = nil) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let executable = directory.appendingPathComponent(PluginSearchPath.executableName(for: id))
        if let shell {
            try "#!/bin/sh\n\(shell)\n".write(to: executable, atomically: true, encoding: .utf8)
        } else if let source {
            let script = directory.appendingPathComponent("\(id).py")
            try source.write(to: script, atomically: true, encoding: .utf8)
            try "#!/bin/sh\nexec \"\(python)\" \"\(script.path)\" \"$@\"\n".write(to: executable, atomically: true, encoding: .utf8)
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: executable.path)
    }

    /// The digits SigLIP-VQ encoder unpacked with its runtime id changed to `runtime`.
    static func encoder(runtime: String, in scratch: Scratch) throws -> UnpackedBundle {
        let original = try BundleArchive.unpack(digitsEncoder, into: scratch.path("original-\(runtime)"))
        let directory = scratch.path("plugin-bundle-\(runtime)")
        try FileManager.default.copyItem(at: original.directory, to: directory)
        let manifestURL = directory.appendingPathComponent("craft.json")
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as! [String: Any]
        manifest["runtime"] = ["id": runtime, "version": "1.0.0"]
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]).write(to: manifestURL)
        return try BundleArchive.open(directory: directory)
    }

    static func registry(path: URL, timeouts: PluginTimeouts = PluginTimeouts()) -> RuntimeRegistry {
        var registry = RuntimeRegistry.craftDefault
        registry.resolver = PluginRuntimes(searchPath: PluginSearchPath(environment: ["CRAFT_RUNTIME_PATH": path.path]), timeouts: timeouts)
        return registry
    }

    /// Processes whose command starts with `craft-runtime` that are children of this process
    /// (running or zombies).
    static func leftoverPlugins() -> [String] {
        let me = getpid()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard Int32(entry) != nil, let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8) else { return nil }
            // pid (comm) state ppid ...
            guard let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return nil }
            let command = String(stat[stat.index(after: open)..<close])
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == me, command.hasPrefix("craft-runtime") || command.hasPrefix("craft-runtime-") else { return nil }
            return "\(entry) \(command) \(fields[0])"
        }
    }
}

@Suite("Runtime plugins: the Python example plugin against the built-in runtime")
struct PluginRuntimeTests {
    /// The numpy plugin, found on CRAFT_RUNTIME_PATH, encodes the digits images to the codes Craft's
    /// own siglip-vq runtime gives the same bundle, through the same pipeline types.
    @Test("the numpy SigLIP-VQ plugin gives the built-in runtime's codes")
    func numpyPluginEqualsBuiltIn() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try PluginFixtures.install("numpy-siglip-vq", in: scratch.path("plugins"),
                                   shell: "exec \"\(PluginFixtures.python)\" \"\(PluginFixtures.numpyPlugin.path)\" \"$@\"")
        let registry = PluginFixtures.registry(path: scratch.path("plugins"))
        let pluginBundle = try PluginFixtures.encoder(runtime: "numpy-siglip-vq", in: scratch)
        let builtInBundle = try BundleArchive.unpack(PluginFixtures.digitsEncoder, into: scratch.path("built-in"))
        #expect(registry.isRegistered(runtime: "numpy-siglip-vq", version: "1.0.0", role: .encoder))

        let plugin = try registry.loadEncoder(pluginBundle)
        let builtIn = try registry.loadEncoder(builtInBundle)
        #expect(plugin is PluginEncoder)
        #expect(plugin.codebook.hash == builtIn.codebook.hash && plugin.grid == builtIn.grid)
        let images = try (0..<6).map { index in
            try ImageInput.rgbImage(contentsOf: PluginFixtures.root.appendingPathComponent(String(format: "examples/data/digits/images/strong/%04d.png", index)))
        }
        let pixels = Tensor.concatenated(try images.map { try builtIn.preprocess($0).unsqueezed(0) }, along: 0)
        #expect(try plugin.preprocess(images[0]).scalars == builtIn.preprocess(images[0]).scalars)
        let ours = try plugin.encode(pixels), theirs = try builtIn.encode(pixels)
        #expect(ours.count == 6)
        for (a, b) in zip(ours, theirs) {
            #expect(a.codes.scalars == b.codes.scalars)
            #expect(a.codebookHash == b.codebookHash && a.positions == b.positions)
            let norms = zip(a.residualNorms, b.residualNorms).map { abs($0 - $1) }.max() ?? 1
            #expect(norms < 1e-3, "residual norms differ by \(norms)")
            // The plugin's vectors are Craft's codebook rows; the built-in runtime's are the
            // straight-through z_e + (z_q − z_e), the same rows up to float rounding.
            let vectors = zip(a.features?.scalars ?? [], b.features?.scalars ?? []).map { abs($0 - $1) }.max() ?? 1
            #expect(vectors < 1e-5 && a.features?.shape == b.features?.shape, "vectors differ by \(vectors)")
        }
        // A second call reuses the same process.
        #expect(try plugin.encode(pixels).map(\.codes.scalars) == theirs.map(\.codes.scalars))
    }
}
