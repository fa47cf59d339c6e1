// Stage `table` of the miniature (docs/experiment.md, "Results"): every adaptation variant trained
// (when its bundle is missing), every pair scored on the test splits, and the tables written as JSON
// and as markdown between marker comments in docs/experiment.md and README.md.
import CraftCore
import CraftModels
import CraftTraining
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
    /// The encoder's codes and quantization error on the split (the same for both backends); `nil`
    /// for pruning rows.
    public var codes: CodeDrift?
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
    /// The variants of the table, given the settings' seeds: CRAFT, the continuous control and its
    /// LDIFS-style variant, projector fine-tuning, the ablations, replay, the mild shift, reverse
    /// transfer (B as the surrogate), and the commitment sweep, each over every seed.
    public static func variants(_ settings: ExperimentSettings) -> [AdaptationVariant] {
        var list: [AdaptationVariant] = []
        for seed in settings.seeds {
            list += [
                AdaptationVariant(id: "craft-strong-s\(seed)", seed: seed),
                AdaptationVariant(id: "continuous-strong-s\(seed)", method: .continuous, seed: seed),
                AdaptationVariant(id: "ldifs-strong-s\(seed)", method: .continuous, seed: seed, drift: true),
                AdaptationVariant(id: "projector-strong-s\(seed)", method: .projector, seed: seed),
                AdaptationVariant(id: "no-commit-strong-s\(seed)", seed: seed, commitment: false),
                AdaptationVariant(id: "no-sal-strong-s\(seed)", seed: seed, alignment: false),
                AdaptationVariant(id: "no-con-strong-s\(seed)", seed: seed, contrastive: false),
                AdaptationVariant(id: "replay-strong-s\(seed)", seed: seed, replay: true),
                AdaptationVariant(id: "reverse-strong-s\(seed)", seed: seed, surrogate: .b),
                AdaptationVariant(id: "craft-mild-s\(seed)", domain: .mild, seed: seed),
            ]
            list += settings.codebookSets.map { AdaptationVariant(id: "craft-\($0.id)-strong-s\(seed)", seed: seed, codebookSet: $0.id) }
        }
        return list + sweep(settings)
    }

    /// One point of the commitment sweep and the variant family whose rows it reads: the CRAFT rows
    /// at the default point, the `no-commit` rows for λ_commit 0 at the defaults, else its own.
    struct SweepPoint {
        var weight: Float, learningRate: Float, epochs: Int, family: String
        /// Whether the point is trained by its own sweep variants (not by the CRAFT or no-commit rows).
        var isOwn: Bool { family.hasPrefix("commit") }
    }

    /// Every λ_commit × learning rate × epochs of the settings.
    static func sweepPoints(_ settings: ExperimentSettings) -> [SweepPoint] {
        let defaultWeight = TrainingTask.classification.objective.commitmentWeight
        var points: [SweepPoint] = []
        for weight in settings.commitmentWeights {
            for rate in settings.sweepLearningRates {
                for epochs in settings.sweepEpochs {
                    let isDefault = rate == settings.adaptationLearningRate && epochs == settings.adaptationEpochs
                    let family = isDefault && weight == defaultWeight ? "craft-strong"
                        : isDefault && weight == 0 ? "no-commit-strong"
                        : sweepFamily(weight: weight, learningRate: rate, epochs: epochs)
                    points.append(SweepPoint(weight: weight, learningRate: rate, epochs: epochs, family: family))
                }
            }
        }
        return points
    }

    /// The commitment sweep's own variants: every point of ``sweepPoints(_:)`` over every seed, except
    /// those the CRAFT and no-commit rows already train.
    public static func sweep(_ settings: ExperimentSettings) -> [AdaptationVariant] {
        sweepPoints(settings).filter(\.isOwn).flatMap { point in
            settings.seeds.map { seed in
                AdaptationVariant(id: "\(point.family)-s\(seed)", seed: seed, commitmentWeight: point.weight,
                                  learningRate: point.learningRate, epochs: point.epochs)
            }
        }
    }

    /// `commit0p1-lr1e-3-e6`: the family id of a sweep point.
    static func sweepFamily(weight: Float, learningRate: Float, epochs: Int) -> String {
        let w = weight == weight.rounded() ? String(Int(weight)) : String(format: "%g", weight).replacingOccurrences(of: ".", with: "p")
        let exponent = Int(Foundation.log10(Double(learningRate)).rounded(.down))
        let mantissa = Int((Double(learningRate) / Foundation.pow(10, Double(exponent))).rounded())
        return "commit\(w)-lr\(mantissa)e\(exponent)-e\(epochs)"
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
        // The continuous control: the base encoder with its quantizer bypassed and backends trained on z_e.
        let continuousBase = settings.continuousControl
            ? try Adaptation.baseDirectory(MiniatureBundles.continuous(MiniatureBundles.encoder), context) : baseEncoder
        let continuousBackends = settings.continuousControl
            ? [("A", try Adaptation.baseDirectory(MiniatureBundles.continuous(MiniatureBundles.llama), context)),
               ("B", try Adaptation.baseDirectory(MiniatureBundles.continuous(MiniatureBundles.gpt2), context))]
            : backends
        var rows: [ResultRow] = []
        func score(_ section: String, _ condition: String, encoder: URL, backendName: String, backend: URL, domain: Domain,
                   seed: UInt64?, command: String, codes: CodeDrift? = nil) throws {
            let pair = try LoadedPair(encoder: encoder, backend: backend)
            let result = try pair.score(tests[domain]!, pixels: pixels)
            rows.append(ResultRow(section: section, condition: condition, backend: backendName, domain: domain.rawValue, seed: seed,
                                  score: result, command: command, codes: codes))
            context.log(String(format: "%@ %@ %@ %@: %.1f %%", section, condition, backendName, domain.rawValue, 100 * result.accuracy))
        }
        let baseCommand = "craft-experiment base"
        func exists(_ variant: AdaptationVariant) -> Bool {
            FileManager.default.fileExists(atPath: Adaptation.directory(variant, context).appendingPathComponent("craft.json").path)
        }
        let all = ResultsTable.variants(settings).filter(exists)
        // Code statistics against the base encoder of the same codebook, whose codes per split are
        // computed once.
        var bases: [String: SiglipVQEncoder] = ["": try CodeDrift.encoder(baseEncoder)]
        var baseCodes: [String: [Int32]] = [:]
        func drift(_ encoder: URL, _ domain: Domain, set: String? = nil) throws -> CodeDrift {
            let key = "\(set ?? "")|\(domain.rawValue)"
            if baseCodes[key] == nil, let base = bases[set ?? ""] {
                baseCodes[key] = try CodeDrift.codes(base, on: tests[domain]!, pixels: pixels)
            }
            return try CodeDrift.measure(try CodeDrift.encoder(encoder), baseCodes: baseCodes[key] ?? [], on: tests[domain]!, pixels: pixels)
        }
        for domain in Domain.allCases {
            let codes = try drift(baseEncoder, domain)
            for (name, backend) in backends {
                try score("base", "base", encoder: baseEncoder, backendName: name, backend: backend, domain: domain, seed: nil,
                          command: baseCommand, codes: codes)
            }
            if settings.continuousControl {
                for (name, backend) in continuousBackends {
                    try score("base-continuous", "continuous", encoder: continuousBase, backendName: name, backend: backend, domain: domain,
                              seed: nil, command: baseCommand, codes: codes)
                }
            }
        }
        var setBackends: [String: [(String, URL)]] = [:]
        for set in settings.codebookSets {
            let encoder = try Adaptation.baseDirectory(MiniatureBundles.inSet(MiniatureBundles.encoder, set.id), context)
            let pairs = [("A", try Adaptation.baseDirectory(MiniatureBundles.inSet(MiniatureBundles.llama, set.id), context)),
                         ("B", try Adaptation.baseDirectory(MiniatureBundles.inSet(MiniatureBundles.gpt2, set.id), context))]
            setBackends[set.id] = pairs
            bases[set.id] = try CodeDrift.encoder(encoder)
            for domain in [Domain.strong, .general] {
                let codes = try drift(encoder, domain, set: set.id)
                for (name, backend) in pairs {
                    try score("base-\(set.id)", "base", encoder: encoder, backendName: name, backend: backend, domain: domain, seed: nil,
                              command: baseCommand, codes: codes)
                }
            }
        }
        for variant in all {
            let directory = Adaptation.directory(variant, context)
            for domain in [variant.domain, .general] {
                if variant.method == .projector {
                    // The surrogate with its tuned projector; the other backend has no such projector
                    // and keeps the base pair (its rows are the base rows).
                    try score(variant.id, variant.method.rawValue, encoder: baseEncoder, backendName: variant.surrogate.rawValue,
                              backend: directory, domain: domain, seed: variant.seed, command: variant.command)
                    continue
                }
                let codes = try drift(directory, domain, set: variant.codebookSet)
                let pairs = variant.codebookSet.flatMap { setBackends[$0] } ?? (variant.isContinuous ? continuousBackends : backends)
                for (name, backend) in pairs {
                    try score(variant.id, variant.method.rawValue, encoder: directory, backendName: name, backend: backend, domain: domain,
                              seed: variant.seed, command: variant.command, codes: codes)
                }
            }
        }
        for (name, backend) in backends {
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
