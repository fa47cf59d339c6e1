// craft-experiment: rebuilds and measures the embedded miniature of the CRAFT experiment
// (docs/experiment.md). `make reproduce` runs `craft-experiment all` from a release build.
import ArgumentParser
import CraftExperiment
import Foundation

struct Common: ParsableArguments {
    @Option(help: "The repository root (data in examples/data/digits, registry/, docs/).")
    var root: String = FileManager.default.currentDirectoryPath
    @Option(help: "Scratch directory for bundle directories, runs and packed bundles.")
    var work: String = ".build/experiment"
    @Flag(help: "Do not publish into the registry.")
    var noPublish = false
    @Flag(help: "Tiny sizes and a handful of images (seconds; for tests).")
    var smoke = false
    @Option(help: "Override the adaptation epochs.")
    var adaptationEpochs: Int?
    @Option(help: "Override the adaptation learning rate.")
    var adaptationLearningRate: Float?

    func context() throws -> ExperimentContext {
        let rootURL = URL(fileURLWithPath: root)
        let workURL = work.hasPrefix("/") ? URL(fileURLWithPath: work) : rootURL.appendingPathComponent(work)
        try FileManager.default.createDirectory(at: workURL, withIntermediateDirectories: true)
        var settings = smoke ? ExperimentSettings.smoke : .standard
        if let adaptationEpochs { settings.adaptationEpochs = adaptationEpochs }
        if let adaptationLearningRate { settings.adaptationLearningRate = adaptationLearningRate }
        return ExperimentContext(
            dataDirectory: rootURL.appendingPathComponent("examples/data/digits"), workDirectory: workURL,
            registry: noPublish ? nil : rootURL.appendingPathComponent("registry"), settings: settings)
    }
}

func guarded(_ body: () throws -> Void) throws {
    do { try body() } catch {
        FileHandle.standardError.write(Data("craft-experiment: \((error as? LocalizedError)?.errorDescription ?? String(describing: error))\n".utf8))
        throw ExitCode(1)
    }
}

struct Base: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train the base encoder (towers, codebook) and backends A and B; publish them.")
    @OptionGroup var common: Common
    func run() throws { try guarded { try BaseModels.run(try common.context()) } }
}

struct Adapt: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Adapt the base encoder (CRAFT on the strong shift with A as surrogate) and publish it; or train one table variant.",
        discussion: "Example: craft-experiment adapt --variant no-commit-strong-s0")
    @OptionGroup var common: Common
    @Option(help: "A table variant id (craft-strong-s0, continuous-strong-s1, no-sal-strong-s0, …); default: publish CRAFT seed 0.")
    var variant: String?
    func run() throws {
        try guarded {
            let context = try common.context()
            guard let id = variant else { return try Experiment.adaptAndPublish(context) }
            guard let chosen = ResultsTable.variants(context.settings).first(where: { $0.id == id }) else {
                let known = ResultsTable.variants(context.settings).map(\.id).joined(separator: ", ")
                throw ValidationError("unknown variant \(id); use one of \(known)")
            }
            try Adaptation.run(chosen, context)
        }
    }
}

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score one (encoder, backend) pair of bundle directories on a test split.",
        discussion: "Example: craft-experiment score --encoder .build/experiment/bundles/variant-craft-strong-s0 --backend .build/experiment/bundles/digits-gpt2-base --domain strong")
    @OptionGroup var common: Common
    @Option(help: "The encoder bundle directory.") var encoder: String
    @Option(help: "The backend bundle directory.") var backend: String
    @Option(help: "general, mild or strong.") var domain: String = "strong"
    @Option(help: "The fraction of visual tokens to keep.") var keepRatio: Double = 1
    func run() throws {
        try guarded {
            let context = try common.context()
            guard let chosen = Domain(rawValue: domain) else { throw ValidationError("unknown domain \(domain); use general, mild or strong") }
            let data = try ExperimentData(directory: context.dataDirectory, settings: context.settings)
            let test = try data.dataset(chosen, "test")
            let pair = try LoadedPair(encoder: URL(fileURLWithPath: encoder), backend: URL(fileURLWithPath: backend))
            let score = try pair.score(test, pixels: try PixelCache(datasets: [test], preprocessing: data.preprocessing), keepRatio: keepRatio)
            print(String(format: "accuracy %.1f %% (%d of %d), commitment distance %.4f, visual tokens %.0f", 100 * score.accuracy,
                         score.correct, score.total, score.commitmentDistance, score.visualTokens))
        }
    }
}

struct Table: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train missing variants, score every pair, write the tables into docs and README.")
    @OptionGroup var common: Common
    @Flag(help: "Train every variant again even when its bundle exists.")
    var retrain = false
    func run() throws {
        try guarded {
            let context = try common.context()
            let results = try ResultsTable.run(context, retrain: retrain)
            try Experiment.writeTables(results, root: URL(fileURLWithPath: common.root), context: context)
        }
    }
}

struct Render: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rewrite the tables in docs/experiment.md and README.md from docs/experiment-results.json, without training or scoring.",
        discussion: "Example: craft-experiment render")
    @OptionGroup var common: Common
    func run() throws {
        try guarded {
            let root = URL(fileURLWithPath: common.root)
            let results = try Experiment.readResults(root: root)
            try Experiment.writeTables(results, root: root, context: try common.context())
        }
    }
}

struct All: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Every stage: base, adapt, table (what make reproduce runs).")
    @OptionGroup var common: Common
    func run() throws { try guarded { try Experiment.all(try common.context(), root: URL(fileURLWithPath: common.root)) } }
}

struct CraftExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "craft-experiment",
        abstract: "Rebuild and measure the embedded miniature of the CRAFT experiment (docs/experiment.md).",
        subcommands: [Base.self, Adapt.self, Score.self, Table.self, Render.self, All.self])
}

CraftExperimentCommand.main()
