import CraftCore
import CraftModels
import Foundation
import TensorCore
import TestSupport
import Testing
@testable import CraftTraining

/// CRAFT's `L_con` as the paper specifies it: label-aware targets, pooled features from the quantized
/// path, and AdamW's parameter groups, each against torch (scripts/training_fixtures.py).
@Suite("CRAFT's contrastive term and AdamW's parameter groups against torch")
struct ContrastiveTermTests {
    static func example(_ label: String?, caption: String? = nil) -> TrainingExample {
        TrainingExample(imageURL: URL(fileURLWithPath: "/x.png"), imagePath: "x.png", prompt: "q", answer: "a",
                        caption: caption, label: label, line: 1)
    }

    @Test("images of one class share their label text as a positive; captions and labels work together")
    func targetsAreLabelAware() throws {
        let batch = [Self.example("seven"), Self.example("one"), Self.example("seven"),
                     Self.example("two"), Self.example("two", caption: "a thin two")]
        let targets = try #require(ContrastiveTargets(batch))
        #expect(targets.texts == ["a photo of a seven", "a photo of a one", "a photo of a two", "a thin two"])
        // The same matrix as the fixture's: images 0 and 2 share text 0, 3 and 4 share text 2, image 4
        // also matches its caption.
        let expected: [Float] = [
            1, -1, -1, -1,
            -1, 1, -1, -1,
            1, -1, -1, -1,
            -1, -1, 1, -1,
            -1, -1, 1, 1,
        ]
        #expect(targets.signs == expected)
        #expect(targets.signs == (try TrainingFixtures.load().siglip_targets.targets))
        #expect(ContrastiveTargets([Self.example("seven"), Self.example(nil)]) == nil)
        #expect(ContrastiveTargets([]) == nil)
    }

    @Test("the sigmoid loss with label-aware targets and its gradients match torch")
    func targetLossMatchesTorch() throws {
        let f = try TrainingFixtures.load().siglip_targets
        let image = Tensor(f.image, shape: [f.n, f.d]).requiringGradient()
        let text = Tensor(f.text, shape: [f.m, f.d])
        let scale = Tensor(f.logit_scale).requiringGradient()
        let bias = Tensor(f.logit_bias).requiringGradient()
        let loss = try sigmoidContrastiveLoss(
            imageEmbeddings: image, textEmbeddings: text, logitScale: scale, logitBias: bias,
            targets: Tensor(f.targets, shape: [f.n, f.m]))
        let value = approximatelyEqual([loss.scalar], [f.loss])
        #expect(value.ok, "\(value.report)")
        let grads = loss.gradients(withRespectTo: [image, scale, bias])
        for (actual, expected) in [(grads[0].scalars, f.grad_image), (grads[1].scalars, [f.grad_logit_scale]),
                                   (grads[2].scalars, [f.grad_logit_bias])] {
            let check = approximatelyEqual(actual, expected, relative: 1e-4, absolute: 1e-6)
            #expect(check.ok, "\(check.report)")
        }
        #expect(throws: TrainingError.self) {
            try sigmoidContrastiveLoss(imageEmbeddings: image, textEmbeddings: text, logitScale: scale, logitBias: bias,
                                       targets: Tensor.ones([f.n, f.m + 1]))
        }
    }

    @Test("L_con pools z_q_hat through the layers after the quantization point; its gradient reaches the layers below through the estimator, as in torch")
    func quantizedPathMatchesTorch() throws {
        let f = try TrainingFixtures.load().lcon_quantized
        let tower = try SiglipVisionModel(directory: TrainingFixtures.lconTower())
        #expect(tower.configuration.hiddenLayers == 2 && tower.hasHead)
        let codebook = try Codebook(values: f.codebook, entries: 16, dimension: 8, metric: .l2)
        let encoder = try SiglipTrainableEncoder(tower: tower, codebook: codebook, quantizeAfterLayer: 1)
        #expect(encoder.pooling == .quantized)
        let leaves = encoder.parameters.requiringGradients()
        let forward = try encoder.forward(Tensor(f.pixels, shape: [5, 3, 8, 8]), parameters: leaves)
        #expect(forward.quantization.codes.scalars == f.codes)
        let pooled = try #require(forward.pooledFeatures)
        let pooledCheck = approximatelyEqual(pooled.scalars, f.pooled, relative: 1e-4, absolute: 1e-5)
        #expect(pooledCheck.ok, "pooled: \(pooledCheck.report)")

        let objective = CraftObjective(contrastiveWeight: 1, usesCommitment: false, usesAlignment: false,
                                       logitScale: f.logit_scale, logitBias: f.logit_bias)
        let loss = try objective.loss(
            quantization: forward.quantization, answers: nil, pooledImageFeatures: pooled,
            textEmbeddings: Tensor(f.text, shape: [4, 8]), contrastiveTargets: Tensor(f.targets, shape: [5, 4]))
        let lossCheck = approximatelyEqual([loss.terms.contrastive ?? .nan], [f.loss], relative: 1e-4)
        #expect(lossCheck.ok, "loss: \(lossCheck.report)")
        let gradients = leaves.gradients(of: loss.total)
        for (name, expected) in [("encoder.layers.0.mlp.fc1.weight", f.grad_layer0_fc1_weight),
                                 ("embeddings.patch_embedding.weight", f.grad_patch_weight),
                                 ("encoder.layers.1.mlp.fc1.weight", f.grad_layer1_fc1_weight)] {
            let gradient = try #require(gradients[name]).scalars
            #expect(gradient.contains { $0 != 0 }, "\(name) got no gradient")
            let check = approximatelyEqual(gradient, expected, relative: 2e-3, absolute: 1e-5)
            #expect(check.ok, "\(name): \(check.report)")
        }
    }

    @Test("pooling switches: continuous pools z_e, none runs no head")
    func poolingSwitches() throws {
        let f = try TrainingFixtures.load().lcon_quantized
        let tower = try SiglipVisionModel(directory: TrainingFixtures.lconTower())
        let codebook = try Codebook(values: f.codebook, entries: 16, dimension: 8, metric: .l2)
        var encoder = try SiglipTrainableEncoder(tower: tower, codebook: codebook, quantizeAfterLayer: 1)
        let pixels = Tensor(f.pixels, shape: [5, 3, 8, 8])
        encoder.pooling = .none
        #expect(try encoder.forward(pixels, parameters: encoder.parameters).pooledFeatures == nil)
        encoder.pooling = .continuous
        let continuous = try #require(try encoder.forward(pixels, parameters: encoder.parameters).pooledFeatures)
        let hidden = try tower(pixelValues: pixels, stopAfterLayer: 1).lastHiddenState
        let expected = try #require(try tower.pooledOutput(continuingFrom: hidden, afterLayer: 1))
        #expect(continuous.scalars == expected.scalars)
        #expect(continuous.scalars != f.pooled)
        // Run to the end, the continuation of the full tower is its own pooler output.
        let full = try tower(pixelValues: pixels)
        let head = try #require(try tower.pooledOutput(continuingFrom: full.lastHiddenState, afterLayer: nil))
        #expect(head.scalars == full.poolerOutput?.scalars)
    }

    @Test("the feature-drift penalty is mean ‖z_e − z_e_base‖², weighted, with a gradient to z_e only")
    func driftPenalty() throws {
        let features = Tensor([1, 2, 3, 4, 5, 6], shape: [1, 2, 3]).requiringGradient()
        let codebook = try Codebook(values: [0, 0, 0, 1, 1, 1], entries: 2, dimension: 3, metric: .l2)
        let quantization = try codebook.straightThrough(features)
        let base = Tensor([1, 2, 2, 4, 5, 4], shape: [1, 2, 3])
        let objective = CraftObjective(usesContrastive: false, usesCommitment: false, usesAlignment: true)
        var drifting = objective
        drifting.driftWeight = 0.5
        #expect(throws: TrainingError.self) { try objective.loss(quantization: quantization, answers: nil, pooledImageFeatures: nil, textEmbeddings: nil, baseFeatures: base) }
        let loss = try drifting.loss(quantization: quantization, answers: nil, pooledImageFeatures: nil, textEmbeddings: nil, baseFeatures: base)
        // Differences 0, 0, 1, 0, 0, 2: mean of squares 5/6, weighted by 0.5.
        #expect(abs((loss.terms.drift ?? 0) - 5.0 / 6) < 1e-6)
        #expect(abs(loss.total.scalar - 5.0 / 12) < 1e-6)
        let gradient = loss.total.gradients(withRespectTo: [features])[0].scalars
        // d/dz 0.5 · mean((z − b)²) = (z − b) / 6.
        #expect(zip(gradient, [0, 0, 1.0 / 6, 0, 0, 2.0 / 6]).allSatisfy { abs($0 - Float($1)) < 1e-6 })
        var invalid = drifting
        invalid.driftWeight = -1
        #expect(throws: TrainingError.self) { try invalid.validate() }
    }

    @Test("AdamW leaves biases and norm weights undecayed, as torch with the Hugging Face Trainer's parameter groups")
    func adamWParameterGroups() throws {
        let f = try TrainingFixtures.load().adamw_groups
        let names = ["weight", "bias"]
        var parameters = ParameterSet(Dictionary(uniqueKeysWithValues: names.indices.map {
            (names[$0], Tensor(f.initial[$0], shape: f.shapes[$0]))
        }))
        var optimizer = AdamW(parameters: parameters, configuration: .init(
            beta1: f.beta1, beta2: f.beta2, epsilon: f.eps, weightDecay: f.weight_decay))
        for step in 0..<f.steps {
            let gradients = ParameterSet(Dictionary(uniqueKeysWithValues: names.indices.map {
                (names[$0], Tensor(f.grads[step][$0], shape: f.shapes[$0]))
            }))
            try optimizer.step(&parameters, gradients: gradients, learningRate: f.lr)
        }
        for (index, name) in names.enumerated() {
            let check = approximatelyEqual(parameters[name]!.scalars, f.final[index], relative: 1e-5, absolute: 1e-6)
            #expect(check.ok, "\(name): \(check.report)")
        }
        // A configuration saved before the switch existed decayed every tensor.
        let old = try JSONDecoder().decode(AdamW.Configuration.self, from: Data(#"{"beta1":0.9,"beta2":0.999,"epsilon":1e-8,"weightDecay":0.01}"#.utf8))
        #expect(old.decaysVectors)
        #expect(!AdamW.Configuration().decaysVectors)
    }
}
