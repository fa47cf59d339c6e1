// The plugin side of craft.runtime/v1 for Swift plugin authors: the protocol loop on stdin and
// stdout, so a plugin is its model and a few lines of `main` (docs/runtime-protocol.md).
import Foundation

/// What a loaded encoder model does: encode preprocessed pixels into codes.
///
/// Craft preprocesses the images (the bundle's image size, mean and std) and checks every code and
/// shape returned; the model returns, for a batch of `B` images of `rows × columns` tokens, the codes
/// `[B, rows · columns, depth]` (row-major grid order) and `‖z_e − z_q‖` per token `[B, rows · columns]`.
public protocol PluginEncoderModel {
    /// The patch grid.
    var grid: (rows: Int, columns: Int) { get }
    /// Encodes `pixels` (float32, `[B, 3, H, W]` row-major, `shape` gives the sizes).
    func encode(pixels: [Float], shape: [Int]) throws -> (codes: [Int32], residualNorms: [Float])
}

/// What Craft sends with `load`: the unpacked bundle (read-only) and its manifest.
public struct PluginLoadRequest {
    /// The runtime id the bundle names.
    public var runtime: String
    /// The unpacked, verified bundle directory; its files are read-only.
    public var directory: URL
    /// The bundle's craft.json, parsed.
    public var manifest: [String: Any]
}

/// An error a plugin reports to Craft: the message is shown to the user, the plugin keeps serving.
public struct PluginFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Serves encoder runtimes over craft.runtime/v1 on the process's stdin and stdout until Craft sends
/// `shutdown` or closes stdin.
///
/// ```swift
/// var server = PluginServer(plugin: "my-encoders", version: "1.0.0")
/// server.encoder("my-vq", version: "1.0.0", summary: "my VQ encoder") { request in
///     try MyEncoder(directory: request.directory)      // any PluginEncoderModel
/// }
/// server.run()
/// ```
public struct PluginServer {
    public static let protocolVersion = "craft.runtime/v1"

    private let plugin: String
    private let version: String
    private var runtimes: [(id: String, version: String, summary: String, load: (PluginLoadRequest) throws -> any PluginEncoderModel)] = []

    public init(plugin: String, version: String) {
        self.plugin = plugin
        self.version = version
    }

    /// Offers the encoder runtime `id` at `version`, built by `load` for each bundle Craft loads.
    public mutating func encoder(_ id: String, version: String, summary: String = "",
                                 load: @escaping (PluginLoadRequest) throws -> any PluginEncoderModel) {
        runtimes.append((id, version, summary, load))
    }

    /// Answers Craft's requests until `shutdown` or the end of stdin. Anything the handlers throw is
    /// sent to Craft as an `error` message; protocol errors end the process with status 2.
    public func run() {
        let input = FileHandle.standardInput, output = FileHandle.standardOutput
        var reader = FrameReader(handle: input)
        var model: (any PluginEncoderModel)?
        while true {
            let message: [String: Any]
            let tensors: [String: (shape: [Int], bytes: Data)]
            do {
                guard let received = try reader.next() else { return }
                (message, tensors) = received
            } catch {
                FileHandle.standardError.write(Data("\(plugin): \(error)\n".utf8))
                exit(2)
            }
            do {
                switch message["type"] as? String {
                case "hello":
                    try Self.send(["type": "hello", "protocol": Self.protocolVersion, "plugin": plugin, "version": version,
                                   "runtimes": runtimes.map { ["id": $0.id, "kind": "encoder", "version": $0.version, "summary": $0.summary] }],
                                  to: output)
                case "load":
                    guard let id = message["runtime"] as? String, let runtime = runtimes.first(where: { $0.id == id }),
                          let directory = message["directory"] as? String else {
                        throw PluginFailure("this plugin offers no runtime \(message["runtime"] ?? "?")")
                    }
                    let loaded = try runtime.load(PluginLoadRequest(runtime: id, directory: URL(fileURLWithPath: directory),
                                                                    manifest: message["manifest"] as? [String: Any] ?? [:]))
                    model = loaded
                    try Self.send(["type": "loaded", "grid": [loaded.grid.rows, loaded.grid.columns]], to: output)
                case "encode":
                    guard let model else { throw PluginFailure("encode before load") }
                    guard let pixels = tensors["pixels"] else { throw PluginFailure("encode without a pixels tensor") }
                    let values = pixels.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                    let (codes, norms) = try model.encode(pixels: values, shape: pixels.shape)
                    let batch = pixels.shape.first ?? 0, tokens = model.grid.rows * model.grid.columns
                    let depth = batch * tokens == 0 ? 1 : codes.count / (batch * tokens)
                    try Self.send(["type": "encoded"], tensors: [
                        ("codes", "int32", [batch, tokens, depth], codes.withUnsafeBytes { Data($0) }),
                        ("residual_norms", "float32", [batch, tokens], norms.withUnsafeBytes { Data($0) }),
                    ], to: output)
                case "shutdown":
                    return
                case let other:
                    throw PluginFailure("unknown message \(other ?? "without a type")")
                }
            } catch {
                FileHandle.standardError.write(Data("\(plugin): \(error)\n".utf8))
                try? Self.send(["type": "error", "message": "\(error)"], to: output)
            }
        }
    }

    private static func send(_ message: [String: Any], tensors: [(String, String, [Int], Data)] = [], to output: FileHandle) throws {
        var object = message
        if !tensors.isEmpty { object["tensors"] = tensors.map { ["name": $0.0, "dtype": $0.1, "shape": $0.2] } }
        var data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        data.append(UInt8(ascii: "\n"))
        for (_, _, _, bytes) in tensors {
            withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { data.append(contentsOf: $0) }
            data.append(bytes)
        }
        try output.write(contentsOf: data)
    }
}

/// Reads craft.runtime/v1 messages (a JSON line, then its frames) from a blocking handle.
struct FrameReader {
    let handle: FileHandle
    var buffer = Data()

    init(handle: FileHandle) { self.handle = handle }

    /// The next message, or `nil` at the end of input.
    mutating func next() throws -> ([String: Any], [String: (shape: [Int], bytes: Data)])? {
        guard let line = try readLine() else { return nil }
        guard let message = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            throw PluginFailure("a line that is not a JSON object")
        }
        var tensors: [String: (shape: [Int], bytes: Data)] = [:]
        for descriptor in message["tensors"] as? [[String: Any]] ?? [] {
            let header = try read(8)
            let length = header.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            tensors[descriptor["name"] as? String ?? ""] = (descriptor["shape"] as? [Int] ?? [], try read(Int(length)))
        }
        return (message, tensors)
    }

    /// Appends what is available (blocking until something is); `false` at the end of input.
    private mutating func fill() throws -> Bool {
        let chunk = handle.availableData
        guard !chunk.isEmpty else { return false }
        buffer.append(chunk)
        return true
    }

    private mutating func readLine() throws -> Data? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                buffer = Data(buffer[buffer.index(after: newline)...])
                return Data(line)
            }
            guard try fill() else { return nil }
        }
    }

    private mutating func read(_ count: Int) throws -> Data {
        while buffer.count < count {
            guard try fill() else { throw PluginFailure("the input ended inside a frame") }
        }
        let bytes = Data(buffer.prefix(count))
        buffer = Data(buffer.dropFirst(count))
        return bytes
    }
}
