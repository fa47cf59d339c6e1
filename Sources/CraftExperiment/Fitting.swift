// The two pretraining loops the miniature's base models need: the SigLIP towers trained with a
// sigmoid loss against the label texts, and a decoder backend (with its projector) trained on the
// base encoder's quantized tokens to answer the questions. Both use CraftTraining's AdamW, cosine
// schedule and clipping; both are seeded (the batch order is a SplitMix64 shuffle per epoch).
import CraftCore
import CraftModels
import CraftTraining
import Foundation
import TensorCore

/// A seeded per-epoch order of `count` items.
func shuffledOrder(count: Int, epoch: Int, seed: UInt64) -> [Int] {
    var generator = SplitMix64(seed: seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(epoch + 1))
    var order = Array(0..<count)
    guard count > 1 else { return order }
    for index in stride(from: count - 1, to: 0, by: -1) {
        order.swapAt(index, Int(generator.next() % UInt64(index + 1)))
    }
    return order
}

/// One optimisation loop: AdamW + cosine schedule with 5 % warmup + clipping at 1.
struct OptimisationLoop {
    var parameters: ParameterSet
    var optimizer: AdamW
    let schedule: LearningRateSchedule
    private(set) var step = 0

    init(parameters: ParameterSet, learningRate: Float, totalSteps: Int, weightDecay: Double = 0.01) {
        self.parameters = parameters
        optimizer = AdamW(parameters: parameters, configuration: AdamW.Configuration(weightDecay: weightDecay))
        schedule = LearningRateSchedule(kind: .cosineWithWarmup, baseLearningRate: learningRate,
                                        warmupSteps: max(totalSteps / 20, 1), totalSteps: max(totalSteps, 1))
    }

    /// One step on the loss `body` builds from differentiable leaves; returns the loss value.
    mutating func minimise(_ body: (ParameterSet) throws -> Tensor) throws -> Float {
        let leaves = parameters.requiringGradients()
        let loss = try body(leaves)
        let value = loss.scalars[0]
        guard value.isFinite else {
            throw ExperimentError("the training loss became \(value) at step \(step + 1); lower the learning rate")
        }
        let (clipped, _) = GradientClipping.clipped(leaves.gradients(of: loss), maximumNorm: 1)
        try optimizer.step(&parameters, gradients: clipped, learningRate: schedule.learningRate(at: step))
        step += 1
        return value
    }
}

/// Contrastive pretraining of the vision and text towers on labelled images.
enum ContrastiveFit {
    /// Trains both towers; the loss is SigLIP's sigmoid loss between each image and every class text
    /// ("a photo of a {label}"), +1 for its own class and −1 for the others, with a learnable
    /// log-temperature (init log 10) and bias (init −log(classes − 1), the prior log-odds of a pair
    /// matching; SigLIP's −10 suits batches of thousands, not ten texts).
    static func train(
        vision: SiglipVisionModel, text: SiglipTextModel, images: [Tensor], labels: [Int], classTexts: [[Int]],
        epochs: Int, batchSize: Int, learningRate: Float, seed: UInt64, log: (String) -> Void
    ) throws -> (vision: SiglipVisionModel, text: SiglipTextModel) {
        var tensors: [String: Tensor] = [:]
        for (name, tensor) in vision.parameters { tensors["vision/" + name] = tensor }
        for (name, tensor) in text.parameters { tensors["text/" + name] = tensor }
        tensors["logit_scale"] = Tensor([Float(Foundation.log(10.0))], shape: [1])
        tensors["logit_bias"] = Tensor([-Float(Foundation.log(Double(max(classTexts.count - 1, 1))))], shape: [1])
        let perEpoch = (images.count + batchSize - 1) / batchSize
        var loop = OptimisationLoop(parameters: ParameterSet(tensors), learningRate: learningRate, totalSteps: perEpoch * epochs)
        func split(_ set: ParameterSet, _ prefix: String) -> [String: Tensor] {
            Dictionary(uniqueKeysWithValues: set.tensors.compactMap { name, tensor in
                name.hasPrefix(prefix) ? (String(name.dropFirst(prefix.count)), tensor) : nil
            })
        }
        let classes = classTexts.count
        for epoch in 0..<epochs {
            let order = shuffledOrder(count: images.count, epoch: epoch, seed: seed)
            var total: Float = 0
            for start in stride(from: 0, to: order.count, by: batchSize) {
                let batch = Array(order[start..<min(start + batchSize, order.count)])
                total += try loop.minimise { leaves in
                    let tower = try SiglipVisionModel(configuration: vision.configuration, weights: split(leaves, "vision/"))
                    let textTower = try SiglipTextModel(configuration: text.configuration, weights: split(leaves, "text/"))
                    let pixels = Tensor.concatenated(batch.map { images[$0].unsqueezed(0) }, along: 0)
                    guard let pooled = try tower(pixelValues: pixels).poolerOutput else {
                        throw ExperimentError("the vision tower has no pooling head; contrastive pretraining needs vision_use_head")
                    }
                    let textEmbeddings = try textTower(tokens: classTexts).poolerOutput
                    let scale = leaves["logit_scale"]!.reshaped([]).exp()
                    let logits = normalizedRows(pooled).matmul(normalizedRows(textEmbeddings).transposed()) * scale
                        + leaves["logit_bias"]!.reshaped([])
                    var signs = [Float](repeating: -1, count: batch.count * classes)
                    for (row, index) in batch.enumerated() { signs[row * classes + labels[index]] = 1 }
                    return -(Tensor(signs, shape: [batch.count, classes]) * logits).logSigmoid().sum() / Float(batch.count)
                }
            }
            log("contrastive epoch \(epoch + 1)/\(epochs): mean loss \(total / Float(max(order.count / batchSize, 1)))")
        }
        let trained = loop.parameters
        return (try SiglipVisionModel(configuration: vision.configuration, weights: split(trained, "vision/").mapValues { $0.detached() }),
                try SiglipTextModel(configuration: text.configuration, weights: split(trained, "text/").mapValues { $0.detached() }))
    }

    static func normalizedRows(_ rows: Tensor) -> Tensor {
        rows / rows.squared().sum(along: -1, keepingDimensions: true).sqrt().clamped(min: 1e-12)
    }
}

/// One question about an image, as token ids, for backend training.
struct BackendExample {
    /// The visual tokens' codebook-space vectors `[tokens, D]` (the base encoder's quantized vectors).
    var visual: Tensor
    /// The prompt's ids.
    var prompt: [Int]
    /// The answer's ids followed by the end-of-sequence id.
    var answer: [Int]
}

/// Training a decoder backend (all of it, or only its projector) on answer cross-entropy.
enum BackendFit {
    /// Which tensors train.
    enum Parts { case all, projector }

    /// Builds a decoder from named tensors.
    typealias Builder = ([String: Tensor]) throws -> any CausalLanguageModel

    /// The answer cross-entropy of one example (mean over its answer tokens), the L_SAL convention:
    /// logits at position t predict token t+1; only answer positions count.
    static func loss(
        model: any CausalLanguageModel, projectorWeight: Tensor, projectorBias: Tensor, prefix: [Int], example: BackendExample
    ) throws -> Tensor {
        var pieces: [Tensor] = []
        if !prefix.isEmpty { pieces.append(try model.embed(tokens: prefix)) }
        pieces.append(example.visual.linear(weight: projectorWeight, bias: projectorBias))
        pieces.append(try model.embed(tokens: example.prompt))
        pieces.append(try model.embed(tokens: example.answer))
        let embeddings = Tensor.concatenated(pieces, along: 0)
        let length = embeddings.shape[0]
        let answerStart = length - example.answer.count
        var targets = [Int32](repeating: -100, count: length)
        for (offset, token) in example.answer.enumerated() { targets[answerStart + offset - 1] = Int32(token) }
        return try Tensor.crossEntropy(logits: model.logits(embeddings: embeddings), targets: IndexTensor(targets))
    }

    /// Visual-token dropout, so that a backend meets pruned images in training: for half of the
    /// examples (seeded per epoch and example), keep a random subset of `round(r·N)` tokens, r uniform
    /// in [0.5, 1), in their original order (as a pruner keeps them).
    static func droppedTokens(_ visual: Tensor, epoch: Int, index: Int, seed: UInt64) throws -> Tensor {
        var generator = SplitMix64(seed: seed &+ 0xD1B5_4A32_D192_ED03 &* UInt64(epoch + 1) &+ UInt64(index) &* 0x9E37_79B9)
        func uniform() -> Double { Double(generator.next() >> 11) / Double(1 << 53) }
        guard uniform() < 0.5 else { return visual }
        let count = visual.shape[0]
        let kept = max(1, Int((Double(count) * (0.5 + 0.5 * uniform())).rounded()))
        var order = Array(0..<count)
        for position in 0..<kept {
            order.swapAt(position, position + Int(generator.next() % UInt64(count - position)))
        }
        return try visual.rows(at: IndexTensor(Array(order[0..<kept]).sorted()))
    }

    /// Trains and returns the decoder tensors and the projector.
    static func train(
        build: Builder, weights: [String: Tensor], projectorWeight: Tensor, projectorBias: Tensor, prefix: [Int],
        examples: [BackendExample], parts: Parts, epochs: Int, batchSize: Int, learningRate: Float, seed: UInt64,
        tokenDropout: Bool = false, log: (String) -> Void
    ) throws -> (weights: [String: Tensor], projectorWeight: Tensor, projectorBias: Tensor) {
        var tensors: [String: Tensor] = ["projector/weight": projectorWeight, "projector/bias": projectorBias]
        if parts == .all { for (name, tensor) in weights { tensors["model/" + name] = tensor } }
        let frozen = try build(weights)
        let perEpoch = (examples.count + batchSize - 1) / batchSize
        var loop = OptimisationLoop(parameters: ParameterSet(tensors), learningRate: learningRate, totalSteps: perEpoch * epochs,
                                    weightDecay: parts == .all ? 0.01 : 0)
        for epoch in 0..<epochs {
            let order = shuffledOrder(count: examples.count, epoch: epoch, seed: seed)
            var total: Float = 0
            var steps = 0
            for start in stride(from: 0, to: order.count, by: batchSize) {
                let batch = Array(order[start..<min(start + batchSize, order.count)])
                total += try loop.minimise { leaves in
                    let model: any CausalLanguageModel
                    if parts == .all {
                        model = try build(Dictionary(uniqueKeysWithValues: leaves.tensors.compactMap { name, tensor in
                            name.hasPrefix("model/") ? (String(name.dropFirst(6)), tensor) : nil
                        }))
                    } else {
                        model = frozen
                    }
                    var sum: Tensor?
                    for index in batch {
                        var example = examples[index]
                        if tokenDropout { example.visual = try droppedTokens(example.visual, epoch: epoch, index: index, seed: seed) }
                        let term = try loss(model: model, projectorWeight: leaves["projector/weight"]!, projectorBias: leaves["projector/bias"]!,
                                            prefix: prefix, example: example)
                        sum = sum.map { $0 + term } ?? term
                    }
                    return sum! / Float(batch.count)
                }
                steps += 1
            }
            log("backend epoch \(epoch + 1)/\(epochs): mean answer loss \(total / Float(max(steps, 1)))")
        }
        let trained = loop.parameters
        let decoder = parts == .all
            ? Dictionary(uniqueKeysWithValues: trained.tensors.compactMap { name, tensor in
                name.hasPrefix("model/") ? (String(name.dropFirst(6)), tensor.detached()) : nil
            })
            : weights
        return (decoder, trained["projector/weight"]!.detached(), trained["projector/bias"]!.detached())
    }
}
