// Weight loading as the runtimes share it: pick the files of a Hugging Face model directory, read the
// tensors, sanitise their names (strip prefixes, drop buffers), then assign them with full key checking.
import CraftFiles
import Foundation
import SafeTensors
import TensorCore

/// How a model keeps the weights it loads from a checkpoint.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// Every weight as float32: half-precision matrices are converted at load (4 bytes per value).
    case float32
    /// Matrices as the checkpoint stores them: F16 and BF16 matrices stay in half precision (2 bytes
    /// per value, computed in float32 tile by tile); F32 ones are read in place from the mapped file.
    /// Vectors (norms, biases) are float32 either way.
    case stored
}

/// A model matrix (a linear layer's `[out, in]` weight, an embedding table): float32, or half
/// precision as the checkpoint stores it.
public enum WeightMatrix: Sendable {
    case float32(Tensor)
    case half(HalfMatrix)
    /// ggml's quantized blocks, read in place from a GGUF file (docs/gguf.md).
    case quantized(QuantizedMatrix)

    /// `[rows, columns]`.
    public var shape: [Int] {
        switch self {
        case .float32(let tensor): tensor.shape
        case .half(let matrix): matrix.shape
        case .quantized(let matrix): matrix.shape
        }
    }

    /// The bytes the values occupy in memory (or in the mapped file).
    public var byteCount: Int {
        switch self {
        case .float32(let tensor): tensor.scalarCount * 4
        case .half(let matrix): matrix.byteCount
        case .quantized(let matrix): matrix.byteCount
        }
    }

    /// The values as a float32 tensor (a conversion, and a new buffer, for half precision).
    public var floats: Tensor {
        switch self {
        case .float32(let tensor): tensor
        case .half(let matrix): matrix.floats()
        case .quantized(let matrix): matrix.floats()
        }
    }

    /// `x · selfᵀ + bias`, differentiable with respect to `x` (and to a float32 weight).
    func linear(_ x: Tensor, bias: Tensor? = nil) -> Tensor {
        switch self {
        case .float32(let weight): x.linear(weight: weight, bias: bias)
        case .half(let weight): x.linear(weight: weight, bias: bias)
        case .quantized(let weight): x.linear(weight: weight, bias: bias)
        }
    }

    /// The rows at `indices` as float32 (an embedding lookup).
    func rows(at indices: IndexTensor) throws(TensorError) -> Tensor {
        switch self {
        case .float32(let table): try table.rows(at: indices)
        case .half(let table): try table.rows(at: indices)
        case .quantized(let table): try table.rows(at: indices)
        }
    }
}

extension WeightMatrix {
    /// How `weights` are kept, for messages: `"24 bfloat16 matrices (942.0 MiB), 49 float32 tensors (0.2 MiB)"`.
    public static func summary(of weights: some Collection<WeightMatrix>) -> String {
        var groups: [String: (count: Int, bytes: Int)] = [:]
        for weight in weights {
            let kind: String
            switch weight {
            case .float32: kind = "float32 tensors"
            case .half(let matrix): kind = "\(matrix.format.rawValue) matrices"
            case .quantized(let matrix): kind = "\(matrix.format.rawValue.uppercased()) matrices"
            }
            groups[kind, default: (0, 0)].count += 1
            groups[kind, default: (0, 0)].bytes += weight.byteCount
        }
        return groups.sorted { $0.value.bytes > $1.value.bytes }
            .map { "\($0.value.count) \($0.key) (\(String(format: "%.1f", Double($0.value.bytes) / 1_048_576)) MiB)" }
            .joined(separator: ", ")
    }
}

/// The tensors a model is built from, handed out by name with a shape check; whatever is left over at
/// the end is an unexpected tensor.
struct WeightStore {
    private var weights: [String: WeightMatrix]
    private var taken: [String: WeightMatrix] = [:]
    /// Where the tensors came from, for messages (a file path or "the given weights").
    let origin: String

    init(_ tensors: [String: Tensor], origin: String) {
        self.init(loaded: tensors.mapValues { .float32($0) }, origin: origin)
    }

    /// Weights as ``ModelDirectory/weights(in:precision:sanitize:)`` loads them (`.half` entries are matrices).
    init(loaded weights: [String: WeightMatrix], origin: String) {
        self.weights = weights
        self.origin = origin
    }

    /// Takes tensor `name` as float32, checking its shape.
    mutating func take(_ name: String, shape: [Int]) throws(ModelError) -> Tensor {
        try takeMatrix(name, shape: shape).floats
    }

    /// Takes matrix `name` as stored (half precision stays half), checking its shape.
    mutating func takeMatrix(_ name: String, shape: [Int]) throws(ModelError) -> WeightMatrix {
        guard let weight = weights.removeValue(forKey: name) else {
            if taken[name] != nil {
                throw ModelError(.invalidConfiguration, "tensor '\(name)' of \(origin) was asked for twice; this is a bug in the runtime")
            }
            throw ModelError(.missingTensor,
                             "\(origin) has no tensor '\(name)' (shape \(shape)), which the configuration needs; check that config.json matches the checkpoint")
        }
        guard weight.shape == shape else {
            throw ModelError(.shapeMismatch,
                             "tensor '\(name)' in \(origin) has shape \(weight.shape) but the configuration implies \(shape); check that config.json matches the checkpoint")
        }
        taken[name] = weight
        return weight
    }

    /// Fails when a tensor was never taken.
    func checkAllUsed() throws(ModelError) {
        guard weights.isEmpty else {
            let names = weights.keys.sorted()
            let listed = names.prefix(5).map { "'\($0)'" }.joined(separator: ", ") + (names.count > 5 ? " and \(names.count - 5) more" : "")
            throw ModelError(.unexpectedTensor,
                             "\(origin) holds tensor(s) \(listed) that this model configuration does not use; check that config.json matches the checkpoint (layer count, head, tied embeddings)")
        }
    }

    /// The weights that were taken, by canonical name, as stored.
    var takenWeights: [String: WeightMatrix] { taken }

    /// The weights that were taken, as float32 tensors (half-precision ones converted).
    var takenTensors: [String: Tensor] { taken.mapValues(\.floats) }
}

/// Reading `config.json` and weights from a Hugging Face-layout model directory.
package enum ModelDirectory {
    /// The parsed `config.json` of `directory`, decoded as `T`.
    static func configuration<T: Decodable>(_ type: T.Type, in directory: URL) throws(ModelError) -> T {
        let url = directory.appendingPathComponent("config.json")
        return try decodeConfiguration(type, from: try configurationData(url), origin: url.path)
    }

    /// The bytes of a model directory's `config.json`, refused before reading when over
    /// ``ModelFileLimits/maximumConfigurationBytes``.
    package static func configurationData(_ url: URL) throws(ModelError) -> Data {
        do {
            return try BoundedFile.read(url, limit: ModelFileLimits.maximumConfigurationBytes)
        } catch .tooLarge(let size, let limit) {
            throw ModelError(
                .invalidConfiguration,
                "\(url.path) is \(size) bytes, over the \(limit)-byte limit for a model configuration; use the model's original config.json")
        } catch {
            throw ModelError(.notFound, "cannot read \(url.path) (it \(error.reason)); pass a Hugging Face-layout model directory holding config.json and model.safetensors", cause: error)
        }
    }

    /// The `config.json` of a tower that may be saved alone or inside a composite model: when the file
    /// holds `key` (for example `vision_config` of a `SiglipModel`), that sub-object is decoded and
    /// `composite` is true.
    static func towerConfiguration<T: Decodable>(
        _ type: T.Type, in directory: URL, compositeKey key: String
    ) throws(ModelError) -> (configuration: T, composite: Bool) {
        let url = directory.appendingPathComponent("config.json")
        let data = try configurationData(url)
        // One decoding pass reads the sub-object in place (no second copy of the JSON).
        let decoder = JSONDecoder()
        decoder.userInfo[TowerKey.userInfoKey] = key
        guard (try? decoder.decode(TowerPresence.self, from: data))?.present == true else {
            return (try decodeConfiguration(type, from: data, origin: url.path), false)
        }
        return (try decodeConfiguration(Composite<T>.self, from: data, origin: url.path, decoder: decoder).tower, true)
    }

    /// The key of the sub-object a ``Composite`` decodes.
    private struct TowerKey: CodingKey {
        static let userInfoKey = CodingUserInfoKey(rawValue: "craft.towerKey")!
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    /// Whether the configuration holds a non-null sub-object under the decoder's tower key.
    private struct TowerPresence: Decodable {
        let present: Bool
        init(from decoder: Swift.Decoder) throws {
            let key = TowerKey(stringValue: decoder.userInfo[TowerKey.userInfoKey] as? String ?? "")
            let container = try decoder.container(keyedBy: TowerKey.self)
            present = try container.contains(key) && !container.decodeNil(forKey: key)
        }
    }

    /// The `T` under the decoder's tower key.
    private struct Composite<T: Decodable>: Decodable {
        let tower: T
        init(from decoder: Swift.Decoder) throws {
            let key = TowerKey(stringValue: decoder.userInfo[TowerKey.userInfoKey] as? String ?? "")
            tower = try decoder.container(keyedBy: TowerKey.self).decode(T.self, forKey: key)
        }
    }

    static func decodeConfiguration<T: Decodable>(
        _ type: T.Type, from data: Data, origin: String, decoder: JSONDecoder = JSONDecoder()
    ) throws(ModelError) -> T {
        do {
            return try decoder.decode(type, from: data)
        } catch let error as ModelError {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            let path = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            throw ModelError(.invalidConfiguration, "\(origin) lacks the required field '\(path)'; add it or use the model's original config.json")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ModelError(.invalidConfiguration, "\(origin): field '\(path)' has the wrong type (\(context.debugDescription)); fix config.json")
        } catch let DecodingError.dataCorrupted(context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ModelError(.invalidConfiguration, "\(origin) is invalid\(path.isEmpty ? "" : " at '\(path)'"): \(context.debugDescription); fix config.json")
        } catch {
            throw ModelError(.invalidConfiguration, "\(origin) cannot be decoded: \(error); fix config.json", cause: error)
        }
    }

    /// Every tensor of the directory's weights, renamed by `sanitize` (which returns `nil` to drop a
    /// tensor), kept as `precision` says, with the origin to name in messages.
    static func weights(
        in directory: URL, precision: WeightPrecision = .float32, sanitize: (String) -> String?
    ) throws(ModelError) -> (weights: [String: WeightMatrix], origin: String) {
        let source: any SafeTensorsSource
        do {
            source = try openSafeTensors(directory: directory)
        } catch let error as SafeTensorsError where error.code == .notFound {
            throw ModelError(.notFound, error.message, cause: error)
        } catch {
            throw ModelError(.unreadableWeights, "cannot read the weights in \(directory.path): \((error as? LocalizedError)?.errorDescription ?? "\(error)")", cause: error)
        }
        let origin = (source as? SafeTensorsFile)?.url.path ?? directory.appendingPathComponent("model.safetensors.index.json").path
        return (try readWeights(source, origin: origin, precision: precision, sanitize: sanitize), origin)
    }

    /// The tensors of `source` renamed by `sanitize`; two names that become one are an error.
    ///
    /// Aligned F32 tensors are read in place from the mapped file (no copy); with `.stored`, aligned
    /// F16/BF16 matrices stay half precision. Everything else is converted to a float32 buffer.
    static func readWeights(
        _ source: any SafeTensorsSource, origin: String, precision: WeightPrecision, sanitize: (String) -> String?
    ) throws(ModelError) -> [String: WeightMatrix] {
        var result: [String: WeightMatrix] = [:]
        for name in source.names {
            guard let canonical = sanitize(name) else { continue }
            guard result[canonical] == nil else {
                throw ModelError(.unexpectedTensor, "\(origin) holds tensor '\(name)' twice (with and without a prefix, as '\(canonical)'); keep one copy")
            }
            do {
                let mapped = try source.mapped(name)
                let info = mapped.info
                guard info.dtype.isFloatingPoint else {
                    throw ModelError(.unreadableWeights, "tensor '\(name)' in \(origin) has integer dtype \(info.dtype.rawValue) where a model weight (floating point) is expected; check the checkpoint")
                }
                switch info.dtype {
                case .f32 where mapped.isAligned && info.byteCount > 0:
                    result[canonical] = .float32(Tensor(
                        borrowing: mapped.bytes.baseAddress!.assumingMemoryBound(to: Float.self), shape: info.shape, owner: mapped.owner))
                case .f16 where precision == .stored && info.shape.count == 2 && mapped.isAligned && info.byteCount > 0,
                     .bf16 where precision == .stored && info.shape.count == 2 && mapped.isAligned && info.byteCount > 0:
                    result[canonical] = .half(HalfMatrix(
                        format: info.dtype == .bf16 ? .bfloat16 : .float16, rows: info.shape[0], columns: info.shape[1],
                        bits: mapped.bytes.baseAddress!, owner: mapped.owner))
                default:
                    result[canonical] = .float32(Tensor(try source.floats(name), shape: info.shape))
                }
            } catch let error as ModelError {
                throw error
            } catch {
                throw ModelError(.unreadableWeights, "cannot read tensor '\(name)' in \(origin): \((error as? LocalizedError)?.errorDescription ?? "\(error)")", cause: error)
            }
        }
        return result
    }
}
