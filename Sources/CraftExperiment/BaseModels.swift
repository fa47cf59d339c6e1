// Stage `base` of the miniature (docs/experiment.md, "Base models"): SigLIP vision and text towers
// pretrained contrastively on the general domain, a k-means codebook over the vision tower's tokens,
// and two backends of different families (A: Llama, B: GPT-2), each with its own projector, trained
// on the base encoder's quantized tokens to answer the questions. Written as bundles, packed, and
// published.
import CraftBundles
import CraftCore
import CraftModels
import CraftTraining
import Foundation
import TensorCore

/// Builds the base encoder and both backends.
public enum BaseModels {
    /// The configurations the settings describe.
    static func visionConfiguration(_ s: ExperimentSettings) -> SiglipVisionConfiguration {
        SiglipVisionConfiguration(hiddenSize: s.visionHidden, intermediateSize: s.visionIntermediate, hiddenLayers: s.visionLayers,
                                  attentionHeads: s.visionHeads, imageSize: s.imageSize, patchSize: s.patchSize, useHead: true)
    }

    static func textConfiguration(_ s: ExperimentSettings, vocabulary: Int) -> SiglipTextConfiguration {
        SiglipTextConfiguration(vocabularySize: vocabulary, hiddenSize: s.textHidden, intermediateSize: 2 * s.textHidden,
                                hiddenLayers: s.textLayers, attentionHeads: 2, maxPositionEmbeddings: s.textPositions,
                                projectionSize: s.visionHidden, padTokenID: 0)
    }

    static func llamaConfiguration(_ s: ExperimentSettings, vocabulary: Int, bos: Int, eos: Int) -> LlamaConfiguration {
        var configuration = LlamaConfiguration(hiddenSize: s.llamaHidden, intermediateSize: s.llamaIntermediate, hiddenLayers: s.llamaLayers,
                                               attentionHeads: s.llamaHeads, kvHeads: s.llamaKVHeads, vocabularySize: vocabulary)
        configuration.maxPositionEmbeddings = s.contextLength
        configuration.bosTokenID = bos
        configuration.eosTokenIDs = [eos]
        return configuration
    }

    static func gpt2Configuration(_ s: ExperimentSettings, vocabulary: Int, eos: Int) -> GPT2Configuration {
        var configuration = GPT2Configuration(hiddenSize: s.gpt2Hidden, layers: s.gpt2Layers, heads: s.gpt2Heads,
                                              positions: s.contextLength, vocabularySize: vocabulary)
        configuration.bosTokenID = eos
        configuration.eosTokenIDs = [eos]
        return configuration
    }

    /// The shared tokenizer and its special ids.
    struct Vocabulary {
        var tokenizer: Tokenizer
        var bos: Int
        var eos: Int
        var pad: Int

        init(_ url: URL) throws {
            tokenizer = try step("reading the tokenizer \(url.path)") { try Tokenizer(contentsOf: url) }
            guard let bos = tokenizer.id(for: "<bos>"), let eos = tokenizer.id(for: "<eos>"), let pad = tokenizer.id(for: "<pad>") else {
                throw ExperimentError("\(url.path) lacks <bos>, <eos> or <pad>; re-export it with scripts/export_digits.py")
            }
            (self.bos, self.eos, self.pad) = (bos, eos, pad)
        }

        func ids(_ text: String) throws -> [Int] { try tokenizer.encode(text, addSpecialTokens: false) }
    }

    /// The continuous tokens `[images·tokens, D]` of `images` at the quantization point (the output of
    /// encoder layer `layer`, before the post-layernorm; `nil`: after it).
    static func tokenFeatures(_ tower: SiglipVisionModel, layer: Int?, images: [Tensor]) throws -> Tensor {
        try withoutGradients {
            var pieces: [Tensor] = []
            for start in stride(from: 0, to: images.count, by: 64) {
                let batch = Tensor.concatenated(images[start..<min(start + 64, images.count)].map { $0.unsqueezed(0) }, along: 0)
                let hidden = try tower(pixelValues: batch, stopAfterLayer: layer).lastHiddenState
                pieces.append(hidden.reshaped([-1, hidden.shape[2]]))
            }
            return Tensor.concatenated(pieces, along: 0).detached()
        }
    }

    /// The backend training examples: each image's quantized vectors (`continuous`: its continuous
    /// features `z_e`) with each of its questions.
    static func backendExamples(
        encoder: SiglipVQEncoder, dataset: TrainingDataset, pixels: PixelCache, continuous: Bool = false
    ) throws -> [BackendTrainingExample] {
        var examples: [BackendTrainingExample] = []
        let images = dataset.imagesInOrder
        for start in stride(from: 0, to: images.count, by: 64) {
            let group = Array(images[start..<min(start + 64, images.count)])
            let batch = Tensor.concatenated(try group.map { try pixels.pixels(for: $0.examples[0]).unsqueezed(0) }, along: 0)
            let tokens = try encoder.encode(batch)
            let continuousFeatures = continuous ? try withoutGradients { try encoder.features(batch, tower: encoder.tower) } : nil
            for (index, (image, visual)) in zip(group, tokens).enumerated() {
                guard let features = continuousFeatures?.sliced(along: 0, index..<(index + 1)).squeezed(0).detached() ?? visual.features else {
                    throw ExperimentError("the encoder gave tokens without features for \(image.path)")
                }
                for example in image.examples {
                    examples.append(BackendTrainingExample(visual: features, prompt: example.prompt, answer: example.answer))
                }
            }
        }
        return examples
    }

    /// One backend to train: the untrained model, its bundle name, its examples and codebook.
    struct BackendRun {
        enum Kind { case main, continuous, set }
        var backend: (name: String, model: any CausalLanguageModel, hidden: Int, prefix: [Int], seed: UInt64)
        var name: String
        var examples: [BackendTrainingExample]
        var codebook: Codebook
        var kind: Kind
    }

    /// A k-means codebook over `features`; with `depth` above 1 a residual one, each level fitted on
    /// the residuals the levels before it leave.
    static func fitCodebook(_ features: Tensor, entries: Int, depth: Int, settings: ExperimentSettings) throws -> Codebook {
        var residuals = features
        var values: [Float] = []
        var metric = CodebookMetric.l2
        for level in 0..<depth {
            let book = try KMeansCodebook.fit(vectors: residuals, entries: entries, iterations: settings.kmeansIterations,
                                              seed: settings.baseSeed &+ UInt64(level), metric: .l2)
            metric = book.metric
            values += book.values
            if level + 1 < depth {
                let chosen = try book.quantize(residuals.scalars, count: residuals.shape[0]).quantized
                residuals = (residuals - Tensor(chosen, shape: residuals.shape)).detached()
            }
        }
        return try Codebook(values: values, entries: entries, dimension: features.shape[1], depth: depth, metric: metric)
    }

    /// Five per cent of `steps` (at least one) as warmup, the miniature's schedule.
    static func warmup(_ steps: Int) -> Int { max(steps / 20, 1) }

    /// Runs the stage: trains everything, writes the three bundles, packs and publishes them.
    public static func run(_ context: ExperimentContext) throws {
        let settings = context.settings
        let data = try ExperimentData(directory: context.dataDirectory, settings: settings)
        let vocabulary = try Vocabulary(data.tokenizerURL)
        let train = try data.dataset(.general, "train")
        let pixels = try PixelCache(datasets: [train], preprocessing: data.preprocessing)
        let images = train.imagesInOrder
        let labelNames = ExperimentLabels.names
        let labels = try images.map { image -> Int in
            guard let label = image.examples[0].label, let index = labelNames.firstIndex(of: label) else {
                throw ExperimentError("\(image.path) has no digit label; every line needs \"label\"")
            }
            return index
        }
        let imageTensors = try images.map { try pixels.pixels(for: $0.examples[0]) }
        let tokenizer = vocabulary.tokenizer
        let tokenize: @Sendable (String) throws -> [Int] = { try tokenizer.encode($0, addSpecialTokens: false) }

        // 1. Towers: every image against the ten class texts, +1 for its own class, −1 for the others;
        // the logit bias starts at −log(classes − 1), the prior log-odds of a pair matching (SigLIP's
        // −10 suits batches of thousands, not ten texts).
        context.log("base: contrastive pretraining of the SigLIP towers on \(images.count) general images")
        let visionConfiguration = visionConfiguration(settings)
        let textConfiguration = textConfiguration(settings, vocabulary: vocabulary.tokenizer.vocabularySize)
        let initialVision = try SiglipVisionModel(configuration: visionConfiguration,
                                                  weights: ModelInitialization.siglipVision(visionConfiguration, seed: settings.baseSeed))
        let initialText = try SiglipTextModel(configuration: textConfiguration,
                                              weights: ModelInitialization.siglipText(textConfiguration, seed: settings.baseSeed &+ 1))
        var contrastive = ContrastivePretrainerConfiguration(learningRate: settings.contrastiveLearningRate, epochs: settings.contrastiveEpochs,
                                                             batchSize: settings.contrastiveBatch, seed: settings.baseSeed)
        let contrastiveBatch = min(settings.contrastiveBatch, images.count)
        contrastive.warmupSteps = warmup(max(1, images.count / contrastiveBatch) * settings.contrastiveEpochs)
        contrastive.optimizer = AdamW.Configuration(weightDecay: 0.01)
        contrastive.initialLogitBias = -Float(Foundation.log(Double(max(labelNames.count - 1, 1))))
        let pretrainer = try ContrastivePretrainer(vision: initialVision, text: initialText, padToken: vocabulary.pad, tokenize: tokenize,
                                                   configuration: contrastive)
        let towers = try pretrainer.train(
            pixels: Tensor.concatenated(imageTensors.map { $0.unsqueezed(0) }, along: 0), labels: labels,
            classTexts: labelNames.map { "a photo of a \($0)" }
        ) { progress in
            if progress.step % max(progress.totalSteps / settings.contrastiveEpochs, 1) == 0 {
                context.log("contrastive step \(progress.step)/\(progress.totalSteps): loss \(progress.loss)")
            }
        }
        let (vision, text) = (towers.vision, towers.text)

        // 2. Codebook.
        let features = try tokenFeatures(vision, layer: settings.quantizationLayer, images: imageTensors)
        context.log("base: k-means codebook (K \(settings.codebookEntries)) over \(features.shape[0]) tokens")
        let codebook = try KMeansCodebook.fit(vectors: features, entries: settings.codebookEntries, iterations: settings.kmeansIterations,
                                              seed: settings.baseSeed, metric: .l2)
        let encoder = try SiglipVQEncoder(tower: vision, codebook: codebook, quantizeAfterLayer: settings.quantizationLayer,
                                          preprocessing: data.preprocessing)
        var frequencies = CodeFrequencies(entries: codebook.entries)
        let assignment = try codebook.quantize(features.scalars, count: features.shape[0])
        try frequencies.add(codes: assignment.codes.map { Int($0) })

        // 3. Backends.
        let examples = try backendExamples(encoder: encoder, dataset: train, pixels: pixels)
        let vocabularySize = vocabulary.tokenizer.vocabularySize
        let llamaConfiguration = llamaConfiguration(settings, vocabulary: vocabularySize, bos: vocabulary.bos, eos: vocabulary.eos)
        let gpt2Configuration = gpt2Configuration(settings, vocabulary: vocabularySize, eos: vocabulary.eos)
        let backends: [(name: String, model: any CausalLanguageModel, hidden: Int, prefix: [Int], seed: UInt64)] = [
            (MiniatureBundles.llama,
             try LlamaModel(configuration: llamaConfiguration, weights: ModelInitialization.llama(llamaConfiguration, seed: settings.baseSeed &+ 2)),
             settings.llamaHidden, [vocabulary.bos], settings.baseSeed &+ 2),
            (MiniatureBundles.gpt2,
             try GPT2Model(configuration: gpt2Configuration, weights: ModelInitialization.gpt2(gpt2Configuration, seed: settings.baseSeed &+ 3)),
             settings.gpt2Hidden, [], settings.baseSeed &+ 3),
        ]
        let encoderArtifacts = EncoderArtifacts(tower: vision, codebook: codebook, textTower: text, frequencies: frequencies,
                                                quantizationLayer: settings.quantizationLayer, logitScale: towers.logitScale,
                                                logitBias: towers.logitBias)
        var packed = [try BundleWriting.writeEncoder(
            encoderArtifacts, to: context.bundleDirectory(MiniatureBundles.encoder + "-base"), name: MiniatureBundles.encoder,
            version: MiniatureBundles.baseVersion,
            summary: "SigLIP-VQ encoder for 16x16 handwritten digits (64 tokens, K \(codebook.entries)), trained on the general domain",
            domains: ["digits", "general"], tokenizer: data.tokenizerURL, packedInto: context.packedDirectory,
            provenance: ["method": "pretrain", "created_by": "craft-experiment base", "seed": settings.baseSeed,
                         "dataset": "examples/data/digits/general-train.jsonl"])]
        // Every backend to train: A and B on the main codebook (published), then the work-directory
        // only ones: the continuous control (trained on z_e, beside the base encoder with its
        // quantizer bypassed) and a pair for each further codebook set (beside its encoder).
        let side = context.workDirectory.appendingPathComponent("side-bundles")
        var runs: [BackendRun] = backends.map { BackendRun(backend: $0, name: $0.name, examples: examples, codebook: codebook, kind: .main) }
        if settings.continuousControl {
            _ = try BundleWriting.writeEncoder(
                encoderArtifacts, to: context.bundleDirectory(MiniatureBundles.continuous(MiniatureBundles.encoder) + "-base"),
                name: MiniatureBundles.encoder, version: MiniatureBundles.baseVersion + "-continuous",
                summary: "the base digits encoder with its quantizer bypassed (continuous control)", domains: ["digits", "general"],
                tokenizer: data.tokenizerURL, packedInto: side, config: ["bypass_quantizer": true])
            let continuous = try backendExamples(encoder: encoder, dataset: train, pixels: pixels, continuous: true)
            runs += backends.map { BackendRun(backend: $0, name: MiniatureBundles.continuous($0.name), examples: continuous, codebook: codebook, kind: .continuous) }
        }
        for set in settings.codebookSets {
            let setCodebook = try fitCodebook(features, entries: set.entries, depth: set.depth, settings: settings)
            context.log("base: codebook set \(set.id) (K \(set.entries), depth \(set.depth))")
            let setEncoder = try SiglipVQEncoder(tower: vision, codebook: setCodebook, quantizeAfterLayer: settings.quantizationLayer,
                                                 preprocessing: data.preprocessing)
            var setFrequencies = CodeFrequencies(entries: setCodebook.entries)
            let setCodes = try setCodebook.quantize(features.scalars, count: features.shape[0]).codes
            try setFrequencies.add(codes: stride(from: 0, to: setCodes.count, by: set.depth).map { Int(setCodes[$0]) })
            var artifacts = encoderArtifacts
            artifacts.codebook = setCodebook
            artifacts.frequencies = setFrequencies
            _ = try BundleWriting.writeEncoder(
                artifacts, to: context.bundleDirectory(MiniatureBundles.inSet(MiniatureBundles.encoder, set.id) + "-base"),
                name: MiniatureBundles.inSet(MiniatureBundles.encoder, set.id), version: MiniatureBundles.baseVersion,
                summary: "the base digits tower quantized on codebook set \(set.id) (K \(set.entries), depth \(set.depth))",
                domains: ["digits", "general"], tokenizer: data.tokenizerURL, packedInto: side)
            let setExamples = try backendExamples(encoder: setEncoder, dataset: train, pixels: pixels)
            runs += backends.map { BackendRun(backend: $0, name: MiniatureBundles.inSet($0.name, set.id), examples: setExamples, codebook: setCodebook, kind: .set) }
        }
        for run in runs {
            let backend = run.backend
            context.log("base: training backend \(run.name) on \(run.examples.count) general questions")
            let untrained = try DecoderBackend(
                model: backend.model, tokenizer: vocabulary.tokenizer, codebook: run.codebook,
                projectorWeight: randomMatrix(rows: backend.hidden, columns: run.codebook.dimension, seed: backend.seed &+ 100),
                projectorBias: Tensor.zeros([backend.hidden]), contextLength: settings.contextLength, prefixTokens: backend.prefix,
                endOfSequenceTokens: [vocabulary.eos])
            var configuration = BackendTrainerConfiguration(parts: .all, learningRate: settings.backendLearningRate, epochs: settings.backendEpochs,
                                                            batchSize: settings.backendBatch, seed: backend.seed)
            configuration.warmupSteps = warmup((run.examples.count + settings.backendBatch - 1) / settings.backendBatch * settings.backendEpochs)
            configuration.optimizer = AdamW.Configuration(weightDecay: 0.01)
            // Every row scored, as when the committed bundles were made (`make reproduce` byte for byte).
            configuration.scoresAnswerRowsOnly = false
            // B's learned absolute positions would meet pruned (shorter) images only at test time;
            // A's rotary positions are relative and need no such training.
            if backend.name == MiniatureBundles.gpt2 && settings.gpt2TokenDropout { configuration.visualTokenDropout = 0.5 }
            let trained = try BackendTrainer(backend: untrained, configuration: configuration).train(run.examples) { progress in
                if progress.step % max(progress.totalSteps / settings.backendEpochs, 1) == 0 {
                    context.log("backend step \(progress.step)/\(progress.totalSteps): answer loss \(progress.loss)")
                }
            }
            let family = backend.name == MiniatureBundles.llama ? "Llama-family" : "GPT-2-family"
            let summary: String, provenance: [String: Any]
            switch run.kind {
            case .main:
                summary = "\(family) decoder answering questions about handwritten digits through the \(MiniatureBundles.encoder) codebook"
                provenance = ["method": "pretrain", "created_by": "craft-experiment base", "seed": backend.seed,
                              "dataset": "examples/data/digits/general-train.jsonl"]
            case .continuous:
                summary = "\(family) decoder trained on the base encoder's continuous features (continuous control)"
                provenance = ["method": "pretrain-continuous", "created_by": "craft-experiment base", "seed": backend.seed]
            case .set:
                summary = "\(family) decoder trained on the tokens of \(run.name)'s codebook set"
                provenance = ["method": "pretrain", "created_by": "craft-experiment base", "seed": backend.seed]
            }
            let written = try BundleWriting.writeBackend(
                BackendArtifacts(model: trained.backend.model, projectorWeight: trained.projectorWeight,
                                 projectorBias: trained.projectorBias ?? Tensor.zeros([backend.hidden])),
                to: context.bundleDirectory(run.name + "-base"), name: run.name, version: MiniatureBundles.baseVersion,
                summary: summary, domains: ["digits", "general"], codebook: run.codebook, tokenizer: data.tokenizerURL,
                contextLength: settings.contextLength, packedInto: run.kind == .main ? context.packedDirectory : side,
                provenance: provenance)
            if run.kind == .main { packed.append(written) }
        }
        try publish(packed, context)
        for backend in backends {
            let pair = try LoadedPair(encoder: context.bundleDirectory(MiniatureBundles.encoder + "-base"),
                                      backend: context.bundleDirectory(backend.name + "-base"))
            for domain in [Domain.general, .strong] {
                let test = try data.dataset(domain, "test")
                let score = try pair.score(test, pixels: try PixelCache(datasets: [test], preprocessing: data.preprocessing))
                context.log(String(format: "base: %@ on %@ test: %.1f %% of %d", backend.name, domain.rawValue, 100 * score.accuracy, score.total))
            }
        }
    }

    /// Publishes packed bundles into the context's registry (when it has one).
    static func publish(_ bundles: [PackedBundle], _ context: ExperimentContext) throws {
        for packed in bundles {
            if let registry = context.registry {
                try BundleWriting.publish(packed, into: registry)
                context.log("published \(packed.manifest.name)@\(packed.manifest.version) (\(packed.size) bytes) into \(registry.path)")
            }
        }
    }

    /// A seeded `N(0, 1/√columns)` matrix (a fresh linear layer's scale).
    static func randomMatrix(rows: Int, columns: Int, seed: UInt64) -> Tensor {
        var generator = SplitMix64(seed: seed)
        let scale = 1 / Float(columns).squareRoot()
        var values = [Float](); values.reserveCapacity(rows * columns)
        while values.count < rows * columns {
            let u1 = max(Double(generator.next() >> 11) / Double(1 << 53), 1e-12), u2 = Double(generator.next() >> 11) / Double(1 << 53)
            values.append(Float((-2 * Foundation.log(u1)).squareRoot() * cos(2 * .pi * u2)) * scale)
        }
        return Tensor(values, shape: [rows, columns])
    }
}

/// The digit names, in label order.
public enum ExperimentLabels {
    /// "zero" … "nine".
    public static let names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
}
