import Foundation
import Testing

/// The README's and docs/cli.md's `console` blocks run as a reader would run them, from the
/// repository root with the tools on PATH, and print what the documents show (docs/cli.md,
/// "Documentation that runs"): every `$ ` line is a command; the lines under it are its output,
/// each of which must appear (timings masked, `…` standing for any text). Blocks fenced `sh`,
/// `bash` or `text` are illustrations and are not run.
@Suite("documentation that runs")
struct DocumentationTests {
    struct Block {
        var document: String
        var line: Int
        var commands: [(command: String, expected: [String])]
    }

    /// The `console` blocks of a Markdown file.
    static func blocks(in document: String) throws -> [Block] {
        let text = try String(contentsOf: RegistryTool.packageRoot.appendingPathComponent(document), encoding: .utf8)
        var blocks: [Block] = []
        var current: Block?
        var pending: String?
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).enumerated() {
            if current == nil {
                if line == "```console" { current = Block(document: document, line: number + 1, commands: []) }
                continue
            }
            if line.hasPrefix("```") {
                if let block = current, !block.commands.isEmpty { blocks.append(block) }
                current = nil
                continue
            }
            if let open = pending {
                let command = open + "\n" + line
                if Self.continues(command) { pending = command } else { current?.commands.append((command, [])); pending = nil }
            } else if line.hasPrefix("$ ") {
                let command = String(line.dropFirst(2))
                if Self.continues(command) { pending = command } else { current?.commands.append((command, [])) }
            } else if !line.isEmpty, var block = current, !block.commands.isEmpty {
                block.commands[block.commands.count - 1].expected.append(line)
                current = block
            }
        }
        return blocks
    }

    /// Whether a command goes on on the next line: it ends with `\` or leaves a single quote open.
    static func continues(_ command: String) -> Bool {
        command.hasSuffix("\\") || command.filter { $0 == "'" }.count % 2 == 1
    }

    static func check(_ document: String) throws {
        let blocks = try Self.blocks(in: document)
        #expect(!blocks.isEmpty, "\(document) has no console blocks")
        let sandbox = try DocumentedCommands()
        defer { sandbox.remove() }
        for block in blocks {
            let outcomes = try sandbox.run(block.commands.map { $0.command }, waitFor: block.commands.map { $0.expected.first }, timeout: 600)
            #expect(outcomes.count == block.commands.count, "\(document):\(block.line): \(outcomes.count) of \(block.commands.count) commands ran")
            for (index, (entry, outcome)) in zip(block.commands, outcomes).enumerated() {
                // A background command's output lands wherever the session is when it prints.
                let printed = entry.command.hasSuffix("&") ? outcomes[index...].map(\.output).joined(separator: "\n") : outcome.output
                // `cmd; echo "exit $?"` shows a failure on purpose; anything else must succeed.
                if !entry.command.contains("exit $?") {
                    #expect(outcome.status == 0, "\(document):\(block.line): `\(entry.command)` exits \(outcome.status)\n\(outcome.output.suffix(1500))")
                }
                for expected in entry.expected where !DocumentedCommands.shows(printed, line: expected) {
                    Issue.record("\(document):\(block.line): `\(entry.command)` does not print\n  \(expected)\nit printed:\n\(printed.suffix(2000))")
                }
            }
        }
    }

    @Test("the README's console blocks run and print what it shows")
    func readme() throws { try Self.check("README.md") }

    @Test("docs/cli.md's console blocks run and print what it shows")
    func commandLineReference() throws { try Self.check("docs/cli.md") }
}
