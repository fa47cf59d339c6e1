import ArgumentParser
import CraftCore

/// The documented exit codes of `craft` and `craft-registry` (docs/cli.md). They MUST stay stable.
public enum ExitStatus: Int32, Sendable {
    case success = 0
    case failure = 1
    case notFound = 2
    case incompatible = 3
    case integrity = 4
    case usage = 64

    /// The exit status for an error, by its ``ErrorCategory`` when it has one.
    public init(for error: Error) {
        if let categorized = error as? CategorizedError {
            switch categorized.category {
            case .notFound: self = .notFound
            case .incompatible: self = .incompatible
            case .integrity: self = .integrity
            case .usage: self = .usage
            case .other: self = .failure
            }
        } else if error is ValidationError {
            self = .usage
        } else {
            self = .failure
        }
    }
}
