// What both benchmarks share: their options' reader, the peer's Python, and the setup error.
import CraftCore
import Foundation
import TensorCore

/// A failure of the benchmark's own setup.
struct BenchmarkError: Error, CustomStringConvertible {
    let description: String
    /// A bad option (exit 64) rather than a failure while running (exit 1).
    var isUsage = false
    init(_ description: String, usage: Bool = false) {
        self.description = description
        isUsage = usage
    }
}

/// Reads `--flag value` options in order (the benchmarks take a handful of numeric options).
struct BenchmarkArguments {
    private var iterator: IndexingIterator<[String]>
    init(_ arguments: [String]) { iterator = arguments.makeIterator() }

    mutating func next() -> String? { iterator.next() }

    /// The value after `flag`, a positive integer.
    mutating func positiveInteger(after flag: String) throws -> Int {
        guard let text = iterator.next(), let number = Int(text), number > 0 else {
            throw BenchmarkError("\(flag) needs a positive integer", usage: true)
        }
        return number
    }

    /// The value after `flag`, a comma-separated list of positive thread counts such as `1,2`.
    mutating func threadCounts(after flag: String) throws -> [Int] {
        let list = (iterator.next() ?? "").split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
        guard !list.isEmpty else { throw BenchmarkError("\(flag) needs a list like 1,2", usage: true) }
        return list
    }
}

/// The Python that runs the peers: `$CRAFT_PYTHON`, else the reference environment `.venv-ref`
/// (docs/benchmarks.md) in the current directory when present, else `python3` on the PATH.
let peerPython: String = {
    if let explicit = ProcessInfo.processInfo.environment["CRAFT_PYTHON"] { return explicit }
    let local = FileManager.default.currentDirectoryPath + "/.venv-ref/bin/python"
    if FileManager.default.isExecutableFile(atPath: local) { return local }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    let found = path.split(separator: ":").map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    return found ?? "python3"
}()

/// The path of a peer script `Benchmarks/peers/<name>`: next to this source file when it is there (a
/// build from this checkout), else relative to the current directory.
func peerScript(_ name: String) -> String {
    let nextToSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("peers/" + name).path
    return FileManager.default.fileExists(atPath: nextToSource) ? nextToSource : "Benchmarks/peers/" + name
}

/// This `craft-bench` executable, for measurements run in a child process of their own.
let benchmarkExecutable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])

/// Runs `executable` with `arguments` (stderr discarded) and returns the last line it printed.
///
/// - Throws: ``BenchmarkError`` naming the command when it exits non-zero.
func runChild(_ executable: URL, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let line = String(decoding: output, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
    guard process.terminationStatus == 0 else {
        throw BenchmarkError("\(executable.lastPathComponent) \(arguments.joined(separator: " ")) failed (status \(process.terminationStatus)): \(line)")
    }
    return line
}

/// scripts/static_registry_server.py serving `directory` on 127.0.0.1 (ETags and ranges), for the
/// remote-registry benchmarks.
final class StaticRegistryServer {
    let process = Process()
    let url: String

    init(root: URL, directory: URL) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root.appendingPathComponent("scripts/static_registry_server.py").path, directory.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        guard let line = String(data: output.fileHandleForReading.availableData, encoding: .utf8),
              let range = line.range(of: #"http://127\.0\.0\.1:\d+"#, options: .regularExpression) else {
            process.terminate()
            throw BenchmarkError("the static server did not start")
        }
        url = String(line[range])
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

/// The one-line results `craft-bench all` (and `make bench`) collects: `summary: NAME: TEXT`, each
/// with the ratio against the peer and the issue's target.
enum Summary {
    static let prefix = "summary: "

    static func line(_ benchmark: String, _ text: String) {
        print(prefix + benchmark + ": " + text)
    }
}

/// `craft-bench all`: every benchmark in turn, each in a child process (its own memory figures),
/// its output shown as it runs, then one summary line per result.
enum AllBenchmarks {
    /// The benchmarks in the order they run, with the peers each needs.
    static let order: [(name: String, needs: String)] = [
        ("quantize", "faiss"), ("elementwise", "-"), ("encoder", "torch, transformers"),
        ("llama", "torch, transformers"), ("train-step", "torch"), ("half", "torch, transformers"),
        ("gguf", "llama-cpp-python, gguf"), ("serve", "-"), ("plugin", "numpy"), ("pull", "curl"), ("registry-search", "-"),
    ]

    static func run(arguments: [String]) throws {
        var only: Set<String>?
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--only": only = Set((iterator.next() ?? "").split(separator: ",").map(String.init))
            default: throw BenchmarkError("unknown option \(argument); usage: craft-bench all [--only NAME,NAME]", usage: true)
            }
        }
        if let unknown = only?.subtracting(order.map(\.name)).sorted(), !unknown.isEmpty {
            throw BenchmarkError("--only names \(unknown.joined(separator: ", ")), which craft-bench all does not run; it runs \(order.map(\.name).joined(separator: ", "))", usage: true)
        }
        var summaries: [String] = []
        for (name, needs) in order where only?.contains(name) ?? true {
            print("\n=== craft-bench \(name) (peers: \(needs)) ===")
            let process = Process()
            process.executableURL = benchmarkExecutable
            process.arguments = [name]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            var pending = Data()
            var found: [String] = []
            func take(_ line: Data) {
                let text = String(decoding: line, as: UTF8.self)
                print(text)
                if text.hasPrefix(Summary.prefix) { found.append(String(text.dropFirst(Summary.prefix.count))) }
            }
            while case let chunk = pipe.fileHandleForReading.availableData, !chunk.isEmpty {
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    take(pending[pending.startIndex..<newline])
                    pending = Data(pending[(newline + 1)...])
                }
            }
            if !pending.isEmpty { take(pending) }
            process.waitUntilExit()
            if process.terminationStatus != 0 {
                found.append("\(name): failed (exit \(process.terminationStatus)); see its output above")
            } else if found.isEmpty {
                found.append("\(name): no summary line")
            }
            summaries += found
        }
        print("\n=== summary (CPU: \(HalfPrecisionBenchmark.cpuModel()); BLAS: \(BLAS.kernels.summary); Craft kernels: \(CraftKernels.summary); load average \(ModelBenchmark.loadAverage())) ===")
        for line in summaries { print(line) }
    }
}
