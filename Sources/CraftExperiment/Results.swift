// Stage `table` of the miniature (docs/experiment.md, "Results"): every adaptation variant trained
// (when its bundle is missing), every pair scored on the test splits, and the tables written as JSON
// and as markdown between marker comments in docs/experiment.md and README.md.
import CraftCore
import Foundation

/// One measured number with where it came from.
public struct ResultRow: Sendable, Codable, Equatable {
    /// The table it belongs to (`headline`, `shift`, `retention`, `pruning`).
    public var section: String
    /// The condition (`base`, `craft`, `continuous`, …).
    public var condition: String
    /// `A` (Llama) or `B` (GPT-2).
    public var backend: String
    /// The test split's domain.
    public var domain: String
    /// The training seed (`nil` for the base models' fixed seed).
    public var seed: UInt64?
    /// The score.
    public var score: PairScore
    /// The command that produced the bundle scored.
    public var command: String
}

/// The whole results file.
public struct ExperimentResults: Sendable, Codable {
    /// The settings used.
    public var settings: ExperimentSettings
    /// Every measured number.
    public var rows: [ResultRow]
    /// Wall time of each adaptation run, seconds, by variant id.
    public var trainingSeconds: [String: Double]
    /// Wall time of the whole stage, seconds.
    public var totalSeconds: Double
}

/// Runs the variants, scores them, writes the tables.
public enum ResultsTable {
    /// The variants of the table, given the settings' seeds.
    public static func variants(_ settings: ExperimentSettings) -> [AdaptationVariant] {
        var list = settings.seeds.map { AdaptationVariant(id: "craft-strong-s\($0)", seed: $0) }
        list += settings.baselineSeeds.map { AdaptationVariant(id: "continuous-strong-s\($0)", method: .continuous, seed: $0) }
        let first = settings.seeds.first ?? 0
        list += [
            AdaptationVariant(id: "projector-strong-s\(first)", method: .projector, seed: first),
            AdaptationVariant(id: "no-commit-strong-s\(first)", seed: first, commitment: false),
            AdaptationVariant(id: "no-sal-strong-s\(first)", seed: first, alignment: false),
            AdaptationVariant(id: "no-con-strong-s\(first)", seed: first, contrastive: false),
            AdaptationVariant(id: "replay-strong-s\(first)", seed: first, replay: true),
            AdaptationVariant(id: "craft-mild-s\(first)", domain: .mild, seed: first),
        ]
        return list
    }

    /// Trains what is missing, scores everything, writes `results.json` into the work directory and
    /// returns the results. `retrain` trains every variant again.
    public static func run(_ context: ExperimentContext, retrain: Bool = false, only: Set<String>? = nil) throws -> ExperimentResults {
        let began = Date()
        let settings = context.settings
        let data = try ExperimentData(directory: context.dataDirectory, settings: settings)
        var seconds: [String: Double] = [:]
        var variants = variants(settings)
        if let only { variants = variants.filter { only.contains($0.id) } }
        for variant in variants {
            let directory = Adaptation.directory(variant, context)
            if retrain || !FileManager.default.fileExists(atPath: directory.appendingPathComponent("craft.json").path) {
                let (_, _, summary) = try Adaptation.run(variant, context)
                seconds[variant.id] = summary["seconds"] as? Double
            }
        }
        let tests = try Dictionary(uniqueKeysWithValues: Domain.allCases.map { ($0, try data.dataset($0, "test")) })
        let pixels = try PixelCache(datasets: Array(tests.values), preprocessing: data.preprocessing)
        let baseEncoder = try Adaptation.baseDirectory(MiniatureBundles.encoder, context)
        let backends = [("A", try Adaptation.baseDirectory(MiniatureBundles.llama, context)),
                        ("B", try Adaptation.baseDirectory(MiniatureBundles.gpt2, context))]
        var rows: [ResultRow] = []
        func score(_ section: String, _ condition: String, encoder: URL, backendName: String, backend: URL, domain: Domain,
                   seed: UInt64?, command: String, keepRatio: Double = 1, pruner: PrunerKind = .craft, timed: Int = 0) throws {
            let pair = try LoadedPair(encoder: encoder, backend: backend)
            let result = try pair.score(tests[domain]!, pixels: pixels, keepRatio: keepRatio, pruner: pruner, seed: seed ?? 0, timedImages: timed)
            rows.append(ResultRow(section: section, condition: condition, backend: backendName, domain: domain.rawValue, seed: seed,
                                  score: result, command: command))
            context.log(String(format: "%@ %@ %@ %@ keep %.1f %@: %.1f %%", section, condition, backendName, domain.rawValue, keepRatio,
                               pruner.rawValue, 100 * result.accuracy))
        }
        let baseCommand = "craft-experiment base"
        func exists(_ variant: AdaptationVariant) -> Bool {
            FileManager.default.fileExists(atPath: Adaptation.directory(variant, context).appendingPathComponent("craft.json").path)
        }
        let all = ResultsTable.variants(settings).filter(exists)
        for (name, backend) in backends {
            for domain in Domain.allCases {
                try score("base", "base", encoder: baseEncoder, backendName: name, backend: backend, domain: domain, seed: nil, command: baseCommand)
            }
            for variant in all {
                let domains: [Domain] = [variant.domain, .general]
                for domain in domains {
                    if variant.method == .projector {
                        // Backend A with its tuned projector; B has no such projector, so it keeps the base pair.
                        guard name == "A" else { continue }
                        try score(variant.id, variant.method.rawValue, encoder: baseEncoder, backendName: name,
                                  backend: Adaptation.directory(variant, context), domain: domain, seed: variant.seed, command: variant.command)
                    } else {
                        try score(variant.id, variant.method.rawValue, encoder: Adaptation.directory(variant, context), backendName: name,
                                  backend: backend, domain: domain, seed: variant.seed, command: variant.command)
                    }
                }
            }
            // Pruning: the ladder (PruningLadder.swift) with the published CRAFT encoder on the strong test split.
            if let craft = all.first(where: { $0.id == "craft-strong-s\(settings.seeds.first ?? 0)" }) {
                rows += try PruningLadder.rows(encoder: Adaptation.directory(craft, context), variant: craft, backendName: name,
                                               backend: backend, test: tests[.strong]!, pixels: pixels, context: context)
            }
        }
        let results = ExperimentResults(settings: settings, rows: rows, trainingSeconds: seconds, totalSeconds: Date().timeIntervalSince(began))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(results).write(to: context.workDirectory.appendingPathComponent("results.json"))
        return results
    }
}
