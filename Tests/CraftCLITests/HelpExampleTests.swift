import ArgumentParser
import Foundation
import Testing

@testable import CraftCLI

/// Every example in every `--help` page of both tools runs as written from the repository root and
/// exits 0, and no example line is wrapped by the 80-column help layout (docs/cli.md).
@Suite("--help examples")
struct HelpExampleTests {
    /// Each help page, by the command words that print it (`["craft", "convert", "encoder"]`).
    static func pages() throws -> [[String]] {
        var pages: [[String]] = []
        func walk(_ command: ParsableCommand.Type, path: [String]) {
            let path = path + [command.configuration.commandName ?? ""]
            pages.append(path)
            for subcommand in command.configuration.subcommands { walk(subcommand, path: path) }
        }
        walk(CraftCommand.self, path: [])
        walk(RegistryCommand.self, path: [])
        return pages
    }

    /// The examples of a help page: the indented lines under a heading that starts `Example`, joined
    /// across `\` continuations, comments dropped. Also the lines that break the layout (a wrapped
    /// example continues at column 0).
    static func examples(in help: String) -> (commands: [String], wrapped: [String]) {
        var commands: [String] = [], wrapped: [String] = []
        var inExamples = false, inHeading = false, pending: String?
        for line in help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("Example") { inExamples = true; inHeading = !line.hasSuffix(":"); continue }
            guard inExamples else { continue }
            if inHeading {  // a heading wrapped over two lines: "Examples (from …;\nD=…):"
                inHeading = !line.hasSuffix(":") && !line.hasPrefix("  ")
                if !line.hasPrefix("  ") { continue }
            }
            if let open = pending {
                guard line.hasPrefix("  ") else { wrapped.append(line); pending = nil; continue }
                let text = line.trimmingCharacters(in: .whitespaces)
                if text.hasSuffix("\\") { pending = open + " " + text.dropLast() } else { commands.append(open + " " + text); pending = nil }
                continue
            }
            if line.isEmpty { continue }
            guard line.hasPrefix("  ") else {
                // A heading (USAGE:, Exit codes …) ends the section; text right under an example is a wrapped line.
                if let last = commands.last, !line.hasSuffix(":"), line.first?.isLowercase == true || line.first == "\"" || line.first?.isNumber == true {
                    wrapped.append(last + " / " + line)
                }
                inExamples = false
                continue
            }
            let text = line.trimmingCharacters(in: .whitespaces)
            guard !text.hasPrefix("#"), text.range(of: #"^([A-Z_]+=\S+ )*craft(-registry)? "#, options: .regularExpression) != nil
                || text == "craft runtimes" else { continue }
            if text.hasSuffix("\\") { pending = String(text.dropLast()) } else { commands.append(text) }
        }
        return (commands, wrapped)
    }

    /// A server example, run until it says it is listening (at most 300 s: a loaded machine loads slowly), then
    /// stopped with SIGTERM; it must exit 0.
    static func scripted(_ command: String) -> String {
        guard command.contains(" serve") else { return command }
        return """
            { \(command) > serve.log 2>&1 & pid=$!; for i in $(seq 1 3000); do grep -q 'listening on' serve.log && break; \
            kill -0 $pid 2>/dev/null || break; sleep 0.1; done; kill -TERM $pid 2>/dev/null; wait $pid; status=$?; cat serve.log; \
            grep -q 'listening on' serve.log || echo "no 'listening on' line within 300 s (exit $status)"; \
            grep -q 'listening on' serve.log && (exit $status); }
            """
    }

    @Test("every --help example runs as written from the repository root, and none is wrapped")
    func examplesRun() throws {
        let tools = try #require(DocumentedCommands.toolDirectory, "the tools are not built")
        var total = 0
        for page in try Self.pages() {
            let help = Process()
            help.executableURL = tools.appendingPathComponent(page[0])
            help.arguments = Array(page.dropFirst()) + ["--help"]
            let pipe = Pipe()
            help.standardOutput = pipe
            try help.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            help.waitUntilExit()
            let name = page.joined(separator: " ")
            let (commands, wrapped) = Self.examples(in: text)
            #expect(wrapped.isEmpty, "\(name) --help: example lines wrapped at 80 columns: \(wrapped)")
            guard !commands.isEmpty else { continue }
            total += commands.count
            let sandbox = try DocumentedCommands()
            defer { sandbox.remove() }
            let outcomes = try sandbox.run(commands.map(Self.scripted), timeout: 900)
            #expect(outcomes.count == commands.count, "\(name): \(outcomes.count) of \(commands.count) examples ran")
            for (command, outcome) in zip(commands, outcomes) {
                #expect(outcome.status == 0, "\(name) --help example exits \(outcome.status): \(command)\n\(outcome.output.suffix(1500))")
            }
        }
        #expect(total >= 40, "only \(total) examples found")
    }
}
