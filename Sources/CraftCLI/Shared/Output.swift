import CraftRegistry
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Printing for the command-line tools: JSON, aligned tables, warnings, progress.
enum Output {
    /// The version of every `--json` object's keys, printed as `schema_version`: it changes when a
    /// key is removed or changes meaning; keys may be added without a change (docs/cli.md).
    static let schemaVersion = 1

    /// Writes `value` as canonical JSON (sorted keys, pretty) on stdout, with `schema_version`.
    static func json<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        // snake_case like craft.json and the compatibility report.
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = try encoder.encode(Versioned(value: value))
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    /// An object's keys plus `schema_version`, at the same level.
    private struct Versioned<Value: Encodable>: Encodable {
        var value: Value
        enum Key: String, CodingKey { case schemaVersion }
        func encode(to encoder: any Encoder) throws {
            try value.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(Output.schemaVersion, forKey: .schemaVersion)
        }
    }

    /// Writes a line on stdout.
    static func line(_ text: String = "") {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Writes `warning: TEXT` on stderr.
    static func warning(_ text: String) {
        FileHandle.standardError.write(Data(("warning: " + text + "\n").utf8))
    }

    /// Writes a line on stderr.
    static func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Renders rows as columns separated by two spaces, each as wide as its widest cell (measured
    /// in characters); the last column is not padded.
    static func table(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let counts = all.map { $0.map(\.count) }  // characters, counted once (a search can print thousands of rows)
        var widths = Array(repeating: 0, count: counts.map(\.count).max() ?? 0)
        for row in counts {
            for (index, count) in row.enumerated() { widths[index] = max(widths[index], count) }
        }
        var output = ""
        output.reserveCapacity(all.count * (widths.reduce(0, +) + 2 * widths.count + 1))
        for (number, row) in all.enumerated() {
            if number > 0 { output += "\n" }
            let lineStart = output.utf8.count
            for (index, cell) in row.enumerated() {
                if index > 0 { output += "  " }
                output += cell
                if index < row.count - 1 { output += String(repeating: " ", count: widths[index] - counts[number][index]) }
            }
            // No trailing spaces (an empty last column, or a cell ending in spaces).
            while output.utf8.count > lineStart, output.utf8.last == 0x20 { output.removeLast() }
        }
        return output
    }

    /// `1.5 MB`-style sizes for people.
    static func size(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }

    /// Reports the problems a listing met (broken shards) as warnings and turns them into the exit
    /// status: the results were printed, but the registry is damaged (exit 4).
    static func finish(problems: [RegistryError]) throws {
        for problem in problems { warning(problem.message) }
        if let first = problems.first {
            throw CommandError(
                .integrity, "\(problems.count) index file\(problems.count == 1 ? "" : "s") could not be read (first: \(first.message))")
        }
    }
}

/// A one-line progress indicator on stderr for long operations, shown only when stderr is a
/// terminal and the input is large, so scripts and logs never see it.
struct ProgressLine {
    private let active: Bool

    /// Starts `text` (e.g. `verifying x.craft (1.2 GB)`) when `bytes` exceeds `threshold`.
    init(_ text: String, bytes: Int64, threshold: Int64 = 32 << 20) {
        active = bytes >= threshold && isatty(STDERR_FILENO) == 1
        if active { FileHandle.standardError.write(Data("\(text)…".utf8)) }
    }

    /// Clears the line.
    func finish() {
        if active { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    /// Runs `body` between start and finish.
    static func run<T>(_ text: String, bytes: Int64, _ body: () throws -> T) rethrows -> T {
        let line = ProgressLine(text, bytes: bytes)
        defer { line.finish() }
        return try body()
    }

    /// The size of a file, 0 when unknown.
    static func size(of url: URL) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.int64Value ?? 0
    }
}

/// Progress of a transfer (a download, or a push's upload), on stderr: redrawn in place on a
/// terminal, a line every 5 s in a log; nothing for transfers under 4 MB.
enum TransferProgress {
    private static let state = TransferProgressState()

    /// A progress callback (``RemoteRegistry/progress``, ``OCIBundles/progress``) whose lines start with `verb`.
    static func reporter(_ verb: String) -> @Sendable (String, Int64, Int64) -> Void {
        { label, received, total in
            guard total >= 4 << 20 else { return }
            state.report(verb: verb, label: label, received: received, total: total)
        }
    }
}

private final class TransferProgressState: @unchecked Sendable {
    private let lock = NSLock()
    private let terminal = isatty(STDERR_FILENO) == 1
    private var started: [String: ContinuousClock.Instant] = [:]
    private var lastLine: ContinuousClock.Instant?
    private let clock = ContinuousClock()

    func report(verb: String, label: String, received: Int64, total: Int64) {
        lock.lock()
        defer { lock.unlock() }
        let now = clock.now
        let start = started[label] ?? now
        started[label] = start
        let seconds = max((now - start).seconds, 1e-6)
        let rate = Double(received) / seconds
        let text = String(format: "%@ %@: %@ of %@ (%@/s)", verb, label, Output.size(received), Output.size(total), Output.size(Int64(rate)))
        if terminal {
            FileHandle.standardError.write(Data((received >= total ? "\r\u{1B}[K" : "\r\u{1B}[K\(text)").utf8))
        } else if received >= total || lastLine.map({ now - $0 >= .seconds(5) }) ?? true {
            lastLine = now
            Output.note(text)
        }
    }
}

/// Progress of a job over a known number of items, on stderr. On a terminal: one line redrawn in
/// place, cleared at the end. Piped (a log, CI): a line when the first items are done, then at most
/// one every `interval`, and a last line with the total time, so a log shows the job is alive
/// without filling up. Each line gives the count, the rate, the time left and the caller's detail:
/// `evaluated 40/100 items, 12.3 items/s, about 5 s left; accuracy 0.8250 so far`.
struct CountedProgress {
    private let total: Int
    private let verb: String
    private let terminal: Bool
    private let quiet: Bool
    private let interval: Duration
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant
    private var lastLine: ContinuousClock.Instant?

    init(total: Int, verb: String, quiet: Bool = false, interval: Duration = .seconds(5)) {
        self.total = total
        self.verb = verb
        self.quiet = quiet
        self.interval = interval
        terminal = isatty(STDERR_FILENO) == 1
        start = clock.now
    }

    /// Reports `done` items so far, with `detail` (such as the running accuracy).
    mutating func update(done: Int, detail: String) {
        guard !quiet else { return }
        let now = clock.now
        if terminal {
            FileHandle.standardError.write(Data("\r\u{1B}[K\(line(done: done, detail: detail, now: now))".utf8))
            return
        }
        // The last line is finish's; before it, one as soon as there is progress, then one per interval.
        guard done < total, lastLine.map({ now - $0 >= interval }) ?? true else { return }
        lastLine = now
        Output.note(line(done: done, detail: detail, now: now))
    }

    /// Ends the progress: clears the terminal line, or writes the total time in a log.
    func finish(done: Int, detail: String) {
        guard !quiet else { return }
        if terminal {
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            return
        }
        let seconds = (clock.now - start).seconds
        Output.note(String(format: "%@ %d/%d items in %.1f s (%.1f items/s); %@", verb, done, total, seconds,
                           Double(done) / max(seconds, 1e-9), detail))
    }

    private func line(done: Int, detail: String, now: ContinuousClock.Instant) -> String {
        let rate = Double(done) / max((now - start).seconds, 1e-9)
        let left = rate > 0 ? Double(total - done) / rate : 0
        return String(format: "%@ %d/%d items, %.1f items/s, about %@ left; %@", verb, done, total, rate, Output.duration(left), detail)
    }
}

extension Output {
    /// A duration for progress lines: `42s`, `3m05s`, `1h02m`.
    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        if total >= 3600 { return String(format: "%dh%02dm", total / 3600, (total % 3600) / 60) }
        if total >= 60 { return String(format: "%dm%02ds", total / 60, total % 60) }
        return "\(total)s"
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
