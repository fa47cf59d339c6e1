// Contrastive pretraining of a SigLIP vision tower (with its attention-pooling head) and a SigLIP
// text tower, as transformers.SiglipModel trains them (return_loss=True): the pairwise sigmoid loss
// between L2-normalised pooled image and text embeddings with a learnable logit scale and bias.
import CraftModels
import Foundation
import TensorCore

/// The options of contrastive pretraining; the optimiser's (``OptimizationOptions``) read and set as
/// its own.
@dynamicMemberLookup
public struct ContrastivePretrainerConfiguration: Sendable, Codable, Equatable {
    /// Learning rate (1e-3), warmup, epochs over the pairs (1), image–text pairs per step (16; at
    /// least 2: the other pairs of the batch are the negatives), clipping, AdamW and the order seed (0).
    public var optimization: OptimizationOptions
    /// The initial logit scale (the log of the temperature; SigLIP starts at `log 10`).
    public var initialLogitScale: Float = Float(Foundation.log(10.0))
    /// The initial logit bias (SigLIP starts at −10).
    public var initialLogitBias: Float = -10

    /// Creates a configuration with the defaults above.
    public init(learningRate: Float = 1e-3, epochs: Int = 1, batchSize: Int = 16, seed: UInt64 = 0) {
        optimization = OptimizationOptions(learningRate: learningRate, epochs: epochs, batchSize: batchSize, seed: seed)
    }

    /// The options of ``optimization``, read and set as this configuration's own.
    public subscript<Value>(dynamicMember field: WritableKeyPath<OptimizationOptions, Value>) -> Value {
        get { optimization[keyPath: field] }
        set { optimization[keyPath: field] = newValue }
    }

    /// Checks ranges.
    ///
    /// - Throws: ``TrainingError`` (`invalidConfiguration`) naming the first bad option.
    public func validate() throws {
        try optimization.validate(
            run: "contrastive ", suggestedLearningRate: "1e-3", minimumBatchSize: 2,
            batchSizeReason: " (the other pairs are the negatives)")
        try requireOption(initialLogitScale.isFinite && initialLogitBias.isFinite, "the initial logit scale and bias must be finite")
    }
}

/// What the contrastive pretrainer reports after each optimiser step (its loss: the batch's sigmoid
/// loss).
public typealias ContrastivePretrainingProgress = PretrainingProgress

/// The trained towers and the learned logit scale and bias.
public struct ContrastivePretrainingResult: Sendable {
    /// The trained vision tower (its ``SiglipVisionModel/parameters`` are the tensors to write).
    public var vision: SiglipVisionModel
    /// The trained text tower.
    public var text: SiglipTextModel
    /// The learned logit scale (log temperature), as a SigLIP checkpoint's `logit_scale`.
    public var logitScale: Float
    /// The learned logit bias, as a SigLIP checkpoint's `logit_bias`.
    public var logitBias: Float
    /// The loss of each optimiser step.
    public var losses: [Float]
}

/// Trains a SigLIP vision tower and a SigLIP text tower jointly on image–text pairs with
/// ``sigmoidContrastiveLoss(imageEmbeddings:textEmbeddings:logitScale:logitBias:)``.
///
/// The image embedding is the vision tower's attention-pooled output (`pooler_output`), the text
/// embedding the text tower's head on the last position after the final layernorm (as
/// `SiglipTextModel`); texts are tokenized and padded to the text tower's `max_position_embeddings`
/// with the pad id, as SigLIP's processor does with `padding="max_length"` (longer texts are cut).
/// All tensors of both towers, the logit scale and the logit bias are trained with AdamW, a cosine
/// schedule and global-norm clipping; pairs are shuffled each epoch with a ``SplitMix64`` stream of
/// the seed. Each step rebuilds both towers from the parameters as differentiable leaves.
///
/// ```swift
/// let pretrainer = try ContrastivePretrainer(vision: visionTower, text: textTower, padToken: 0,
///                                            tokenize: { try tokenizer.encode($0, addSpecialTokens: false) },
///                                            configuration: .init(epochs: 10, batchSize: 16))
/// let result = try pretrainer.train(pixels: images, texts: captions)
/// ```
public struct ContrastivePretrainer: Sendable {
    static let logitScaleName = "logit_scale"
    static let logitBiasName = "logit_bias"
    static let visionPrefix = "vision."
    static let textPrefix = "text."

    /// The vision tower training starts from.
    public let vision: SiglipVisionModel
    /// The text tower training starts from.
    public let text: SiglipTextModel
    /// The id padding each text to the text tower's length.
    public let padToken: Int
    /// Turns a text into token ids of the text tower's vocabulary.
    public let tokenize: @Sendable (String) throws -> [Int]
    /// The options.
    public let configuration: ContrastivePretrainerConfiguration

    /// Prepares training.
    ///
    /// - Throws: ``TrainingError`` (`invalidConfiguration`) when the vision tower has no pooling head,
    ///   the towers' embedding widths differ, the pad id is outside the text vocabulary, or an option
    ///   is out of range.
    public init(
        vision: SiglipVisionModel, text: SiglipTextModel, padToken: Int, tokenize: @escaping @Sendable (String) throws -> [Int],
        configuration: ContrastivePretrainerConfiguration
    ) throws {
        try configuration.validate()
        guard vision.hasHead else {
            throw TrainingError(.invalidConfiguration, "contrastive pretraining needs the vision tower's attention-pooling head; set vision_use_head to true")
        }
        guard vision.configuration.hiddenSize == text.configuration.projectionSize else {
            throw TrainingError(.invalidConfiguration, "the vision tower's pooled width \(vision.configuration.hiddenSize) differs from the text tower's projection size \(text.configuration.projectionSize); make them equal")
        }
        guard padToken >= 0 && padToken < text.configuration.vocabularySize else {
            throw TrainingError(.invalidConfiguration, "the pad id \(padToken) is outside the text vocabulary of \(text.configuration.vocabularySize)")
        }
        self.vision = vision
        self.text = text
        self.padToken = padToken
        self.tokenize = tokenize
        self.configuration = configuration
    }

    /// The starting parameters: both towers' tensors under `vision.` and `text.`, and the logit scale and bias.
    func initialParameters() -> ParameterSet {
        var tensors: [String: Tensor] = [:]
        for (name, tensor) in vision.parameters { tensors[Self.visionPrefix + name] = tensor }
        for (name, tensor) in text.parameters { tensors[Self.textPrefix + name] = tensor }
        tensors[Self.logitScaleName] = Tensor([configuration.initialLogitScale], shape: [1])
        tensors[Self.logitBiasName] = Tensor([configuration.initialLogitBias], shape: [1])
        return ParameterSet(tensors)
    }

    /// The two towers built from `parameters`.
    func towers(_ parameters: ParameterSet) throws -> (SiglipVisionModel, SiglipTextModel) {
        var visionWeights: [String: Tensor] = [:], textWeights: [String: Tensor] = [:]
        for name in parameters.names {
            if name.hasPrefix(Self.visionPrefix) { visionWeights[String(name.dropFirst(Self.visionPrefix.count))] = parameters[name]! }
            if name.hasPrefix(Self.textPrefix) { textWeights[String(name.dropFirst(Self.textPrefix.count))] = parameters[name]! }
        }
        return (try SiglipVisionModel(configuration: vision.configuration, weights: visionWeights, origin: "the trained vision parameters"),
                try SiglipTextModel(configuration: text.configuration, weights: textWeights, origin: "the trained text parameters"))
    }

    /// Token rows padded (or cut) to the text tower's length.
    func tokenRows(_ texts: [String]) throws -> [[Int]] {
        let length = text.configuration.maxPositionEmbeddings
        return try texts.enumerated().map { index, string in
            let ids = Array(try tokenize(string).prefix(length))
            if let bad = ids.first(where: { $0 < 0 || $0 >= text.configuration.vocabularySize }) {
                throw TrainingError(.invalidDataset, "text \(index) (\"\(string)\") has token id \(bad), outside the text vocabulary of \(text.configuration.vocabularySize); use the text tower's tokenizer")
            }
            return ids + Array(repeating: padToken, count: length - ids.count)
        }
    }

    /// The sigmoid loss of one batch under `parameters`.
    func loss(pixels: Tensor, tokens: [[Int]], parameters: ParameterSet) throws -> Tensor {
        let (visionTower, textTower) = try towers(parameters)
        guard let images = try visionTower(pixelValues: pixels).poolerOutput else {
            throw TrainingError(.invalidConfiguration, "the vision tower returned no pooled output")
        }
        let texts = try textTower(tokens: tokens).poolerOutput
        return try sigmoidContrastiveLoss(imageEmbeddings: images, textEmbeddings: texts,
                                          logitScale: parameters[Self.logitScaleName]!, logitBias: parameters[Self.logitBiasName]!)
    }

    /// Trains on pairs `(pixels[i], texts[i])`.
    ///
    /// - Parameters:
    ///   - pixels: `[N, channels, imageSize, imageSize]`, normalised as the tower expects.
    ///   - texts: `N` texts, `texts[i]` describing image `i`.
    ///   - progress: called after every optimiser step.
    /// - Throws: ``TrainingError`` (`invalidDataset`) when the counts differ, there are fewer than two
    ///   pairs, the pixels are shaped wrongly or a token is outside the vocabulary; (`invalidLossInput`)
    ///   when the loss becomes non-finite.
    public func train(
        pixels: Tensor, texts: [String], progress: ((ContrastivePretrainingProgress) -> Void)? = nil
    ) throws -> ContrastivePretrainingResult {
        try checkPixels(pixels, count: texts.count, what: "one text per image")
        let tokens = try tokenRows(texts)
        return try optimise(count: texts.count, pixels: pixels, progress: progress) { batchPixels, indices, parameters in
            try loss(pixels: batchPixels, tokens: indices.map { tokens[$0] }, parameters: parameters)
        }
    }

    /// Trains on labelled images against a fixed list of class texts (for example "a photo of a
    /// {label}" for each class): every image of a batch is scored against every class text with
    /// SigLIP's sigmoid loss, label +1 for its own class and −1 for the others, so images of the same
    /// class are never pushed apart (as they would be as negatives of each other in ``train(pixels:texts:progress:)``).
    /// The loss of a batch is ``classSigmoidLoss(imageEmbeddings:classEmbeddings:labels:logitScale:logitBias:)``.
    /// With few classes, an initial logit bias near `−log(classes − 1)` (the prior log-odds of a pair
    /// matching) suits better than SigLIP's −10.
    ///
    /// - Parameters:
    ///   - pixels: `[N, channels, imageSize, imageSize]`, normalised as the tower expects.
    ///   - labels: `N` class indices into `classTexts`.
    ///   - classTexts: the classes' texts (at least two).
    ///   - progress: called after every optimiser step.
    /// - Throws: ``TrainingError`` (`invalidDataset`) when the counts differ, there are fewer than two
    ///   images or classes, a label is outside `classTexts`, the pixels are shaped wrongly or a token is
    ///   outside the vocabulary; (`invalidLossInput`) when the loss becomes non-finite.
    public func train(
        pixels: Tensor, labels: [Int], classTexts: [String], progress: ((ContrastivePretrainingProgress) -> Void)? = nil
    ) throws -> ContrastivePretrainingResult {
        try checkPixels(pixels, count: labels.count, what: "one label per image")
        guard classTexts.count >= 2 else {
            throw TrainingError(.invalidDataset, "class-text contrastive pretraining got \(classTexts.count) class texts; give at least two")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classTexts.count }) {
            throw TrainingError(.invalidDataset, "image \(bad) has label \(labels[bad]), outside the \(classTexts.count) class texts; labels index classTexts")
        }
        let tokens = try tokenRows(classTexts)
        return try optimise(count: labels.count, pixels: pixels, progress: progress) { batchPixels, indices, parameters in
            let (visionTower, textTower) = try towers(parameters)
            guard let images = try visionTower(pixelValues: batchPixels).poolerOutput else {
                throw TrainingError(.invalidConfiguration, "the vision tower returned no pooled output")
            }
            return try Self.classSigmoidLoss(
                imageEmbeddings: images, classEmbeddings: try textTower(tokens: tokens).poolerOutput, labels: indices.map { labels[$0] },
                logitScale: parameters[Self.logitScaleName]!, logitBias: parameters[Self.logitBiasName]!)
        }
    }

    /// SigLIP's sigmoid loss of `n` images against `c` class texts: with normalised embeddings,
    /// `logits = exp(logitScale)·images·classesᵀ + logitBias` (`[n, c]`), targets `+1` at
    /// `(i, labels[i])` and `−1` elsewhere, loss `−Σ log σ(target·logit) / n`. When the classes are the
    /// batch's own texts (`labels[i] == i`), this is ``sigmoidContrastiveLoss(imageEmbeddings:textEmbeddings:logitScale:logitBias:)``.
    ///
    /// - Throws: ``TrainingError`` (`invalidLossInput`) for mismatched shapes or labels outside the classes.
    public static func classSigmoidLoss(
        imageEmbeddings: Tensor, classEmbeddings: Tensor, labels: [Int], logitScale: Tensor, logitBias: Tensor
    ) throws -> Tensor {
        guard imageEmbeddings.rank == 2, classEmbeddings.rank == 2, imageEmbeddings.shape[1] == classEmbeddings.shape[1],
              imageEmbeddings.shape[0] == labels.count, !labels.isEmpty, classEmbeddings.shape[0] > 0 else {
            throw TrainingError(.invalidLossInput, "the class sigmoid loss needs image embeddings [n, d], class embeddings [c, d] and n labels, got \(imageEmbeddings.shape), \(classEmbeddings.shape) and \(labels.count) labels")
        }
        guard logitScale.scalarCount == 1, logitBias.scalarCount == 1 else {
            throw TrainingError(.invalidLossInput, "the class sigmoid loss needs a one-element logit scale and bias, got shapes \(logitScale.shape) and \(logitBias.shape)")
        }
        let classes = classEmbeddings.shape[0]
        if let bad = labels.first(where: { $0 < 0 || $0 >= classes }) {
            throw TrainingError(.invalidLossInput, "label \(bad) is outside the \(classes) classes")
        }
        let logits = l2Normalized(imageEmbeddings).matmul(l2Normalized(classEmbeddings).transposed()) * logitScale.reshaped([]).exp()
            + logitBias.reshaped([])
        var signs = [Float](repeating: -1, count: labels.count * classes)
        for (row, label) in labels.enumerated() { signs[row * classes + label] = 1 }
        return -(Tensor(signs, shape: [labels.count, classes]) * logits).logSigmoid().sum() / Float(labels.count)
    }

    /// Checks that `pixels` holds `count ≥ 2` images of the tower's shape.
    func checkPixels(_ pixels: Tensor, count: Int, what: String) throws {
        let c = vision.configuration
        guard pixels.rank == 4, pixels.shape[0] == count, count >= 2,
              Array(pixels.shape[1...]) == [c.channels, c.imageSize, c.imageSize] else {
            throw TrainingError(.invalidDataset, "contrastive pretraining takes pixels [N, \(c.channels), \(c.imageSize), \(c.imageSize)] with N ≥ 2 and \(what), got pixels \(pixels.shape) and \(count)")
        }
    }

    /// The optimisation loop shared by both modes: `count` items in seeded batches, `batchLoss` giving
    /// the loss of a batch's pixels and item indices under the differentiable parameters.
    func optimise(
        count: Int, pixels: Tensor, progress: ((ContrastivePretrainingProgress) -> Void)?,
        batchLoss: (Tensor, [Int], ParameterSet) throws -> Tensor
    ) throws -> ContrastivePretrainingResult {
        let batchSize = Swift.min(configuration.batchSize, count)
        var parameters = initialParameters()
        // A last batch of one pair has no negatives: it joins the previous batch's epoch remainder.
        let batchesPerEpoch = Swift.max(1, count / batchSize)
        let losses = try configuration.optimization.optimise(
            &parameters, run: "contrastive ", batchesPerEpoch: batchesPerEpoch,
            batches: { generator in
                let order = BackendTrainer.shuffled(count, generator: &generator)
                return (0..<batchesPerEpoch).map { batch in
                    Array(order[(batch * batchSize)..<(batch == batchesPerEpoch - 1 ? count : (batch + 1) * batchSize)])
                }
            },
            loss: { _, indices, leaves in
                let batchPixels = Tensor.concatenated(indices.map { pixels.sliced(along: 0, $0..<($0 + 1)) }, along: 0)
                return try batchLoss(batchPixels, indices, leaves)
            },
            progress: { progress?($0) })
        let (visionTower, textTower) = try towers(parameters)
        return ContrastivePretrainingResult(vision: visionTower, text: textTower, logitScale: parameters[Self.logitScaleName]!.scalar,
                                            logitBias: parameters[Self.logitBiasName]!.scalar, losses: losses)
    }

    /// Image-to-text retrieval: for each image, the index of the most similar text (cosine of the
    /// pooled embeddings), without gradients.
    ///
    /// - Throws: ``ModelError`` or ``TrainingError`` for pixels or texts the towers cannot take.
    public static func retrieve(
        vision: SiglipVisionModel, text: SiglipTextModel, pixels: Tensor, texts: [String], padToken: Int,
        tokenize: @escaping @Sendable (String) throws -> [Int]
    ) throws -> [Int] {
        let helper = try ContrastivePretrainer(vision: vision, text: text, padToken: padToken, tokenize: tokenize,
                                               configuration: ContrastivePretrainerConfiguration(batchSize: 2))
        return try withoutGradients {
            guard let images = try vision(pixelValues: pixels).poolerOutput else { return [] }
            let textEmbeddings = try text(tokens: try helper.tokenRows(texts)).poolerOutput
            let similarity = l2Normalized(images).matmul(l2Normalized(textEmbeddings).transposed())
            return similarity.argmax(along: 1).scalars.map { Int($0) }
        }
    }
}
