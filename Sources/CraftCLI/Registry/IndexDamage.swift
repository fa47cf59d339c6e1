import CraftRegistry
import Foundation

/// How `list`, `search` and `compatible` end when the index is damaged: each problem is a `warning:`
/// line on stderr naming the file, and the command fails with exit 4 saying the index is damaged and
/// how to repair it (what could be read was printed first).
enum IndexDamage {
    static func finish(problems: [RegistryError], registry: Registry) throws {
        for problem in problems { Output.warning(problem.message) }
        if !problems.isEmpty {
            let count = problems.count == 1 ? "the problem" : "the \(problems.count) problems"
            throw CommandError(
                .integrity, "the index of \(registry.location) is damaged (\(count) above; what could be read is shown); repair it with craft-registry reindex")
        }
    }
}
