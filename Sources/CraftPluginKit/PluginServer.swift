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

/// One segment of a prompt Craft sends a backend, in prompt order.
public enum PluginPromptSegment {
    /// Text for the backend's tokenizer.
    case text(String)
    /// Token ids of the backend's vocabulary.
    case tokens([Int])
    /// An image: its codes (`count × depth`, row-major) and, when the encoder gives them, its
    /// vectors in the codebook's space (`count × dimension`), which the model projects as its bundle's
    /// projector says.
    case visual(codes: [Int32], count: Int, depth: Int, vectors: [Float]?, dimension: Int)
}

/// How Craft asks a backend to generate (`GenerationOptions` in Craft).
public struct PluginGenerationOptions {
    /// The most tokens to generate.
    public var maximumTokens: Int
    /// Softmax temperature; 0 is greedy decoding.
    public var temperature: Double
    /// Sample among the `topK` most likely tokens (0: no limit).
    public var topK: Int
    /// The sampling seed.
    public var seed: UInt64
    /// Stop when any of these appears in the text (it is not returned).
    public var stopSequences: [String]

    public init(maximumTokens: Int = 32, temperature: Double = 0, topK: Int = 0, seed: UInt64 = 0, stopSequences: [String] = []) {
        self.maximumTokens = maximumTokens
        self.temperature = temperature
        self.topK = topK
        self.seed = seed
        self.stopSequences = stopSequences
    }
}

/// Why a generation ended.
public enum PluginFinishReason: String {
    /// The model's end-of-sequence token.
    case endOfSequence = "eos"
    /// A stop sequence.
    case stopSequence = "stop"
    /// `maximumTokens` were generated.
    case length
    /// The context window is full.
    case contextFull = "context"
}

/// What a backend generated: the text, its token ids and why it ended.
public struct PluginGeneration {
    public var text: String
    public var tokens: [Int]
    public var finishReason: PluginFinishReason

    public init(text: String, tokens: [Int], finishReason: PluginFinishReason) {
        self.text = text
        self.tokens = tokens
        self.finishReason = finishReason
    }
}

/// What a loaded backend model does: tokenize, detokenize and answer prompts with images.
///
/// Craft checks what comes back: token ids non-negative, no more than `maximumTokens` of them.
public protocol PluginBackendModel {
    func tokenize(_ text: String) throws -> [Int]
    func detokenize(_ tokens: [Int]) throws -> String
    func generate(_ prompt: [PluginPromptSegment], options: PluginGenerationOptions) throws -> PluginGeneration
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

/// Serves encoder and backend runtimes over craft.runtime/v1 on the process's stdin and stdout until
/// Craft sends `shutdown` or closes stdin. One process serves one loaded model.
///
/// ```swift
/// var server = PluginServer(plugin: "my-models", version: "1.0.0")
/// server.encoder("my-vq", version: "1.0.0", summary: "my VQ encoder") { request in
///     try MyEncoder(directory: request.directory)      // any PluginEncoderModel
/// }
/// server.backend("my-llm", version: "1.0.0", summary: "my language model") { request in
///     try MyBackend(directory: request.directory)      // any PluginBackendModel
/// }
/// server.run()
/// ```
public struct PluginServer {
    public static let protocolVersion = "craft.runtime/v1"

    private let plugin: String
    private let version: String
    private enum Loader {
        case encoder((PluginLoadRequest) throws -> any PluginEncoderModel)
        case backend((PluginLoadRequest) throws -> any PluginBackendModel)

        var kind: String {
            switch self {
            case .encoder: "encoder"
            case .backend: "backend"
            }
        }
    }

    private enum Loaded {
        case encoder(any PluginEncoderModel)
        case backend(any PluginBackendModel)
    }

    private var runtimes: [(id: String, version: String, summary: String, load: Loader)] = []

    public init(plugin: String, version: String) {
        self.plugin = plugin
        self.version = version
    }

    /// Offers the encoder runtime `id` at `version`, built by `load` for each bundle Craft loads.
    public mutating func encoder(_ id: String, version: String, summary: String = "",
                                 load: @escaping (PluginLoadRequest) throws -> any PluginEncoderModel) {
        runtimes.append((id, version, summary, .encoder(load)))
    }

    /// Offers the backend runtime `id` at `version`, built by `load` for each bundle Craft loads.
    public mutating func backend(_ id: String, version: String, summary: String = "",
                                 load: @escaping (PluginLoadRequest) throws -> any PluginBackendModel) {
        runtimes.append((id, version, summary, .backend(load)))
    }

    /// Answers Craft's requests until `shutdown` or the end of stdin. Anything the handlers throw is
    /// sent to Craft as an `error` message; protocol errors end the process with status 2.
    public func run() {
        let input = FileHandle.standardInput, output = FileHandle.standardOutput
        var reader = FrameReader(handle: input)
        var model: Loaded?
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
                                   "runtimes": runtimes.map { ["id": $0.id, "kind": $0.load.kind, "version": $0.version, "summary": $0.summary] }],
                                  to: output)
                case "load":
                    guard let id = message["runtime"] as? String, let runtime = runtimes.first(where: { $0.id == id }),
                          let directory = message["directory"] as? String else {
                        throw PluginFailure("this plugin offers no runtime \(message["runtime"] ?? "?")")
                    }
                    let request = PluginLoadRequest(runtime: id, directory: URL(fileURLWithPath: directory),
                                                    manifest: message["manifest"] as? [String: Any] ?? [:])
                    switch runtime.load {
                    case .encoder(let load):
                        let loaded = try load(request)
                        model = .encoder(loaded)
                        try Self.send(["type": "loaded", "grid": [loaded.grid.rows, loaded.grid.columns]], to: output)
                    case .backend(let load):
                        model = .backend(try load(request))
                        try Self.send(["type": "loaded"], to: output)
                    }
                case "encode":
                    guard case .encoder(let model) = model else { throw PluginFailure("encode without a loaded encoder") }
                    guard let pixels = tensors["pixels"] else { throw PluginFailure("encode without a pixels tensor") }
                    let values = pixels.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                    let (codes, norms) = try model.encode(pixels: values, shape: pixels.shape)
                    let batch = pixels.shape.first ?? 0, tokens = model.grid.rows * model.grid.columns
                    let depth = batch * tokens == 0 ? 1 : codes.count / (batch * tokens)
                    try Self.send(["type": "encoded"], tensors: [
                        ("codes", "int32", [batch, tokens, depth], codes.withUnsafeBytes { Data($0) }),
                        ("residual_norms", "float32", [batch, tokens], norms.withUnsafeBytes { Data($0) }),
                    ], to: output)
                case "tokenize":
                    guard case .backend(let model) = model else { throw PluginFailure("tokenize without a loaded backend") }
                    guard let text = message["text"] as? String else { throw PluginFailure("tokenize without text") }
                    try Self.send(["type": "tokenized", "tokens": try model.tokenize(text)], to: output)
                case "detokenize":
                    guard case .backend(let model) = model else { throw PluginFailure("detokenize without a loaded backend") }
                    guard let tokens = message["tokens"] as? [Int] else { throw PluginFailure("detokenize without token ids") }
                    try Self.send(["type": "detokenized", "text": try model.detokenize(tokens)], to: output)
                case "generate":
                    guard case .backend(let model) = model else { throw PluginFailure("generate without a loaded backend") }
                    let generated = try model.generate(try Self.segments(message, tensors), options: Self.options(message["options"]))
                    try Self.send(["type": "generated", "text": generated.text, "tokens": generated.tokens,
                                   "finish_reason": generated.finishReason.rawValue], to: output)
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

    /// The prompt of a `generate` message, each visual segment with its frames.
    private static func segments(_ message: [String: Any], _ tensors: [String: (shape: [Int], bytes: Data)]) throws -> [PluginPromptSegment] {
        guard let segments = message["segments"] as? [[String: Any]] else { throw PluginFailure("generate without segments") }
        return try segments.map { segment in
            if let text = segment["text"] as? String { return .text(text) }
            if let tokens = segment["tokens"] as? [Int] { return .tokens(tokens) }
            guard let index = segment["visual"] as? Int else { throw PluginFailure("a segment that is neither text, tokens nor visual") }
            let codes = tensors["codes.\(index)"], vectors = tensors["vectors.\(index)"]
            guard let count = (codes ?? vectors)?.shape.first else { throw PluginFailure("visual segment \(index) without frames") }
            let depth = codes.flatMap { $0.shape.count == 2 ? $0.shape[1] : nil } ?? 0
            let dimension = vectors.flatMap { $0.shape.count == 2 ? $0.shape[1] : nil } ?? 0
            return .visual(codes: codes.map { $0.bytes.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) } } ?? [],
                           count: count, depth: depth,
                           vectors: vectors.map { $0.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } },
                           dimension: dimension)
        }
    }

    private static func options(_ value: Any?) -> PluginGenerationOptions {
        let options = value as? [String: Any] ?? [:]
        return PluginGenerationOptions(
            maximumTokens: options["max_tokens"] as? Int ?? 32, temperature: options["temperature"] as? Double ?? 0,
            topK: options["top_k"] as? Int ?? 0, seed: (options["seed"] as? NSNumber)?.uint64Value ?? 0,
            stopSequences: options["stop"] as? [String] ?? [])
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
