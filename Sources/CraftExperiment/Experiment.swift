// The miniature's stages in order (`craft-experiment all`, run by `make reproduce`).
import CraftFiles
import Foundation

/// The whole experiment: base models, the published CRAFT encoder, and the results tables.
public enum Experiment {
    /// Trains and publishes the CRAFT encoder of the first seed on the strong shift.
    public static func adaptAndPublish(_ context: ExperimentContext) throws {
        let variant = AdaptationVariant(id: "craft-strong-s\(context.settings.seeds.first ?? 0)", seed: context.settings.seeds.first ?? 0)
        let (_, packed, _) = try Adaptation.run(variant, context)
        try BaseModels.publish([packed], context)
    }

    /// Writes the tables of `results` into the results JSON, docs/experiment.md and README.md under `root`.
    public static func writeTables(_ results: ExperimentResults, root: URL, context: ExperimentContext) throws {
        let markdown = ResultsMarkdown.render(results)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try step("writing docs/experiment-results.json") {
            try encoder.encode(results).write(to: root.appendingPathComponent("docs/experiment-results.json"))
        }
        try ResultsMarkdown.insert(markdown, into: root.appendingPathComponent("docs/experiment.md"))
        try ResultsMarkdown.insert(markdown, into: root.appendingPathComponent("README.md"))
        context.log("tables written into docs/experiment.md, README.md and docs/experiment-results.json")
    }

    /// The results `craft-experiment table` wrote into `docs/experiment-results.json` under `root`.
    public static func readResults(root: URL) throws -> ExperimentResults {
        let url = root.appendingPathComponent("docs/experiment-results.json")
        return try step("reading \(url.path)") {
            try JSONDecoder().decode(ExperimentResults.self, from: BoundedFile.read(url, limit: BoundedFile.smallDocumentLimit))
        }
    }

    /// Every stage.
    public static func all(_ context: ExperimentContext, root: URL) throws {
        let began = Date()
        try BaseModels.run(context)
        try adaptAndPublish(context)
        let results = try ResultsTable.run(context)
        try writeTables(results, root: root, context: context)
        context.log(String(format: "craft-experiment all: %.0f s", Date().timeIntervalSince(began)))
    }
}
