import ArgumentParser
import CraftBundles
import CraftCore
import Foundation
import TensorCore

/// Runs a root command the way both executables do.
///
/// Every error is one line on stderr, `error: SENTENCE`, sometimes followed by one `hint:` line.
/// Parsing problems (unknown option, missing argument, failed `validate()`) exit 64 with a hint
/// naming the option's help and the command's `--help` (``UsageError``); `--help` exits 0. Errors
/// thrown while running exit with the status of their ``ErrorCategory`` (``ExitStatus``).
/// Options every command of a tool shares may come before the subcommand (``GlobalOptions``).
///
/// Commands that load bundles run with `environment` (its runtimes); applications pass their own to
/// add runtimes (``CraftEnvironment``). `--version` prints the version, the bundle format, the BLAS kernels in use
/// (``BLAS/Kernels``) and the instruction sets of Craft's own kernels.
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
        print("bundle format: \(BundleManifest.schemaIdentifier)")
        print("BLAS: \(BLAS.kernels.summary)")
        print("Craft kernels: \(CraftKernels.summary)")
        exit(ExitStatus.success.rawValue)
    }
    let arguments = GlobalOptions.hoisted(arguments, root: root)
    var command: ParsableCommand
    do {
        command = try root.parseAsRoot(arguments)
    } catch {
        if let unknown = UnknownSubcommand(root, arguments: arguments) {
            FileHandle.standardError.write(Data((unknown.message + "\n").utf8))
            exit(ExitStatus.usage.rawValue)
        }
        if root.exitCode(for: error) == .success { root.exit(withError: error) }  // --help, help COMMAND
        FileHandle.standardError.write(Data(UsageError(root, error: error, arguments: arguments).text.utf8))
        exit(ExitStatus.usage.rawValue)
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

    /// The options given before a command that take no value (`craft-registry --json lst`): the word
    /// after one of them is the command, where after another option it may be that option's value.
    static let flags: Set<String> = ["--json", "--offline", "--insecure", "--include-prerelease", "--quiet", "--verbose"]

    /// `nil` when the command word is a known subcommand, when there is none (only options), or when
    /// the root takes no subcommands. The command word is the first argument, or the first after
    /// options that take no value (``flags``) and options with their values.
    init?<Root: ParsableCommand>(_ root: Root.Type, arguments: [String]) {
        let configuration = root.configuration
        guard !configuration.subcommands.isEmpty, configuration.defaultSubcommand == nil else { return nil }
        let names = configuration.subcommands.compactMap { $0.configuration.commandName } + ["help"]
        var first: String?
        var previous: String?
        for argument in arguments {
            defer { previous = argument }
            if argument.hasPrefix("-") { continue }
            if names.contains(argument) { return nil }
            // A word after an option that may take a value (`--registry DIR`) is read as its value.
            if let previous, previous.hasPrefix("-"), !previous.contains("="), !Self.flags.contains(previous) { continue }
            first = argument
            break
        }
        guard let first else { return nil }
        let tool = configuration.commandName ?? "craft"
        if let nearest = EditDistance.nearest(to: first, among: names) {
            message = "error: '\(first)' is not a \(tool) command; did you mean '\(nearest)'? (\(tool) --help lists them)"
        } else {
            message = "error: '\(first)' is not a \(tool) command; the commands are \(names.filter { $0 != "help" }.joined(separator: ", "))"
        }
    }
}

/// A parsing problem as one `error:` line and one `hint:` line, instead of argument-parser's
/// message, help excerpt and usage block.
struct UsageError {
    let text: String

    init<Root: ParsableCommand>(_ root: Root.Type, error: Error, arguments: [String]) {
        let command = CommandPath(root, arguments: arguments)
        let help = "'\(command.names.joined(separator: " ")) --help' lists every option, with examples"
        // argument-parser reports a missing option before an unknown one; the unknown one (often a
        // misspelling, or an old spelling, of the "missing" one) is the mistake to name.
        let known = command.commands.reduce(into: Set(["--help", "--version"])) { $0.formUnion(Self.options(of: $1)) }
        if let unknown = arguments.prefix(while: { $0 != "--" }).lazy
            .filter({ $0.hasPrefix("--") }).map({ String($0.split(separator: "=", maxSplits: 1)[0]) })
            .first(where: { !known.contains($0) })
        {
            let nearest = EditDistance.nearest(to: unknown, among: known.subtracting(["--help", "--version"]))
            text = "error: unknown option '\(unknown)'\nhint: \(nearest.map { "did you mean '\($0)'? (\(help))" } ?? help)\n"
            return
        }
        let lines = root.message(for: error).split(separator: "\n", omittingEmptySubsequences: true).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        var message = lines.first ?? "the arguments cannot be read"
        if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
        var hint = help
        // argument-parser follows a missing option with "Help:  --name <value>  What it is."
        let full = root.fullMessage(for: error, columns: 10_000).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        if let line = full.first(where: { $0.hasPrefix("Help:") }) {
            let parts = line.dropFirst("Help:".count).split(separator: "  ", omittingEmptySubsequences: true)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count >= 2 { hint = "\(parts[0]): \(parts[1...].joined(separator: " ")) (\(help))" }
        }
        text = "error: \(Self.lowercasedFirst(message))\nhint: \(hint)\n"
    }

    /// The long option names `command` takes, hidden ones included (from argument-parser's
    /// description of the command, not its help text, which mentions other commands' options).
    static func options(of command: ParsableCommand.Type) -> Set<String> {
        struct Dump: Decodable {
            struct Command: Decodable { var arguments: [Argument]? }
            struct Argument: Decodable { var names: [Name]? }
            struct Name: Decodable { var kind: String; var name: String }
            var command: Command
        }
        guard let dump = try? JSONDecoder().decode(Dump.self, from: Data(command._dumpHelp().utf8)) else { return [] }
        return Set((dump.command.arguments ?? []).flatMap { $0.names ?? [] }.filter { $0.kind == "long" }.map { "--" + $0.name })
    }

    /// "Missing expected argument" → "missing expected argument"; "NAME is…" stays.
    static func lowercasedFirst(_ text: String) -> String {
        guard let first = text.first, first.isUppercase, text.dropFirst().first?.isLowercase == true else { return text }
        return first.lowercased() + text.dropFirst()
    }
}

/// The subcommands named by the arguments, from the root down (`craft-registry cache prune`).
struct CommandPath {
    let names: [String]
    /// The commands named, from the root down.
    let commands: [ParsableCommand.Type]

    init<Root: ParsableCommand>(_ root: Root.Type, arguments: [String]) {
        var commands: [ParsableCommand.Type] = [root]
        var names = [root.configuration.commandName ?? "craft"]
        for argument in arguments where !argument.hasPrefix("-") {
            guard let next = commands.last?.configuration.subcommands.first(where: { $0.configuration.commandName == argument }) else { continue }
            names.append(argument)
            commands.append(next)
        }
        self.names = names
        self.commands = commands
    }
}

/// A root command whose subcommands share `--json`, `--registry`, `--threads`, `--offline`,
/// `--insecure` and `--quiet` without the root declaring them; they may then come before the
/// subcommand name (``GlobalOptions``). `craft-registry`'s root declares its shared options itself.
public protocol HoistsGlobalOptions {}

/// Options that every command of a tool accepts, which may therefore come before the subcommand:
/// `craft --json --registry R run …` reads as `craft run --json --registry R …`.
enum GlobalOptions {
    /// The shared flags, and the shared options that take a value.
    static let flags: Set<String> = ["--json", "--offline", "--insecure", "--quiet"]
    static let valued: Set<String> = ["--registry", "--threads"]

    /// `arguments` with the global options in front of the subcommand name moved just after it, for
    /// roots that are ``HoistsGlobalOptions``; anything else in front leaves the arguments as they are.
    static func hoisted<Root: ParsableCommand>(_ arguments: [String], root: Root.Type) -> [String] {
        guard root is any HoistsGlobalOptions.Type else { return arguments }
        let subcommands = Set(root.configuration.subcommands.compactMap { $0.configuration.commandName })
        var leading: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            if subcommands.contains(argument) {
                return leading.isEmpty ? arguments : [argument] + leading + arguments[(index + 1)...]
            } else if flags.contains(name) {
                leading.append(argument)
            } else if valued.contains(name) {
                leading.append(argument)
                if !argument.contains("="), index + 1 < arguments.count {
                    index += 1
                    leading.append(arguments[index])
                }
            } else {
                return arguments
            }
            index += 1
        }
        return arguments
    }
}
