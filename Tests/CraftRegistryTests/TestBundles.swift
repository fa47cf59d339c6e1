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
