import CraftCore
import Foundation
import TensorCore
import TestSupport
import Testing
@testable import CraftTraining

@Suite("CRAFT losses against torch.autograd")
struct LossTests {
    @Test("SigLIP sigmoid loss and its gradients match transformers' SiglipModel loss")
    func sigmoidLossMatchesReference() throws {
        let f = try TrainingFixtures.load().siglip
        let image = Tensor(f.image, shape: [f.n, f.d]).requiringGradient()
        let text = Tensor(f.text, shape: [f.n, f.d]).requiringGradient()
        let scale = Tensor(f.logit_scale).requiringGradient()
        let bias = Tensor(f.logit_bias).requiringGradient()
        let loss = try sigmoidContrastiveLoss(imageEmbeddings: image, textEmbeddings: text, logitScale: scale, logitBias: bias)
        let check = approximatelyEqual([loss.scalar], [f.loss])
        #expect(check.ok, "\(check.report)")
        let grads = loss.gradients(withRespectTo: [image, text, scale, bias])
        for (actual, expected) in [(grads[0].scalars, f.grad_image), (grads[1].scalars, f.grad_text),
                                   (grads[2].scalars, [f.grad_logit_scale]), (grads[3].scalars, [f.grad_logit_bias])] {
            let result = approximatelyEqual(actual, expected, relative: 1e-4, absolute: 1e-6)
            #expect(result.ok, "\(result.report)")
        }
    }

    @Test("sigmoid loss rejects mismatched shapes with a typed error")
    func sigmoidLossRejectsBadShapes() {
        #expect(throws: TrainingError.self) {
            try sigmoidContrastiveLoss(imageEmbeddings: .zeros([2, 3]), textEmbeddings: .zeros([3, 3]),
                                       logitScale: Tensor(0), logitBias: Tensor(0))
        }
    }

    @Test("answer cross-entropy masks prompt positions and shifts by one, as F.cross_entropy")
    func answerCrossEntropyMatchesReference() throws {
        let f = try TrainingFixtures.load().answer_ce
        let logits = Tensor(f.logits, shape: [f.t, f.v]).requiringGradient()
        let sequence = AnswerSequence(logits: logits, answerTokens: Array(f.tokens[f.answer_start...]), answerStart: f.answer_start)
        #expect(sequence.shiftedLabels.prefix(f.answer_start - 1).allSatisfy { $0 == ignoreIndex })
        let loss = try answerCrossEntropy([sequence])
        let check = approximatelyEqual([loss.scalar], [f.loss])
        #expect(check.ok, "\(check.report)")
        let gradient = loss.gradients(withRespectTo: [logits])[0]
        let result = approximatelyEqual(gradient.scalars, f.grad_logits)
        #expect(result.ok, "\(result.report)")
    }

    @Test("answer cross-entropy rejects an answer that does not fit")
    func answerCrossEntropyRejectsOverflow() throws {
        let sequence = AnswerSequence(logits: .zeros([3, 4]), answerTokens: [1, 2, 3], answerStart: 1)
        #expect(throws: TrainingError.self) { try answerCrossEntropy([sequence]) }
        let badToken = AnswerSequence(logits: .zeros([3, 4]), answerTokens: [9], answerStart: 2)
        #expect(throws: TrainingError.self) { try answerCrossEntropy([badToken]) }
        // Logits from position 2 on cannot score an answer at position 2 (its row is position 1's).
        let late = AnswerSequence(logits: .zeros([3, 4]), answerTokens: [1], answerStart: 2, firstPosition: 2)
        #expect(throws: TrainingError.self) { try answerCrossEntropy([late]) }
        // From position 1 on they can, and score what whole-sequence logits score.
        var generator = SplitMix64(seed: 4)
        let whole = Tensor(randomNormal: [5, 4], generator: &generator)
        let full = try answerCrossEntropy([AnswerSequence(logits: whole, answerTokens: [3, 0], answerStart: 2)])
        let tail = AnswerSequence(logits: whole.sliced(along: 0, 1..<5), answerTokens: [3, 0], answerStart: 2, firstPosition: 1)
        #expect(tail.length == 5 && tail.shiftedLabels == [3, 0, ignoreIndex])
        #expect(try answerCrossEntropy([tail]).scalar == full.scalar)
    }

    @Test("composite objective: encoder gradient through straight-through VQ, frozen projector and head equals torch's")
    func compositeGradientMatchesReference() throws {
        let f = try TrainingFixtures.load().composite
        let weight = Tensor(f.enc_w, shape: [f.d, f.din]).requiringGradient()
        let bias = Tensor(f.enc_b, shape: [f.d]).requiringGradient()
        let pixels = Tensor(f.pixels, shape: [f.b, f.p, f.din])
        let codebook = try Codebook(values: f.codebook, entries: f.k, dimension: f.d, metric: .l2)
        let head = TinyHead(
            projectorWeight: Tensor(f.proj_w, shape: [f.h, f.d]), projectorBias: Tensor(f.proj_b, shape: [f.h]),
            embedding: Tensor(f.embed, shape: [f.v, f.h]), hidden: Tensor(f.head_w1, shape: [f.h, f.h]),
            output: Tensor(f.head_w2, shape: [f.v, f.h]))

        let features = pixels.linear(weight: weight, bias: bias)
        let vq = try codebook.straightThrough(features)
        #expect(vq.codes.scalars == f.codes)
        var answers: [AnswerSequence] = []
        for example in 0..<f.b {
            let prompt = Array(f.prompts[(example * f.lp)..<((example + 1) * f.lp)])
            let answer = Array(f.answers[(example * f.la)..<((example + 1) * f.la)])
            let visual = vq.quantized.sliced(along: 0, example..<(example + 1)).squeezed(0)
            let logits = try head.logits(visual: visual, tokens: prompt + answer)
            answers.append(AnswerSequence(logits: logits, answerTokens: answer, answerStart: f.p + f.lp))
        }
        let objective = CraftObjective(contrastiveWeight: f.lambda_con, commitmentWeight: f.lambda_commit,
                                       logitScale: f.logit_scale, logitBias: f.logit_bias)
        let loss = try objective.loss(
            quantization: vq, answers: answers, pooledImageFeatures: features.mean(along: 1),
            textEmbeddings: Tensor(f.text_emb, shape: [f.b, f.d]))
        let values = [loss.terms.alignment, loss.terms.commitment, loss.terms.contrastive, loss.terms.total].compactMap { $0 }
        let valueCheck = approximatelyEqual(values, [f.sal, f.commit, f.con, f.total])
        #expect(valueCheck.ok, "\(valueCheck.report)")
        let grads = loss.total.gradients(withRespectTo: [weight, bias])
        let weightCheck = approximatelyEqual(grads[0].scalars, f.grad_enc_w, relative: 1e-4, absolute: 1e-6)
        #expect(weightCheck.ok, "\(weightCheck.report)")
        let biasCheck = approximatelyEqual(grads[1].scalars, f.grad_enc_b, relative: 1e-4, absolute: 1e-6)
        #expect(biasCheck.ok, "\(biasCheck.report)")
    }

    @Test("terms that are off are neither computed nor reported")
    func switchedOffTermsAreAbsent() throws {
        let codebook = try Codebook(values: [0, 0, 1, 1], entries: 2, dimension: 2, metric: .l2)
        let features = Tensor([0.2, 0.1, 0.9, 1.2], shape: [1, 2, 2]).requiringGradient()
        let vq = try codebook.straightThrough(features)
        let objective = CraftObjective(usesContrastive: false, usesAlignment: false)
        let loss = try objective.loss(quantization: vq, answers: nil, pooledImageFeatures: nil, textEmbeddings: nil)
        #expect(loss.terms.alignment == nil && loss.terms.contrastive == nil)
        let expected: Float = ((0.04 + 0.01 + 0.01 + 0.04) / 4)
        #expect(abs((loss.terms.commitment ?? -1) - expected) < 1e-6)
        #expect(abs(loss.terms.total - 0.1 * expected) < 1e-6)
        #expect(throws: TrainingError.self) {
            try CraftObjective(usesContrastive: false, usesCommitment: false, usesAlignment: false).validate()
        }
    }
}

/// The fixture's frozen "decoder-like" head: projector, token embeddings, causal running mean, tanh
/// layer, output layer (scripts/training_fixtures.py section 3).
struct TinyHead {
    let projectorWeight: Tensor, projectorBias: Tensor, embedding: Tensor, hidden: Tensor, output: Tensor

    func logits(visual: Tensor, tokens: [Int32]) throws -> Tensor {
        let projected = visual.linear(weight: projectorWeight, bias: projectorBias)
        let text = try embedding.rows(at: IndexTensor(tokens))
        let sequence = Tensor.concatenated([projected, text], along: 0)
        let length = sequence.shape[0]
        var causal = [Float](repeating: 0, count: length * length)
        for row in 0..<length { for column in 0...row { causal[row * length + column] = 1 / Float(row + 1) } }
        let mixed = Tensor(causal, shape: [length, length]).matmul(sequence)
        return mixed.linear(weight: hidden).tanh().linear(weight: output)
    }
}

@Suite("CRAFT losses against finite differences")
struct LossFiniteDifferenceTests {
    @Test("sigmoid contrastive loss gradient matches central differences")
    func contrastiveFiniteDifferences() throws {
        var generator = SplitMix64(seed: 12)
        let image = Tensor(randomNormal: [3, 4], generator: &generator)
        let text = Tensor(randomNormal: [3, 4], generator: &generator)
        func loss(_ x: Tensor) throws -> Float {
            try sigmoidContrastiveLoss(imageEmbeddings: x, textEmbeddings: text, logitScale: Tensor(1.2), logitBias: Tensor(-1.5)).scalar
        }
        let leaf = image.requiringGradient()
        let analytic = try sigmoidContrastiveLoss(imageEmbeddings: leaf, textEmbeddings: text, logitScale: Tensor(1.2), logitBias: Tensor(-1.5))
            .gradients(withRespectTo: [leaf])[0].scalars
        let step: Float = 1e-2
        for index in 0..<image.scalarCount {
            var plus = image.scalars, minus = image.scalars
            plus[index] += step
            minus[index] -= step
            let numeric = (try loss(Tensor(plus, shape: [3, 4])) - loss(Tensor(minus, shape: [3, 4]))) / (2 * step)
            #expect(abs(numeric - analytic[index]) < 2e-3, "element \(index): numeric \(numeric), analytic \(analytic[index])")
        }
    }
}
