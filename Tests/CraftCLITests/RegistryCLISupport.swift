import CraftBundles
import CraftCore
import Foundation
import SafeTensors

/// Runs the built `craft-registry` executable, as a person would (argument-parser's
/// `AssertExecuteCommand` style), capturing stdout, stderr and the exit status.
enum RegistryTool {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String

        /// stdout parsed as a JSON object.
        func json() throws -> [String: Any] {
            guard let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
                throw CocoaError(.coderReadCorrupt)
            }
            return object
        }
    }

    /// The package root, from this file's path (Tests/CraftCLITests/…).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `craft-registry` executable built by `swift build --build-tests` (which `make test` runs first).
    static var executable: URL? { builtExecutable(named: "craft-registry", override: "CRAFT_REGISTRY_EXECUTABLE") }

    /// A built executable of this package (`craft` or `craft-registry`): `$override` when set, else next
    /// to the test bundle (`.build/<triple>/debug/CraftPackageTests.xctest`), else `.build/{debug,release}`.
    static func builtExecutable(named name: String, override: String? = nil) -> URL? {
        var candidates: [URL] = []
        if let override, let explicit = ProcessInfo.processInfo.environment[override] {
            candidates.append(URL(fileURLWithPath: explicit))
        }
        candidates.append(Bundle.main.bundleURL.appendingPathComponent(name))
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name))
        for configuration in ["debug", "release"] {
            candidates.append(packageRoot.appendingPathComponent(".build/\(configuration)/\(name)"))
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// Runs `craft-registry ARGS` in `directory` with a clean environment: HOME and CRAFT_CACHE point
    /// into the scratch directory, CRAFT_REGISTRY is unset unless given.
    static func run(
        _ arguments: [String], in directory: URL, environment extra: [String: String] = [:]
    ) throws -> Result {
        guard let executable else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "craft-registry is not built; run swift build --build-tests"])
        }
        let process = try start(executable, arguments, in: directory, environment: extra)
        process.process.waitUntilExit()
        return process.finish()
    }

    struct Running {
        var process: Process
        var stdoutURL: URL
        var stderrURL: URL

        func finish() -> Result {
            process.waitUntilExit()
            let out = (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? ""
            let err = (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(at: stdoutURL)
            try? FileManager.default.removeItem(at: stderrURL)
            return Result(status: process.terminationStatus, stdout: out, stderr: err)
        }
    }

    /// Starts the tool without waiting (for concurrency tests). Output goes to files, so no pipe can fill up.
    static func start(
        _ executable: URL, _ arguments: [String], in directory: URL, environment extra: [String: String] = [:]
    ) throws -> Running {
        var environment = ProcessInfo.processInfo.environment
        environment["CRAFT_REGISTRY"] = nil
        environment["HOME"] = directory.appendingPathComponent("home").path
        environment["CRAFT_CACHE"] = directory.appendingPathComponent("cache").path
        for (key, value) in extra { environment[key] = value }
        let stdoutURL = directory.appendingPathComponent(".out-\(UUID().uuidString)")
        let stderrURL = directory.appendingPathComponent(".err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return Running(process: process, stdoutURL: stdoutURL, stderrURL: stderrURL)
    }
}

/// Writes small but real bundle directories (craft.json and its files) for the CLI tests; `pack`
/// fills in sizes and sha256, and recomputes the encoder's codebook hash from its tensor.
enum CLIBundles {
    static func codebookValues(seed: Int) -> [Float] {
        (0..<12).map { Float(($0 * 7 + seed * 13) % 17) / 4 - 2 }
    }

    static func codebookHash(seed: Int) throws -> String {
        try CodebookHash.compute(values: codebookValues(seed: seed), entries: 4, dimension: 3, depth: 1, metric: .l2)
    }

    /// The `codebook` tensor [4, 3] as an F32 safetensors file.
    static func writeCodebook(seed: Int, to url: URL) throws {
        var writer = SafeTensorsWriter()
        try writer.add("codebook", floats: codebookValues(seed: seed), shape: [4, 3])
        try writer.write(to: url)
    }

    /// Writes a bundle directory named `name` under `parent`.
    @discardableResult
    static func directory(
        in parent: URL, name: String, version: String, kind: BundleKind, seed: Int = 0,
        summary: String? = nil, domains: [String] = [], note: String = ""
    ) throws -> URL {
        let directory = parent.appendingPathComponent("\(name)-\(version)-src")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let hash = try codebookHash(seed: seed)
        var manifest: [String: Any] = [
            "schema": "craft.bundle/v1", "kind": kind.rawValue, "name": name, "version": version,
            "summary": summary ?? "Test \(kind.rawValue) \(name)", "domains": domains, "license": "MIT",
        ]
        switch kind {
        case .encoder:
            try writeCodebook(seed: seed, to: directory.appendingPathComponent("codebook.safetensors"))
            try Data("features \(note)\n".utf8).write(to: directory.appendingPathComponent("features.txt"))
            manifest["runtime"] = ["id": "table-encoder", "version": "1.0.0"]
            manifest["codebook"] = [
                "hash": hash, "entries": 4, "dim": 3, "depth": 1, "metric": "l2",
                "tensor": ["file": "codebook.safetensors", "name": "codebook"],
            ] as [String: Any]
            manifest["files"] = [["path": "codebook.safetensors"], ["path": "features.txt"]]
            manifest["encoder"] = ["image_size": 8, "tokens_per_image": 4]
        case .backend:
            try Data("answers \(note)\n".utf8).write(to: directory.appendingPathComponent("answers.txt"))
            manifest["runtime"] = ["id": "table-backend", "version": "1.0.0"]
            manifest["codebook"] = ["hash": hash, "entries": 4, "dim": 3, "depth": 1, "metric": "l2"] as [String: Any]
            manifest["files"] = [["path": "answers.txt"]]
            manifest["backend"] = ["context_length": 64]
        }
        let data = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: directory.appendingPathComponent("craft.json"))
        return directory
    }
}

extension CLIBundles {
    /// An encoder `.craft` whose craft.json declares `declaredHash` (another bundle's codebook) over its
    /// own 32×16 codebook tensor. `pack` would refuse it, so it is written with the system `tar`;
    /// every archive check passes, only the hash is a lie.
    static func lyingEncoder(in parent: URL, name: String, version: String, declaredHash: String) throws -> URL {
        let directory = parent.appendingPathComponent("lie-\(name)-\(version)-src")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var writer = SafeTensorsWriter()
        try writer.add("codebook", floats: (0..<(32 * 16)).map { Float(($0 * 7) % 23) / 5 - 2 }, shape: [32, 16])
        try writer.write(to: directory.appendingPathComponent("codebook.safetensors"))
        try Data("features of \(name)\n".utf8).write(to: directory.appendingPathComponent("features.txt"))
        let files = ["codebook.safetensors", "features.txt"]
        let manifest: [String: Any] = [
            "schema": "craft.bundle/v1", "kind": "encoder", "name": name, "version": version,
            "summary": "An encoder claiming another codebook", "domains": [String](), "license": "MIT",
            "runtime": ["id": "table-encoder", "version": "1.0.0"],
            "codebook": [
                "hash": declaredHash, "entries": 32, "dim": 16, "depth": 1, "metric": "l2",
                "tensor": ["file": "codebook.safetensors", "name": "codebook"],
            ] as [String: Any],
            "encoder": ["image_size": 8, "tokens_per_image": 4],
            "files": try files.map { path -> [String: Any] in
                let url = directory.appendingPathComponent(path)
                return ["path": path, "size": try Data(contentsOf: url).count,
                        "sha256": String(try BundleArchive.digest(of: url).dropFirst(7))]
            },
        ]
        try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys, .prettyPrinted])
            .write(to: directory.appendingPathComponent("craft.json"))
        let output = parent.appendingPathComponent("\(name)-\(version)-lie.craft")
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar", "--format=ustar", "--owner=0", "--group=0", "--numeric-owner", "-czf", output.path,
                         "-C", directory.path, "craft.json"] + files
        try tar.run()
        tar.waitUntilExit()
        guard tar.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
        return output
    }
}
