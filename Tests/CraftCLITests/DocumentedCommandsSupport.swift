import Foundation
import RuntimeTestSupport
import Testing

/// Runs commands the documentation shows, as a reader would type them from the repository root: in
/// one bash session per block (so `cd`, variables and `&` carry from one line to the next), with the
/// built `craft` and `craft-registry` first on PATH, in a sandbox holding a copy of `registry/` and
/// the repository's `examples/` and `Tests/` (read-only links), with its own HOME and cache.
struct DocumentedCommands {
    /// One command's exit status and output (stdout and stderr together, as a terminal shows them).
    struct Outcome {
        var command: String
        var status: Int32
        var output: String
    }

    let scratch: Scratch
    let root: URL

    init() throws {
        scratch = try Scratch()
        root = scratch.path("repository")
        let package = RegistryTool.packageRoot
        try FileManager.default.createDirectory(at: root.appendingPathComponent("home"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: package.appendingPathComponent("registry"), to: root.appendingPathComponent("registry"))
        for linked in ["examples", "Tests", "docs", "README.md", "Package.swift"] {
            try FileManager.default.createSymbolicLink(
                at: root.appendingPathComponent(linked), withDestinationURL: package.appendingPathComponent(linked))
        }
    }

    func remove() { scratch.remove() }

    /// The directory holding the built tools (the test bundle's own build).
    static var toolDirectory: URL? {
        RegistryTool.builtExecutable(named: "craft", override: "CRAFT_EXECUTABLE")?.deletingLastPathComponent()
    }

    /// Runs `commands` in order in one bash session started in the sandbox's repository root.
    /// A command ending in `&` runs in the background, and the next one waits (up to 120 s) until the
    /// session has printed `waitFor` for it, as a reader waits for a server's "listening" line;
    /// background jobs are stopped (SIGTERM) when the session ends. The whole session has `timeout`
    /// seconds.
    func run(_ commands: [String], waitFor: [String?]? = nil, timeout: TimeInterval = 600) throws -> [Outcome] {
        let marker = "@@craft-doc-\(UUID().uuidString)@@"
        let log = scratch.path("session-\(UUID().uuidString).log")
        var script = "cd \(Self.quoted(root.path)) || exit 99\nexec 2>&1\n"
        for (index, command) in commands.enumerated() {
            script += "printf '\\n\(marker) start \(index)\\n'\n\(command)\nprintf '\\n\(marker) status %d\\n' $?\n"
            if command.hasSuffix("&"), let line = waitFor?[index] {
                script += "for i in $(seq 1 1200); do grep -qF -- \(Self.quoted(line)) \(Self.quoted(log.path)) && break; sleep 0.1; done\n"
            }
        }
        script += "jobs -p | xargs -r kill -TERM 2>/dev/null; wait\n"
        let process = Process()
        // Its own process group (setsid execs bash in place), so nothing it started outlives it.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        process.arguments = ["/bin/bash", "--noprofile", "--norc", "-c", script]
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = [Self.toolDirectory?.path, environment["PATH"]].compactMap { $0 }.joined(separator: ":")
        environment["HOME"] = root.appendingPathComponent("home").path
        for name in ["CRAFT_REGISTRY", "CRAFT_CACHE", "CRAFT_RUNTIME_PATH"] { environment[name] = nil }
        environment["COLUMNS"] = "100"
        process.environment = environment
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            kill(-process.processIdentifier, SIGKILL)
            Issue.record("the documented commands did not finish within \(Int(timeout)) s: \(commands)")
        }
        process.waitUntilExit()
        kill(-process.processIdentifier, SIGKILL)
        try handle.close()
        let text = String(decoding: try Data(contentsOf: log), as: UTF8.self)
        return Self.outcomes(of: text, marker: marker, commands: commands)
    }

    /// Splits the session's output at the markers into one outcome per command.
    static func outcomes(of text: String, marker: String, commands: [String]) -> [Outcome] {
        var outcomes: [Outcome] = []
        var current: (index: Int, lines: [Substring])?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(marker + " start ") {
                current = (Int(line.dropFirst(marker.count + 7)) ?? 0, [])
            } else if line.hasPrefix(marker + " status "), let open = current {
                let status = Int32(line.dropFirst(marker.count + 8)) ?? -1
                var lines = open.lines
                if lines.last?.isEmpty == true { lines.removeLast() }  // the marker's own leading newline
                outcomes.append(Outcome(command: commands[open.index], status: status, output: lines.joined(separator: "\n")))
                current = nil
            } else if current != nil {
                current?.lines.append(line)
            } else if !outcomes.isEmpty, !line.isEmpty {
                // Printed between two commands (a background server while the next one waits for it).
                outcomes[outcomes.count - 1].output += "\n" + line
            }
        }
        return outcomes
    }

    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// A line as the comparison sees it: timings (`102.2 ms`, `3.1 s`, `12 items/s`) masked, runs of
    /// spaces (table alignment) as one, spaces at the ends dropped.
    static func stable(_ line: some StringProtocol) -> String {
        var text = String(line).trimmingCharacters(in: .whitespaces)
        text = text.replacingOccurrences(of: #"\s+"#, with: " ", options: .regularExpression)
        for pattern in [#"\d+(\.\d+)? ?ms\b"#, #"\d+(\.\d+)? ?s\b"#, #"\d+(\.\d+)? items/s"#] {
            text = text.replacingOccurrences(of: pattern, with: "<time>", options: .regularExpression)
        }
        return text
    }

    /// Whether `output` shows `expected`: a line with `…` matches any text in its place; every other
    /// line must appear as it is (after ``stable(_:)``). Order is not compared: stdout and stderr
    /// interleave differently when piped.
    static func shows(_ output: String, line expected: String) -> Bool {
        let wanted = stable(expected)
        let lines = output.split(separator: "\n").map { stable($0) }
        if wanted.contains("…") {
            let pieces = wanted.components(separatedBy: "…").map { $0.trimmingCharacters(in: .whitespaces) }
            let pattern = "^" + pieces.map(NSRegularExpression.escapedPattern(for:)).joined(separator: ".*") + "$"
            return lines.contains { $0.range(of: pattern, options: .regularExpression) != nil }
        }
        return lines.contains(wanted)
    }
}
