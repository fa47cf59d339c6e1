import CraftBundles
import CraftCore
import Foundation
@testable import CraftRegistry

/// A unique scratch directory, removed by `remove()`.
struct Scratch {
    let url: URL

    init(_ label: String = "registry") throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("craft-\(label)-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(at: url)
    }

    func path(_ component: String) -> URL { url.appendingPathComponent(component) }
}

/// Small, real bundles for the registry tests: packed with `BundleArchive.pack` from directories
/// written here. Encoders carry a real codebook tensor whose declared hash is recomputed by pack.
enum TestBundles {
    /// A deterministic K×D codebook; `seed` changes every value, so different seeds give different hashes.
    static func codebookValues(entries: Int = 4, dimension: Int = 3, seed: Int = 0) -> [Float] {
        (0..<(entries * dimension)).map { Float(($0 * 7 + seed * 13) % 17) / 4 - 2 }
    }

    static func codebookHash(seed: Int, entries: Int = 4, dimension: Int = 3) throws -> String {
        try CodebookHash.compute(
            values: codebookValues(entries: entries, dimension: dimension, seed: seed), entries: entries,
            dimension: dimension, depth: 1, metric: .l2)
    }

    /// Writes a one-tensor F32 safetensors file (8-byte little-endian header length, JSON header
    /// padded with spaces to a multiple of 8, raw data), enough for a test codebook.
    static func writeSafeTensors(name: String, values: [Float], shape: [Int], to url: URL) throws {
        let byteCount = values.count * 4
        var header = "{\"\(name)\":{\"dtype\":\"F32\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[0,\(byteCount)]}}"
        while header.utf8.count % 8 != 0 { header += " " }
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        for value in values {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        }
        try data.write(to: url)
    }

    /// Writes a bundle directory (craft.json plus its files) and returns it.
    static func directory(
        in parent: URL, name: String, version: String, kind: BundleKind, seed: Int = 0,
        summary: String? = nil, domains: [String] = [], runtime: String? = nil, extra: String = ""
    ) throws -> URL {
        let directory = parent.appendingPathComponent("src-\(name)-\(version)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var files: [BundleFileEntry] = []
        func add(_ path: String, _ data: Data) throws {
            let url = directory.appendingPathComponent(path)
            try data.write(to: url)
            files.append(BundleFileEntry(path: path, size: Int64(data.count), sha256: String(try BundleArchive.digest(of: url).dropFirst(7))))
        }
        let hash = try codebookHash(seed: seed)
        var tensor: TensorReference?
        switch kind {
        case .encoder:
            let url = directory.appendingPathComponent("codebook.safetensors")
            try writeSafeTensors(name: "codebook", values: codebookValues(seed: seed), shape: [4, 3], to: url)
            files.append(BundleFileEntry(
                path: "codebook.safetensors", size: Int64(try Data(contentsOf: url).count),
                sha256: String(try BundleArchive.digest(of: url).dropFirst(7))))
            tensor = TensorReference(file: "codebook.safetensors", name: "codebook")
            try add("features.txt", Data("features of \(name) \(version) \(extra)\n".utf8))
        case .backend:
            try add("answers.txt", Data("answers of \(name) \(version) \(extra)\n".utf8))
        }
        let manifest = BundleManifest(
            kind: kind, name: name, version: try SemanticVersion(parsing: version),
            summary: summary ?? "Test \(kind.rawValue) \(name)", domains: domains, license: "MIT",
            runtime: RuntimeReference(
                id: runtime ?? (kind == .encoder ? "table-encoder" : "table-backend"),
                version: SemanticVersion(major: 1, minor: 0, patch: 0)),
            codebook: CodebookDescriptor(hash: hash, entries: 4, dimension: 3, depth: 1, metric: .l2, tensor: tensor),
            files: files.sorted { $0.path < $1.path },
            encoder: kind == .encoder ? EncoderSpecifics(imageSize: 8, tokensPerImage: 4) : nil,
            backend: kind == .backend ? BackendSpecifics(contextLength: 64) : nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(manifest).write(to: directory.appendingPathComponent("craft.json"))
        return directory
    }

    /// A packed `.craft` file in `parent`.
    static func packed(
        in parent: URL, name: String, version: String, kind: BundleKind, seed: Int = 0,
        summary: String? = nil, domains: [String] = [], runtime: String? = nil, extra: String = ""
    ) throws -> URL {
        let source = try directory(
            in: parent, name: name, version: version, kind: kind, seed: seed, summary: summary, domains: domains,
            runtime: runtime, extra: extra)
        let output = parent.appendingPathComponent("\(name)-\(version)-\(UUID().uuidString.prefix(8)).craft")
        return try BundleArchive.pack(directory: source, to: output).url
    }
}

extension TestBundles {
    /// An encoder `.craft` whose craft.json lies about its codebook: a 32×16 codebook tensor under
    /// `declaredHash` (another bundle's hash). Written with the system `tar`, since `pack` recomputes
    /// the hash and would refuse it; every other check of the archive passes.
    static func lyingEncoder(in parent: URL, name: String, version: String, declaredHash: String) throws -> URL {
        let directory = parent.appendingPathComponent("lie-\(name)-\(version)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try writeSafeTensors(
            name: "codebook", values: codebookValues(entries: 32, dimension: 16, seed: 5), shape: [32, 16],
            to: directory.appendingPathComponent("codebook.safetensors"))
        try Data("features of \(name)\n".utf8).write(to: directory.appendingPathComponent("features.txt"))
        return try tarBundle(
            directory, files: ["codebook.safetensors", "features.txt"],
            manifest: [
                "schema": "craft.bundle/v1", "kind": "encoder", "name": name, "version": version,
                "summary": "An encoder claiming another codebook", "domains": [String](), "license": "MIT",
                "runtime": ["id": "table-encoder", "version": "1.0.0"],
                "codebook": [
                    "hash": declaredHash, "entries": 32, "dim": 16, "depth": 1, "metric": "l2",
                    "tensor": ["file": "codebook.safetensors", "name": "codebook"],
                ] as [String: Any],
                "encoder": ["image_size": 8, "tokens_per_image": 4],
            ],
            to: parent.appendingPathComponent("\(name)-\(version)-lie-\(UUID().uuidString.prefix(8)).craft"))
    }

    /// Writes `manifest` (with `files` filled in: size and sha256 of each) as craft.json and packs it
    /// first, then `files`, with `tar -czf`.
    static func tarBundle(_ directory: URL, files: [String], manifest: [String: Any], to output: URL) throws -> URL {
        var manifest = manifest
        manifest["files"] = try files.map { path -> [String: Any] in
            let url = directory.appendingPathComponent(path)
            return ["path": path, "size": try Data(contentsOf: url).count,
                    "sha256": String(try BundleArchive.digest(of: url).dropFirst(7))]
        }
        try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys, .prettyPrinted])
            .write(to: directory.appendingPathComponent("craft.json"))
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

/// Process ids for scratch-sweeping tests: one of a process that has exited, one of a live process.
enum TestProcesses {
    /// The pid of a child that was started and waited for: no process has it (until reused).
    static func deadPID() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["true"]
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    /// A live child (`sleep 60`); terminate it when done.
    static func liveProcess() throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sleep", "60"]
        try process.run()
        return process
    }
}
