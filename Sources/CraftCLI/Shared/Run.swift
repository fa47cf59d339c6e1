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
