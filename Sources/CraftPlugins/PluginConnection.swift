// craft.runtime/v1 over a plugin's stdin and stdout: JSON lines, each followed by the binary frames
// of the tensors it names (docs/runtime-protocol.md, schema docs/craft.runtime.v1.schema.json).
import CraftBundles
import Foundation

/// The protocol version Craft speaks.
public let runtimeProtocolVersion = "craft.runtime/v1"

/// How long a plugin may take, in seconds (docs/runtime-protocol.md, "Time limits").
public struct PluginTimeouts: Sendable, Equatable {
    /// From start to its `hello`: 30 s by default (the most the protocol allows).
    public var handshake: TimeInterval = 30
    /// To load a bundle: 300 s by default.
    public var load: TimeInterval = 300
    /// For each call (`encode`): 300 s by default.
    public var call: TimeInterval = 300

    public init(handshake: TimeInterval = 30, load: TimeInterval = 300, call: TimeInterval = 300) {
        self.handshake = min(handshake, 30)
        self.load = load
        self.call = call
    }

    /// The defaults, with `CRAFT_RUNTIME_TIMEOUT` (seconds, for loads and calls) when set.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> PluginTimeouts {
        var timeouts = PluginTimeouts()
        if let text = environment["CRAFT_RUNTIME_TIMEOUT"], let seconds = TimeInterval(text), seconds > 0 {
            timeouts.load = seconds
            timeouts.call = seconds
        }
        return timeouts
    }
}

/// A tensor sent or received as a binary frame: little-endian float32 or int32 values, row-major.
struct PluginTensor {
    enum DataType: String { case float32, int32 }
    var name: String
    var dataType: DataType
    var shape: [Int]
    var bytes: [UInt8]

    init(name: String, floats: [Float], shape: [Int]) {
        self.name = name
        dataType = .float32
        self.shape = shape
        bytes = floats.withUnsafeBytes { Array($0) }
    }

    init(name: String, dataType: DataType, shape: [Int], bytes: [UInt8]) {
        self.name = name
        self.dataType = dataType
        self.shape = shape
        self.bytes = bytes
    }

    var count: Int { shape.reduce(1, *) }
    var floats: [Float] { bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
    var integers: [Int32] { bytes.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) } }
    var descriptor: [String: Any] { ["name": name, "dtype": dataType.rawValue, "shape": shape] }
}

/// What a plugin offers, from its `hello`.
public struct PluginOffer: Sendable, Equatable {
    public var id: String
    public var kind: BundleKind
    public var version: String
    public var summary: String
}

/// The limits on what a plugin may send (docs/runtime-protocol.md).
enum PluginLimits {
    /// The longest JSON line: 1 MiB.
    static let lineBytes = 1 << 20
    /// The most tensors after one line.
    static let tensors = 16
    /// The largest frame: 1 GiB.
    static let frameBytes = 1 << 30
    /// The most dimensions of a tensor.
    static let rank = 8
}

/// One plugin process and the protocol spoken with it: the handshake, then requests in turn.
final class PluginConnection: @unchecked Sendable {
    let process: PluginProcess
    let timeouts: PluginTimeouts
    /// The plugin's `hello`: what it offers.
    private(set) var offers: [PluginOffer] = []
    private(set) var pluginName = ""
    private(set) var pluginVersion = ""

    var name: String { process.executable.lastPathComponent }

    /// Starts `executable` (working directory `directory`) and shakes hands.
    init(executable: URL, directory: URL?, timeouts: PluginTimeouts) throws(PluginError) {
        process = try PluginProcess(executable: executable, directory: directory)
        self.timeouts = timeouts
        let deadline = Date().addingTimeInterval(timeouts.handshake)
        try send(["type": "hello", "protocol": runtimeProtocolVersion], deadline: deadline, doing: "shaking hands")
        let (hello, _) = try receive("hello", deadline: deadline, doing: "shaking hands")
        guard let version = hello["protocol"] as? String, version == runtimeProtocolVersion else {
            throw process.failure(.protocolViolation, "the runtime plugin \(name) speaks \((hello["protocol"] as? String).map { "protocol \"\($0)\"" } ?? "no protocol version"); Craft speaks \(runtimeProtocolVersion)")
        }
        pluginName = hello["plugin"] as? String ?? name
        pluginVersion = hello["version"] as? String ?? "?"
        guard let runtimes = hello["runtimes"] as? [[String: Any]], !runtimes.isEmpty else {
            throw process.failure(.protocolViolation, "the runtime plugin \(name) offers no runtimes in its hello (\"runtimes\": [{\"id\", \"kind\", \"version\"}])")
        }
        for runtime in runtimes {
            guard let id = runtime["id"] as? String, let kindName = runtime["kind"] as? String, let kind = BundleKind(rawValue: kindName),
                  let version = runtime["version"] as? String, SemanticVersion(version) != nil else {
                throw process.failure(.protocolViolation, "the runtime plugin \(name) describes a runtime without a valid id, kind (encoder or backend) and version in its hello")
            }
            offers.append(PluginOffer(id: id, kind: kind, version: version, summary: runtime["summary"] as? String ?? ""))
        }
    }

    /// Stops the plugin: `shutdown`, then end of input, then signals; always reaped. Idempotent: a
    /// plugin already stopped (after a failure) is not written to again.
    func shutdown() {
        process.lock.lock()
        defer { process.lock.unlock() }
        if !process.isStopped {
            try? send(["type": "shutdown"], deadline: Date().addingTimeInterval(1), doing: "shutting down")
        }
        process.stop()
    }

    /// Sends `message` and returns the answer of type `expected`, one request at a time.
    func request(_ message: [String: Any], tensors: [PluginTensor] = [], expecting expected: String, timeout: TimeInterval,
                 doing: String) throws(PluginError) -> (fields: [String: Any], tensors: [PluginTensor]) {
        process.lock.lock()
        defer { process.lock.unlock() }
        let deadline = Date().addingTimeInterval(timeout)
        try send(message, tensors: tensors, deadline: deadline, doing: doing)
        return try receive(expected, deadline: deadline, doing: doing)
    }

    // MARK: Framing

    private func send(_ message: [String: Any], tensors: [PluginTensor] = [], deadline: Date, doing: String) throws(PluginError) {
        var object = message
        if !tensors.isEmpty { object["tensors"] = tensors.map(\.descriptor) }
        guard var line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            throw PluginError(.protocolViolation, "cannot encode a message for the runtime plugin \(name)")
        }
        line.append(UInt8(ascii: "\n"))
        var bytes = [UInt8](line)
        for tensor in tensors {
            withUnsafeBytes(of: UInt64(tensor.bytes.count).littleEndian) { bytes += $0 }
            bytes += tensor.bytes
        }
        try process.write(bytes, deadline: deadline, while: doing)
    }

    private func receive(_ expected: String, deadline: Date, doing: String) throws(PluginError) -> (fields: [String: Any], tensors: [PluginTensor]) {
        let line = try process.readLine(limit: PluginLimits.lineBytes, deadline: deadline, while: doing)
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(line)), let object = parsed as? [String: Any],
              let type = object["type"] as? String else {
            let shown = String(decoding: line.prefix(120), as: UTF8.self)
            throw process.failure(.protocolViolation, "the runtime plugin \(name) wrote \"\(shown)\" while \(doing), which is not a craft.runtime/v1 message (one JSON object with a \"type\" per line)")
        }
        if type == "error" {
            // The plugin's own error: it stays running for the next request.
            let message = (object["message"] as? String).map { String($0.prefix(2000)) } ?? "no message"
            throw PluginError(.pluginFailed, "the runtime plugin \(name) failed while \(doing): \(message)")
        }
        guard type == expected else {
            throw process.failure(.protocolViolation, "the runtime plugin \(name) answered \"\(type)\" while \(doing); craft.runtime/v1 expects \"\(expected)\"")
        }
        var tensors: [PluginTensor] = []
        if let descriptors = object["tensors"] {
            guard let list = descriptors as? [[String: Any]], list.count <= PluginLimits.tensors else {
                throw process.failure(.protocolViolation, "the runtime plugin \(name) sent a \"tensors\" field that is not a list of at most \(PluginLimits.tensors) descriptors")
            }
            for descriptor in list {
                guard let tensorName = descriptor["name"] as? String, let typeName = descriptor["dtype"] as? String,
                      let dataType = PluginTensor.DataType(rawValue: typeName), let shape = descriptor["shape"] as? [Int],
                      shape.count <= PluginLimits.rank, shape.allSatisfy({ $0 >= 0 }) else {
                    throw process.failure(.protocolViolation, "the runtime plugin \(name) described a tensor without a name, a dtype (float32 or int32) and a shape of at most \(PluginLimits.rank) non-negative sizes")
                }
                var count = 1
                for size in shape {
                    let (product, overflow) = count.multipliedReportingOverflow(by: size)
                    guard !overflow, product <= PluginLimits.frameBytes / 4 else {
                        throw process.failure(.protocolViolation, "the runtime plugin \(name) announced a tensor \"\(tensorName)\" of shape \(shape), over the \(PluginLimits.frameBytes)-byte frame limit")
                    }
                    count = product
                }
                let header = try process.readBytes(8, deadline: deadline, while: doing)
                let length = header.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                guard length == UInt64(count * 4) else {
                    throw process.failure(.protocolViolation, "the runtime plugin \(name) sent a frame of \(length) bytes for the tensor \"\(tensorName)\" of shape \(shape), which needs \(count * 4)")
                }
                let bytes = try process.readBytes(count * 4, deadline: deadline, while: doing)
                tensors.append(PluginTensor(name: tensorName, dataType: dataType, shape: shape, bytes: bytes))
            }
        }
        return (object, tensors)
    }
}
