// Builders for bundle directories, safetensors files and hostile archives used by the tests.
import CraftCore
import Foundation
import Testing

@testable import CraftBundles

/// A fresh temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("craft-bundles-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(at: url) }

    func path(_ relative: String) -> URL { url.appendingPathComponent(relative) }

    /// Everything under `relative` (or the whole directory), relative paths sorted, hidden files included.
    func contents(of relative: String? = nil) -> [String] {
        let root = relative.map { url.appendingPathComponent($0) } ?? url
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return [] }
        return walker.compactMap { $0 as? String }.sorted()
    }
}

/// Writes a little-endian F32 safetensors file (format: 8-byte header length, JSON header, data).
func writeSafeTensors(_ url: URL, _ tensors: [(name: String, shape: [Int], values: [Float])]) throws {
    var header: [String: Any] = [:]
    var data = Data()
    for tensor in tensors {
        let begin = data.count
        for value in tensor.values { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [begin, data.count]]
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var file = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
    file.append(json)
    file.append(data)
    try file.write(to: url)
}

/// Small deterministic codebooks.
enum Sample {
    static let entries = 8
    static let dimension = 4

    /// `[K][D]` values; every entry is distinct.
    static func codebook(scale: Float = 1) -> [Float] {
        (0..<(entries * dimension)).map { index in
            let k = index / dimension, d = index % dimension
            return scale * (Float((k * 7 + d * 3) % 11) - 5 + Float(k) * 0.125)
        }
    }

    static func hash(_ values: [Float], metric: CodebookMetric = .l2) throws -> String {
        try CodebookHash.compute(values: values, entries: entries, dimension: dimension, depth: 1, metric: metric)
    }
}

/// Writes `json` as the directory's craft.json.
func writeManifest(_ json: [String: Any], to directory: URL) throws {
    let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
    try data.write(to: directory.appendingPathComponent("craft.json"))
}

/// The feature of image `image`, token `token`: codebook entry `(3·image + token) mod K` plus a small offset.
func expectedCode(image: Int, token: Int) -> Int { (image * 3 + token) % Sample.entries }

/// Builds a table-encoder bundle directory: codebook, a feature table of 3 images × N tokens, craft.json.
@discardableResult
func makeEncoderDirectory(
    at directory: URL, name: String = "demo-encoder", version: String = "1.0.0", codebook: [Float] = Sample.codebook(),
    declaredHash: String? = nil, metric: CodebookMetric = .l2, tokensPerImage: Int = 4, edit: (inout [String: Any]) -> Void = { _ in }
) throws -> [String: Any] {
    try FileManager.default.createDirectory(at: directory.appendingPathComponent("weights"), withIntermediateDirectories: true)
    try writeSafeTensors(directory.appendingPathComponent("weights/codebook.safetensors"), [("codebook", [Sample.entries, Sample.dimension], codebook)])
    var features: [Float] = []
    for image in 0..<3 {
        for token in 0..<tokensPerImage {
            let k = expectedCode(image: image, token: token)
            for d in 0..<Sample.dimension { features.append(codebook[k * Sample.dimension + d] + 0.01 * Float(d)) }
        }
    }
    try writeSafeTensors(directory.appendingPathComponent("features.safetensors"), [("features", [3, tokensPerImage, Sample.dimension], features)])
    var json: [String: Any] = [
        "schema": "craft.bundle/v1", "kind": "encoder", "name": name, "version": version,
        "summary": "A table encoder for tests", "domains": ["testing"], "license": "MIT",
        "runtime": ["id": "table-encoder", "version": "1.0.0"],
        "codebook": [
            "hash": try declaredHash ?? Sample.hash(codebook, metric: metric), "entries": Sample.entries, "dim": Sample.dimension,
            "depth": 1, "metric": metric.rawValue, "tensor": ["file": "weights/codebook.safetensors", "name": "codebook"],
        ],
        "files": [["path": "weights/codebook.safetensors"], ["path": "features.safetensors"]],
        "config": ["features": ["file": "features.safetensors", "name": "features"]],
        "encoder": ["image_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "tokens_per_image": tokensPerImage],
        "provenance": ["method": "craft", "metrics": ["accuracy": 0.75]],
        "requires": ["craft": ">=0.1 <1.0"],
    ]
    edit(&json)
    try writeManifest(json, to: directory)
    return json
}

/// Builds a table-backend bundle directory reading the codebook with hash `hash`.
@discardableResult
func makeBackendDirectory(
    at directory: URL, name: String = "demo-backend", hash: String, entries: Int = Sample.entries, dimension: Int = Sample.dimension,
    metric: CodebookMetric = .l2, contextLength: Int = 64, answers: [String: String] = [:], runtime: String = "table-backend",
    edit: (inout [String: Any]) -> Void = { _ in }
) throws -> [String: Any] {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let table = try JSONSerialization.data(withJSONObject: ["answers": answers, "default": "I don't know."], options: [.sortedKeys])
    try table.write(to: directory.appendingPathComponent("answers.json"))
    var json: [String: Any] = [
        "schema": "craft.bundle/v1", "kind": "backend", "name": name, "version": "2.1.0",
        "summary": "A table backend for tests", "domains": ["testing"], "license": "Apache-2.0",
        "runtime": ["id": runtime, "version": "1.2.0"],
        "codebook": ["hash": hash, "entries": entries, "dim": dimension, "depth": 1, "metric": metric.rawValue],
        "files": [["path": "answers.json"]],
        "backend": ["context_length": contextLength, "prompt_template": "{image}\n{prompt}"],
    ]
    edit(&json)
    try writeManifest(json, to: directory)
    return json
}

/// Writes a gzip tar holding exactly `entries`, in order, with no checks.
func writeRawBundle(_ url: URL, _ entries: [RawTarEntry]) throws {
    let writer = try TarWriter(url: url)
    for entry in entries { try writer.addRaw(entry) }
    try writer.finish()
}

/// A valid backend manifest (JSON bytes) listing `files` with their real sizes and digests.
func manifestData(listing files: [(path: String, data: Data)], edit: (inout [String: Any]) -> Void = { _ in }) throws -> Data {
    var json: [String: Any] = [
        "schema": "craft.bundle/v1", "kind": "backend", "name": "hostile", "version": "1.0.0",
        "summary": "hostile test bundle", "license": "MIT", "runtime": ["id": "table-backend", "version": "1.0.0"],
        "codebook": ["hash": "sha256:" + String(repeating: "ab", count: 32), "entries": 8, "dim": 4, "depth": 1, "metric": "l2"],
        "files": files.map { ["path": $0.path, "size": $0.data.count, "sha256": FileDigest.sha256($0.data)] as [String: Any] },
        "backend": ["context_length": 16],
    ]
    edit(&json)
    return try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
}

/// Expects `body` to throw a ``BundleError`` with `code` (and `entry`, when given); returns it.
@discardableResult
func expectBundleError(
    _ code: BundleError.Code, entry: String? = nil, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> BundleError? {
    do {
        try body()
        Issue.record("expected a BundleError \(code), but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as BundleError {
        #expect(error.code == code, "got \(error.code): \(error.message)", sourceLocation: sourceLocation)
        if let entry {
            #expect(error.entry == entry, "entry \(error.entry ?? "nil") in: \(error.message)", sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected a BundleError \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
