// The one error type of CraftExperiment: what failed, on which input, and what to do.
import Foundation

/// An error of the miniature experiment, with one clear sentence.
public struct ExperimentError: Error, LocalizedError, CustomStringConvertible, Sendable {
    /// The sentence: what failed, on which input, and what to do.
    public let message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    public var errorDescription: String? { message }
    public var description: String { message }
}

/// Runs `body`, turning any error into an ``ExperimentError`` prefixed with `context`.
func step<T>(_ context: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as ExperimentError {
        throw error
    } catch {
        throw ExperimentError("\(context): \((error as? LocalizedError)?.errorDescription ?? String(describing: error))")
    }
}
