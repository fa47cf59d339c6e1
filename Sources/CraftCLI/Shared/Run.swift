import ArgumentParser
import CraftBundles
import CraftCore
import Foundation
import TensorCore

/// Runs a root command the way both executables do.
///
/// Parsing problems (unknown option, failed `validate()`) are reported by argument-parser with the
/// usage text and exit 64; `--help` exits 0. Errors thrown while running print one sentence to stderr,
/// prefixed `error:`, and exit with the status of their ``ErrorCategory`` (``ExitStatus``).
///
/// Commands that load bundles run with `environment` (its runtimes); applications pass their own to
/// add runtimes (``CraftEnvironment``). `--version` prints the version and the BLAS kernels in use
/// (``BLAS/Kernels``).
/// SIGINT, SIGTERM and SIGHUP remove the command's scratch files before the process dies of the
/// signal, and what interrupted commands left in `$TMPDIR` is swept first (``ScratchFiles``).
public func runCommandLine<Root: ParsableCommand>(
    _ root: Root.Type, environment: CraftEnvironment = .standard,
    arguments: [String] = Array(CommandLine.arguments.dropFirst())
) -> Never {
    ScratchFiles.installSignalHandlers()
    ScratchFiles.sweepTemporaryDirectory()
    if arguments == ["--version"] {
        // The version, and the diagnostics a bug report needs: which BLAS kernels run, and why.
        print("\(root.configuration.commandName ?? "craft") \(CraftVersion.current)")
        print("BLAS: \(BLAS.kernels.summary)")
        exit(ExitStatus.success.rawValue)
    }
    var command: ParsableCommand
    do {
        command = try root.parseAsRoot(arguments)
    } catch {
        if let unknown = UnknownSubcommand(root, arguments: arguments) {
            FileHandle.standardError.write(Data((unknown.message + "\n").utf8))
            exit(ExitStatus.usage.rawValue)
        }
        root.exit(withError: error)
    }
    do {
        if let command = command as? any EnvironmentCommand {
            try command.run(in: environment)
        } else {
            try command.run()
        }
        ScratchFiles.waitIfInterrupted()
        exit(ExitStatus.success.rawValue)
    } catch let code as ExitCode {
        ScratchFiles.waitIfInterrupted()
        exit(code.rawValue)
    } catch let clean as CleanExit {
        root.exit(withError: clean)
    } catch where root.exitCode(for: error) == .success {
        // `--help` parses into argument-parser's help command, whose run() throws a help request.
        root.exit(withError: error)
    } catch {
        ScratchFiles.waitIfInterrupted()
        let text = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
        FileHandle.standardError.write(Data(("error: " + text + "\n").utf8))
        exit(ExitStatus(for: error).rawValue)
    }
}

/// An error raised by command logic itself, with the category (and so the exit status) it maps to.
public struct CommandError: CraftError {
    public var category: ErrorCategory
    public var message: String
    public init(_ category: ErrorCategory, _ message: String) { (self.category, self.message) = (category, message) }
    /// The category is the code: command logic has no finer kinds.
    public var code: ErrorCategory { category }
}

/// A first argument that names no subcommand of the root (`craft evaluate`), which argument-parser
/// would report as an unknown option further along; said plainly, with the nearest name.
struct UnknownSubcommand {
    let message: String

    /// `nil` when the first argument is an option, a known subcommand, or the root takes no subcommands.
    init?<Root: ParsableCommand>(_ root: Root.Type, arguments: [String]) {
        let configuration = root.configuration
        guard let first = arguments.first, !first.hasPrefix("-"), !configuration.subcommands.isEmpty,
              configuration.defaultSubcommand == nil else { return nil }
        let names = configuration.subcommands.compactMap { $0.configuration.commandName } + ["help"]
        guard !names.contains(first) else { return nil }
        let tool = configuration.commandName ?? "craft"
        let ranked = names.map { (name: $0, distance: Self.distance(first.lowercased(), $0)) }.sorted { $0.distance < $1.distance }
        if let best = ranked.first, best.distance <= max(2, first.count / 3) || best.name.hasPrefix(first) || first.hasPrefix(best.name) {
            message = "error: '\(first)' is not a \(tool) command; did you mean '\(best.name)'? (\(tool) --help lists them)"
        } else {
            message = "error: '\(first)' is not a \(tool) command; the commands are \(names.filter { $0 != "help" }.joined(separator: ", "))"
        }
    }

    /// The edit distance (insertions, deletions, substitutions) between two short strings.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
