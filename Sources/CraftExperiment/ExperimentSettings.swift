// The sizes, steps and seeds of the miniature (docs/experiment.md, "Models"). `standard` is what
// `make reproduce` runs; `smoke` is a seconds-long version for tests.
import Foundation

/// Every knob of the miniature experiment.
public struct ExperimentSettings: Sendable, Codable, Equatable {
    // MARK: Vision and text towers
    /// Image side in pixels (the exported data is 16×16).
    public var imageSize = 16
    /// Patch side: 16 / 2 = 8×8 = 64 visual tokens per image.
    public var patchSize = 2
    /// Vision tower width (= codebook dimension).
    public var visionHidden = 32
    /// Vision tower MLP width.
    public var visionIntermediate = 64
    /// Vision tower layers.
    public var visionLayers = 2
    /// Vision tower heads.
    public var visionHeads = 2
    /// Text tower width.
    public var textHidden = 32
    /// Text tower layers.
    public var textLayers = 1
    /// Text tower positions (the longest contrastive text is 5 words).
    public var textPositions = 8

    // MARK: Codebook
    /// The encoder layer (1-based) whose output is quantized: the last layer's output *before* the
    /// post-layernorm, where the paper quantizes (a layernorm after the quantization point would let
    /// the encoder rescale its tokens freely, and `L_commit` would not bind). `nil` quantizes after
    /// the post-layernorm.
    public var quantizationLayer: Int? = 2
    /// Codebook entries (k-means over the base tower's tokens).
    public var codebookEntries = 128
    /// Further codebooks over the same tower, each with its own pair of backends, for the
    /// codebook-size sweep and the residual-VQ variant (CRAFT is run on each over every seed).
    public var codebookSets: [CodebookSet] = [
        CodebookSet(id: "k64", entries: 64), CodebookSet(id: "k256", entries: 256), CodebookSet(id: "k512", entries: 512),
        CodebookSet(id: "rvq2", entries: 128, depth: 2),
    ]
    /// K-means iterations.
    public var kmeansIterations = 20

    // MARK: Backends
    /// Backend A (Llama family): width, layers, heads, key/value heads, MLP width.
    public var llamaHidden = 64, llamaLayers = 2, llamaHeads = 4, llamaKVHeads = 2, llamaIntermediate = 128
    /// Backend B (GPT-2 family): width, layers, heads.
    public var gpt2Hidden = 48, gpt2Layers = 3, gpt2Heads = 4
    /// Whether backend B (GPT-2, learned absolute positions) is trained with visual-token dropout so
    /// that token pruning does not move its prompt to positions it never saw.
    public var gpt2TokenDropout = true
    /// Context length of both backends (64 visual + prompt + answer fit with room).
    public var contextLength = 96

    // MARK: Training
    /// Contrastive pretraining of the towers: epochs, batch, learning rate.
    public var contrastiveEpochs = 12, contrastiveBatch = 32
    public var contrastiveLearningRate: Float = 3e-3
    /// Backend training: epochs, batch, learning rate.
    public var backendEpochs = 6, backendBatch = 16
    public var backendLearningRate: Float = 2e-3
    /// CRAFT adaptation: epochs, batch, learning rate.
    public var adaptationEpochs = 6, adaptationBatch = 16
    public var adaptationLearningRate: Float = 1e-3
    /// General-domain examples replayed in each adaptation batch (the replay variant).
    public var replayPerBatch = 8
    /// Seed of the base models.
    public var baseSeed: UInt64 = 0
    /// Seeds of every adaptation row: CRAFT, its baselines and ablations (the published adapted
    /// encoder uses the first).
    public var seeds: [UInt64] = [0, 1, 2]
    /// The commitment sweep: every `λ_commit` × learning rate × epochs, each over ``seeds``.
    public var commitmentWeights: [Float] = [0, 0.1, 1]
    public var sweepLearningRates: [Float] = [1e-3, 3e-3]
    public var sweepEpochs: [Int] = [6, 12]
    /// `λ_drift` of the LDIFS-style baseline (continuous fine-tuning with the features' drift from
    /// the base encoder penalised).
    public var driftWeight: Float = 1
    /// Whether the continuous baselines run against backends trained on the base encoder's
    /// continuous features (a real continuous model) rather than on its code vectors.
    public var continuousControl = true

    // MARK: Data limits (nil: everything)
    /// Most training images per split used.
    public var trainImages: Int?
    /// Most test images per split evaluated.
    public var testImages: Int?
    /// Images timed for latency per pruning setting.
    public var latencyImages = 100

    // MARK: Pruning ladder (PruningLadder.swift)
    /// Keep ratios of the pruning table.
    public var pruningKeepRatios: [Double] = [1.0, 0.8, 0.6, 0.4]
    /// Seeds of the random-pruning control at each keep ratio (mean and 95% confidence interval).
    public var pruningRandomSeeds: [UInt64] = [0, 1, 2, 3, 4]

    /// Creates the standard settings.
    public init() {}

    /// A codebook beside the main one: `entries` codes per level, `depth` levels (residual VQ when
    /// above 1, every level fitted by k-means on the previous levels' residuals).
    public struct CodebookSet: Sendable, Codable, Equatable, Hashable {
        /// A short id, part of the bundle and variant names (`k64`, `rvq2`).
        public var id: String
        /// Codes per level.
        public var entries: Int
        /// Levels.
        public var depth: Int

        /// Creates a set.
        public init(id: String, entries: Int, depth: Int = 1) {
            self.id = id
            self.entries = entries
            self.depth = depth
        }
    }

    /// What `make reproduce` runs.
    public static let standard = ExperimentSettings()

    /// A seconds-long miniature of the miniature, for tests: a handful of images, one seed, few steps.
    public static var smoke: ExperimentSettings {
        var settings = ExperimentSettings()
        settings.visionHidden = 16
        settings.visionIntermediate = 32
        settings.visionLayers = 1
        settings.textHidden = 16
        settings.codebookEntries = 16
        settings.kmeansIterations = 3
        settings.llamaHidden = 16
        settings.llamaLayers = 1
        settings.llamaIntermediate = 32
        settings.gpt2Hidden = 16
        settings.gpt2Layers = 1
        settings.gpt2Heads = 2
        settings.contrastiveEpochs = 1
        settings.backendEpochs = 1
        settings.adaptationEpochs = 1
        settings.contrastiveBatch = 4
        settings.backendBatch = 4
        settings.adaptationBatch = 4
        settings.seeds = [0]
        settings.quantizationLayer = 1
        settings.commitmentWeights = [0, 0.1]
        settings.sweepLearningRates = [1e-3]
        settings.sweepEpochs = [1]
        settings.codebookSets = [CodebookSet(id: "rvq2", entries: 16, depth: 2)]
        settings.replayPerBatch = 2
        settings.trainImages = 8
        settings.testImages = 4
        settings.latencyImages = 2
        settings.pruningRandomSeeds = [0, 1]
        return settings
    }
}
