// Scoring an (encoder, backend) pair on a test split, as `craft eval` does (normalised exact match of
// the greedy answer), with optional token pruning (Craft's rarity pruner or the random control),
// counted decoder FLOPs and measured latency. Pairs are loaded from bundle directories through the
// compatibility checker and the checked Pipeline, so every number comes from a pairing Craft allows.
import CraftBundles
import CraftCore
import CraftModels
import CraftRuntimes
import CraftTraining
import Foundation
import TensorCore

/// Which pruner chooses the kept tokens (the rungs of the pruning ladder, PruningLadder.swift).
public enum PrunerKind: String, Sendable, Codable, CaseIterable {
    /// Craft's full pruner over the encoder's code frequencies: rarity, residual and isolation
    /// (docs/token-pruning.md).
    case craft
    /// The random control: a seeded uniform choice of the same number of tokens.
    case random
    /// Rarity quotas alone (within a code, the lowest index first).
    case rarity
    /// Rarity quotas, within a code the largest relative residual first (no isolation term).
    case rarityResidual = "rarity+residual"
}

/// The score of one pair on one split.
public struct PairScore: Sendable, Codable, Equatable {
    /// Correct answers over questions.
    public var accuracy: Double
    /// Correct answers.
    public var correct: Int
    /// Questions asked.
    public var total: Int
    /// The keep ratio of token pruning (1 = none).
    public var keepRatio: Double
    /// The pruner used when `keepRatio < 1`.
    public var pruner: PrunerKind
    /// Visual tokens per image after pruning (mean).
    public var visualTokens: Double
    /// Counted decoder FLOPs of the prompt's forward pass per question (mean; PruningCost).
    public var decoderFLOPs: Double
    /// Measured wall time per question (encode, prune, answer), mean over the timed images, in ms.
    public var latencyMilliseconds: Double
    /// Mean commitment distance `‖z_e − z_q‖²` per token over the split (drift off the codebook).
    public var commitmentDistance: Double
    /// The random control's seed (`nil` for the other pruners).
    public var prunerSeed: UInt64? = nil
    /// How the backend numbered the kept visual tokens (`nil` in results written before the option).
    public var visualPositionIDs: VisualPositionIDs? = nil
}

/// An encoder and a backend loaded through a passing compatibility report.
public struct LoadedPair: Sendable {
    /// The encoder (the siglip-vq runtime's).
    public var encoder: SiglipVQEncoder
    /// The backend.
    public var backend: DecoderBackend
    /// The backend's prompt template.
    public var template: PromptTemplate
    /// The encoder's code frequencies (for the rarity pruner).
    public var frequencies: CodeFrequencies?
    /// Whether visual tokens carry the continuous `z_e` instead of code vectors (manifest
    /// `config.bypass_quantizer`: the continuous fine-tuning baseline).
    public var bypassesQuantizer: Bool
    /// The decoder's shape for FLOP counting.
    public var shape: DecoderShape

    /// Loads a pair of bundle directories; refuses a pair the checker refuses.
    public init(encoder encoderDirectory: URL, backend backendDirectory: URL) throws {
        let (encoderBundle, backendBundle) = try step("opening \(encoderDirectory.lastPathComponent) and \(backendDirectory.lastPathComponent)") {
            (try BundleArchive.open(directory: encoderDirectory), try BundleArchive.open(directory: backendDirectory))
        }
        let report = checkCompatibility(encoder: encoderBundle, backend: backendBundle, runtimes: .craftDefault)
        let pipeline = try step("pairing \(encoderBundle.manifest.reference) with \(backendBundle.manifest.reference)") {
            try Pipeline(pair: try report.requirePairing(), encoder: encoderBundle, backend: backendBundle)
        }
        guard let encoder = pipeline.encoder as? SiglipVQEncoder, let backend = pipeline.backend as? DecoderBackend else {
            throw ExperimentError("\(encoderBundle.manifest.reference) with \(backendBundle.manifest.reference) did not load as a SigLIP-VQ encoder and a decoder backend")
        }
        self.encoder = encoder
        self.backend = backend
        template = pipeline.template
        frequencies = pipeline.codeFrequencies
        bypassesQuantizer = encoderBundle.manifest.config?["bypass_quantizer"]?.boolValue ?? false
        if let llama = backend.model as? LlamaModel {
            let c = llama.configuration
            shape = DecoderShape(layers: c.hiddenLayers, hidden: c.hiddenSize, heads: c.attentionHeads, kvHeads: c.kvHeads,
                                 mlpSize: c.intermediateSize, vocabulary: c.vocabularySize, gatedMLP: true)
        } else if let gpt2 = backend.model as? GPT2Model {
            let c = gpt2.configuration
            shape = DecoderShape(layers: c.layers, hidden: c.hiddenSize, heads: c.heads, kvHeads: c.heads, mlpSize: c.innerSize,
                                 vocabulary: c.vocabularySize, gatedMLP: false)
        } else {
            throw ExperimentError("\(backendBundle.manifest.reference) is neither Llama nor GPT-2")
        }
    }

    /// The visual tokens of a batch of images `[B, 3, H, W]`, with `z_e` as features when the encoder
    /// bypasses its quantizer, and the per-image commitment distances.
    func tokens(_ pixels: Tensor) throws -> (tokens: [VisualTokens], distances: [Double]) {
        try withoutGradients {
            var tokens = try encoder.encode(pixels)
            let continuous = try encoder.features(pixels, tower: encoder.tower)
            var distances: [Double] = []
            let codebook = encoder.frozenCodebook
            for index in tokens.indices {
                let ze = continuous.sliced(along: 0, index..<(index + 1)).squeezed(0)
                // z_q from the codes (the tokens' features are z_e when the encoder bypasses its quantizer).
                let zq = Tensor(try codebook.embed(tokens[index].codes.scalars), shape: [tokens[index].count, codebook.dimension])
                distances.append(Double((ze - zq).squared().sum(along: -1).mean().scalars[0]))
                if bypassesQuantizer { tokens[index].features = ze.detached() }
            }
            return (tokens, distances)
        }
    }

    /// Scores the pair on `dataset`; `seed` seeds the random control, `visualPositionIDs` says how
    /// the backend numbers the kept visual tokens.
    public func score(
        _ dataset: TrainingDataset, pixels: PixelCache, keepRatio: Double = 1, pruner: PrunerKind = .craft, seed: UInt64 = 0,
        timedImages: Int = 0, visualPositionIDs: VisualPositionIDs = .consecutive
    ) throws -> PairScore {
        let images = dataset.imagesInOrder
        let options = GenerationOptions(maximumNewTokens: 3, visualPositionIDs: visualPositionIDs)
        let cost = try PruningCost(shape: shape)
        let prune = try pruner.pruning(
            frequencies: frequencies ?? CodeFrequencies(entries: encoder.frozenCodebook.entries), keepRatio: keepRatio, seed: seed)
        var correct = 0, total = 0, visualCount = 0.0, flops = 0.0, distance = 0.0
        var timed = 0.0, timedCount = 0
        for start in stride(from: 0, to: images.count, by: 64) {
            let group = Array(images[start..<min(start + 64, images.count)])
            let batch = Tensor.concatenated(try group.map { try pixels.pixels(for: $0.examples[0]).unsqueezed(0) }, along: 0)
            let (tokens, distances) = try self.tokens(batch)
            for (offset, (image, visual)) in zip(group, tokens).enumerated() {
                distance += distances[offset]
                let kept = try prune(visual, start + offset)
                for example in image.examples {
                    let segments = template.segments(visual: kept, prompt: example.prompt)
                    let answer = try backend.generate(segments, options: options)
                    if AnswerScoring.matches(answer.text, expected: example.answer) { correct += 1 }
                    total += 1
                    let textTokens = backend.prefixTokens.count + (try backend.tokenize(example.prompt)).count
                    flops += try cost.forwardFLOPs(textTokens: textTokens, visualTokens: kept.count)
                    visualCount += Double(kept.count)
                }
                if start + offset < timedImages {
                    // Time the whole path for this image (encode, prune, answer each question) again,
                    // one image at a time as a user would run it.
                    let single = try pixels.pixels(for: image.examples[0]).unsqueezed(0)
                    let began = ContinuousClock.now
                    let (again, _) = try self.tokens(single)
                    let prunedAgain = try prune(again[0], start + offset)
                    for example in image.examples {
                        _ = try backend.generate(template.segments(visual: prunedAgain, prompt: example.prompt), options: options)
                    }
                    let elapsed = ContinuousClock.now - began
                    timed += Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
                    timedCount += image.examples.count
                }
            }
        }
        let questions = Double(max(total, 1))
        return PairScore(
            accuracy: Double(correct) / questions, correct: correct, total: total, keepRatio: keepRatio, pruner: pruner,
            visualTokens: visualCount / questions, decoderFLOPs: flops / questions,
            latencyMilliseconds: timedCount == 0 ? 0 : timed / Double(timedCount),
            commitmentDistance: distance / Double(max(images.count, 1)), prunerSeed: pruner == .random ? seed : nil,
            visualPositionIDs: visualPositionIDs)
    }
}
