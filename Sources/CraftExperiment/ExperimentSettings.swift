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
    /// Codebook entries (k-means over the base tower's tokens).
    public var codebookEntries = 128
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
    /// Seeds of the headline CRAFT rows (the published adapted encoder uses the first).
    public var seeds: [UInt64] = [0, 1, 2]
    /// Seeds of the continuous fine-tuning baseline (one run per seed: ~1–4 min each on 2 cores).
    public var baselineSeeds: [UInt64] = [0, 1, 2]

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
        settings.baselineSeeds = [0]
        settings.replayPerBatch = 2
        settings.trainImages = 8
        settings.testImages = 4
        settings.latencyImages = 2
        settings.pruningRandomSeeds = [0, 1]
        return settings
    }
}
