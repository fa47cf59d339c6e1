// Sharded checkpoints: `model.safetensors.index.json` (`weight_map`: tensor name -> shard file),
// as written by transformers' `save_pretrained` and huggingface_hub.
import CraftFiles
import Foundation

/// A checkpoint split over several safetensors files, described by an index JSON file.
///
/// Opening validates the index and every shard it names, and checks that every tensor in
/// `weight_map` exists in its shard. Tensors a shard holds but the index does not list are not
/// served (the index is the checkpoint's table of contents).
///
/// ```swift
/// let weights = try ShardedSafeTensors(indexAt: dir.appendingPathComponent("model.safetensors.index.json"))
/// let q = try weights.floats("model.layers.0.self_attn.q_proj.weight")
/// ```
public struct ShardedSafeTensors: Sendable {
    /// The index file's location.
    public let url: URL
    /// The index's `metadata` map; non-string values (e.g. `total_size`) as their JSON text.
    public let metadata: [String: String]
    /// The shard file for each tensor name.
    public let weightMap: [String: String]
    /// Every tensor name in the index, sorted by UTF-8 bytes.
    public let names: [String]
    private let shards: [String: SafeTensorsFile]

    /// Opens the index at `url` and every shard it names (relative to the index's directory).
    ///
    /// - Throws: ``SafeTensorsError`` with `invalidIndex` for a malformed index or a shard path that
    ///   leaves the directory, `notFound` for a missing shard or a tensor missing in its shard, or
    ///   any error from validating a shard.
    public init(indexAt url: URL, options: SafeTensorsReadOptions = .init()) throws {
        self.url = url
        let path = url.path
        func invalid(_ what: String) -> SafeTensorsError {
            SafeTensorsError(.invalidIndex, file: path, message: "\(path): \(what); regenerate the index or fix it by hand.")
        }
        // Check the size before reading, so a hostile multi-gigabyte "index" is never loaded.
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = (attributes[.size] as? NSNumber)?.intValue, size > options.maximumHeaderBytes
        {
            throw SafeTensorsError(
                .headerTooLarge, file: path,
                message: "\(path) is \(size) bytes, over the \(options.maximumHeaderBytes)-byte limit for an index; the file is not a safetensors index.")
        }
        let data: Data
        do {
            data = try BoundedFile.read(url, limit: options.maximumHeaderBytes)
        } catch {
            let code: SafeTensorsError.Code = error == .notFound ? .notFound : .io
            throw SafeTensorsError(
                code, file: path, message: "Cannot read the safetensors index \(path): \(error.localizedDescription)",
                cause: error)
        }
        guard data.count <= options.maximumHeaderBytes else {
            throw SafeTensorsError(
                .headerTooLarge, file: path,
                message: "\(path) is \(data.count) bytes, over the \(options.maximumHeaderBytes)-byte limit for an index; the file is not a safetensors index.")
        }
        guard isValidUTF8(data) else { throw invalid("the index is not valid UTF-8") }
        // Parsed in place: no second copy of the (up to 100 MB) index.
        let parsed: Result<JSONNode, JSONParseError> = data.withUnsafeBytes { bytes in
            do throws(JSONParseError) { return .success(try JSONParser.parse(bytes)) } catch { return .failure(error) }
        }
        let root: JSONNode
        do {
            root = try parsed.get()
        } catch {
            throw invalid("the index is not valid JSON (\(error.reason) at byte \(error.offset))")
        }
        guard case .object(let members) = root else { throw invalid("the index is \(root.kindName), not a JSON object") }

        var metadata: [String: String] = [:]
        var weightMap: [String: String] = [:]
        var sawWeightMap = false
        for (key, value) in members {
            switch key {
            case "metadata":
                guard case .object(let pairs) = value else { throw invalid("\"metadata\" is \(value.kindName), not an object") }
                for (metadataKey, item) in pairs {
                    switch item {
                    case .string(let text): metadata[metadataKey] = text
                    case .number(let literal): metadata[metadataKey] = literal
                    case .bool(let flag): metadata[metadataKey] = flag ? "true" : "false"
                    default: throw invalid("\"metadata\" key '\(metadataKey)' holds \(item.kindName), not a string or number")
                    }
                }
            case "weight_map":
                guard !sawWeightMap else { throw invalid("\"weight_map\" appears twice") }
                sawWeightMap = true
                guard case .object(let pairs) = value else { throw invalid("\"weight_map\" is \(value.kindName), not an object") }
                for (name, item) in pairs {
                    guard case .string(let shard) = item else {
                        throw SafeTensorsError(
                            .invalidIndex, file: path, tensor: name,
                            message: "\(path): \"weight_map\" entry '\(name)' holds \(item.kindName), not a shard file name.")
                    }
                    guard weightMap.updateValue(shard, forKey: name) == nil else {
                        throw SafeTensorsError(
                            .duplicate, file: path, tensor: name,
                            message: "\(path): tensor '\(name)' appears twice in \"weight_map\"; fix the index.")
                    }
                }
            default:
                continue  // unknown keys are kept out of the way, as transformers does
            }
        }
        guard sawWeightMap else { throw invalid("the index has no \"weight_map\" object") }

        let directory = url.deletingLastPathComponent()
        var shards: [String: SafeTensorsFile] = [:]
        for shard in Set(weightMap.values).sorted() {
            guard Self.isSafeShardName(shard) else {
                let name = weightMap.first { $0.value == shard }?.key
                throw SafeTensorsError(
                    .invalidIndex, file: path, tensor: name,
                    message: "\(path): shard '\(shard)' is not a plain file name in the index's directory (no '/', '\\', '..' or empty names); the index is unsafe to follow.")
            }
            let shardURL = directory.appendingPathComponent(shard)
            guard FileManager.default.fileExists(atPath: shardURL.path) else {
                let users = weightMap.filter { $0.value == shard }.keys.sorted(by: utf8Less)
                throw SafeTensorsError(
                    .notFound, file: shardURL.path, tensor: users.first,
                    message: "\(path) maps \(users.count) tensor(s), e.g. '\(users.first ?? "")', to shard \(shard), which does not exist in \(directory.path); download the missing shard.")
            }
            shards[shard] = try SafeTensorsFile(contentsOf: shardURL, options: options)
        }
        for (name, shard) in weightMap.sorted(by: { utf8Less($0.key, $1.key) }) {
            guard let file = shards[shard], file.contains(name) else {
                throw SafeTensorsError(
                    .notFound, file: directory.appendingPathComponent(shard).path, tensor: name,
                    message: "\(path) maps tensor '\(name)' to shard \(shard), but that shard does not hold it; the index and shards disagree: re-download or regenerate them.")
            }
        }
        self.metadata = metadata
        self.weightMap = weightMap
        self.names = weightMap.keys.sorted(by: utf8Less)
        self.shards = shards
    }

    /// The shard files, sorted by name.
    public var shardNames: [String] { shards.keys.sorted() }

    /// The opened shard called `name` (a file name from ``weightMap``).
    public func shard(named name: String) -> SafeTensorsFile? { shards[name] }

    private static func isSafeShardName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\\")
            && !name.contains("\0")
    }

    private func file(for name: String) throws(SafeTensorsError) -> SafeTensorsFile {
        guard let shard = weightMap[name], let file = shards[shard] else {
            throw notFoundError(name: name, names: names, container: url.path)
        }
        return file
    }
}

extension ShardedSafeTensors: SafeTensorsSource {
    public func contains(_ name: String) -> Bool { weightMap[name] != nil }
    public func info(_ name: String) throws -> SafeTensorInfo { try file(for: name).info(name) }
    public func floats(_ name: String) throws -> [Float] { try file(for: name).floats(name) }
    public func mapped(_ name: String) throws -> MappedTensor { try file(for: name).mapped(name) }
    public func int64s(_ name: String) throws -> [Int64] { try file(for: name).int64s(name) }
    public func int32s(_ name: String) throws -> [Int32] { try file(for: name).int32s(name) }
    public func bytes(_ name: String) throws -> Data { try file(for: name).bytes(name) }
}
