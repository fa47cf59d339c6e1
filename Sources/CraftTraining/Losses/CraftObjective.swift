// CRAFT's training objective (docs/training.md):
// L = lambda_con * L_con + lambda_commit * L_commit + L_SAL, with the straight-through estimator
// z_q_hat = z_e + stopgrad(z_q - z_e) and L_commit = mean ||z_e - stopgrad(z_q)||^2 as in
// vector-quantize-pytorch (CraftCore's Codebook+Differentiable.swift).
import CraftCore
import Foundation
import TensorCore

/// The weights and switches of CRAFT's objective `λ_con·L_con + λ_commit·L_commit + L_SAL`.
///
/// Each term can be turned off; a term that is off is neither computed nor reported. Use
/// ``classification`` or ``visualQuestionAnswering`` for the paper's defaults.
public struct CraftObjective: Sendable, Codable, Equatable {
    /// `λ_con`, the weight of the SigLIP contrastive term (1.0 for classification, 0.1 for VQA).
    public var contrastiveWeight: Float = 1.0
    /// `λ_commit`, the weight of the commitment term (0.1).
    public var commitmentWeight: Float = 0.1
    /// Whether `L_con` is part of the loss (it also needs text embeddings from a frozen text tower).
    public var usesContrastive = true
    /// Whether `L_commit` is part of the loss.
    public var usesCommitment = true
    /// Whether `L_SAL` (answer-token cross-entropy under the frozen surrogate) is part of the loss.
    public var usesAlignment = true
    /// The contrastive logit scale as its log (`log t`), fixed during training. Use the value the
    /// towers learned (an encoder bundle's `config.logit_scale`); `log 10` is SigLIP's *initial*
    /// value, which leaves even a correctly matched pair at a low probability.
    public var logitScale: Float = Foundation.log(10)
    /// The contrastive logit bias `b`, fixed during training (the learned one; SigLIP's init is `−10`).
    public var logitBias: Float = -10
    /// `λ_drift`, the weight of an LDIFS-style feature-drift penalty `mean ‖z_e − z_e_base‖²` against
    /// the base encoder's features of the same images; 0 (the default) turns it off. Not part of
    /// CRAFT: it regularises the *continuous* baseline, whose features have no codebook to anchor them.
    public var driftWeight: Float = 0

    /// Creates an objective; the defaults are the classification setting.
    public init(
        contrastiveWeight: Float = 1.0, commitmentWeight: Float = 0.1, usesContrastive: Bool = true,
        usesCommitment: Bool = true, usesAlignment: Bool = true, logitScale: Float = Foundation.log(10),
        logitBias: Float = -10
    ) {
        self.contrastiveWeight = contrastiveWeight
        self.commitmentWeight = commitmentWeight
        self.usesContrastive = usesContrastive
        self.usesCommitment = usesCommitment
        self.usesAlignment = usesAlignment
        self.logitScale = logitScale
        self.logitBias = logitBias
    }

    enum CodingKeys: String, CodingKey {
        case contrastiveWeight, commitmentWeight, usesContrastive, usesCommitment, usesAlignment, logitScale, logitBias, driftWeight
    }

    /// Decodes an objective; one saved before ``driftWeight`` existed has none.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        contrastiveWeight = try c.decode(Float.self, forKey: .contrastiveWeight)
        commitmentWeight = try c.decode(Float.self, forKey: .commitmentWeight)
        usesContrastive = try c.decode(Bool.self, forKey: .usesContrastive)
        usesCommitment = try c.decode(Bool.self, forKey: .usesCommitment)
        usesAlignment = try c.decode(Bool.self, forKey: .usesAlignment)
        logitScale = try c.decode(Float.self, forKey: .logitScale)
        logitBias = try c.decode(Float.self, forKey: .logitBias)
        driftWeight = try c.decodeIfPresent(Float.self, forKey: .driftWeight) ?? 0
    }

    /// The paper's classification setting: `λ_con = 1.0`, `λ_commit = 0.1`.
    public static let classification = CraftObjective(contrastiveWeight: 1.0)
    /// The paper's VQA setting: `λ_con = 0.1`, `λ_commit = 0.1`.
    public static let visualQuestionAnswering = CraftObjective(contrastiveWeight: 0.1)

    /// Checks the weights.
    ///
    /// - Throws: ``TrainingError`` (`invalidConfiguration`) for a negative or non-finite weight, or
    ///   when every term is off.
    public func validate() throws {
        for (name, value) in [("contrastive weight", contrastiveWeight), ("commitment weight", commitmentWeight),
                              ("drift weight", driftWeight), ("logit scale", logitScale), ("logit bias", logitBias)] where !value.isFinite {
            throw TrainingError(.invalidConfiguration, "the \(name) is \(value); use a finite number")
        }
        guard contrastiveWeight >= 0, commitmentWeight >= 0, driftWeight >= 0 else {
            throw TrainingError(.invalidConfiguration, "loss weights must be non-negative, got λ_con \(contrastiveWeight), λ_commit \(commitmentWeight) and λ_drift \(driftWeight)")
        }
        guard usesContrastive || usesCommitment || usesAlignment else {
            throw TrainingError(.invalidConfiguration, "every term of the CRAFT objective is off; turn on at least one of alignment, commitment or contrastive")
        }
    }

    /// Computes the loss of one batch.
    ///
    /// - Parameters:
    ///   - quantization: the straight-through quantization of the batch (for `L_commit`).
    ///   - answers: the surrogate's logits for each example, fed `z_q_hat` (for `L_SAL`); `nil` or
    ///     empty turns `L_SAL` off for this batch.
    ///   - pooledImageFeatures: `[n, d]` pooled encoder features (for `L_con`).
    ///   - textEmbeddings: `[m, d]` frozen text-tower embeddings of the batch's distinct texts
    ///     (``ContrastiveTargets/texts``); `nil` turns `L_con` off for this batch.
    ///   - contrastiveTargets: `[n, m]` `±1` (``ContrastiveTargets/tensor``); `nil` pairs text `i`
    ///     with image `i` only (then `m = n`).
    ///   - baseFeatures: the base encoder's `z_e` of the same images, for the drift penalty (used
    ///     when ``driftWeight`` is above 0).
    ///   - commitment: `L_commit` computed by the encoder (a residual codebook's per-level loss);
    ///     `nil` computes `mean ‖z_e − stopgrad(z_q)‖²`.
    /// - Returns: the total (differentiable) and each term's value.
    public func loss(
        quantization: StraightThroughQuantization, answers: [AnswerSequence]?, pooledImageFeatures: Tensor?,
        textEmbeddings: Tensor?, contrastiveTargets: Tensor? = nil, baseFeatures: Tensor? = nil, commitment: Tensor? = nil
    ) throws -> CraftLoss {
        var total: Tensor?
        var terms = CraftLoss.Terms()
        func add(_ term: Tensor, weight: Float) {
            let weighted = weight == 1 ? term : term * weight
            total = total.map { $0 + weighted } ?? weighted
        }
        if usesAlignment, let answers, !answers.isEmpty {
            let alignment = try answerCrossEntropy(answers)
            terms.alignment = alignment.scalar
            add(alignment, weight: 1)
        }
        if usesCommitment {
            let commitment = commitment ?? Tensor.meanSquaredError(quantization.encoderOutput, quantization.codeVectors.stopGradient())
            terms.commitment = commitment.scalar
            add(commitment, weight: commitmentWeight)
        }
        if usesContrastive, let textEmbeddings, let pooledImageFeatures {
            let contrastive = try sigmoidContrastiveLoss(
                imageEmbeddings: pooledImageFeatures, textEmbeddings: textEmbeddings.stopGradient(),
                logitScale: Tensor(logitScale), logitBias: Tensor(logitBias), targets: contrastiveTargets)
            terms.contrastive = contrastive.scalar
            add(contrastive, weight: contrastiveWeight)
        }
        if driftWeight > 0, let baseFeatures {
            let drift = Tensor.meanSquaredError(quantization.encoderOutput, baseFeatures.stopGradient())
            terms.drift = drift.scalar
            add(drift, weight: driftWeight)
        }
        guard let total else {
            throw TrainingError(.invalidLossInput, "no term of the CRAFT objective could be computed for this batch; give answers, text embeddings or turn on the commitment term")
        }
        terms.total = total.scalar
        return CraftLoss(total: total, terms: terms)
    }
}

/// The kind of task an encoder is adapted for, which picks the paper's default `λ_con`.
public enum TrainingTask: String, Sendable, Codable, CaseIterable {
    /// Classification (answers are class names): `λ_con = 1.0`.
    case classification
    /// Visual question answering: `λ_con = 0.1`.
    case vqa

    /// The paper's objective for the task (``CraftObjective/classification`` or
    /// ``CraftObjective/visualQuestionAnswering``).
    public var objective: CraftObjective {
        switch self {
        case .classification: CraftObjective.classification
        case .vqa: CraftObjective.visualQuestionAnswering
        }
    }
}

/// The loss of one batch: the differentiable total and each term's value.
public struct CraftLoss: Sendable {
    /// The value of each term (`nil` when the term is off).
    public struct Terms: Sendable, Codable, Equatable {
        /// The weighted sum.
        public var total: Float = 0
        /// `L_SAL`, unweighted.
        public var alignment: Float?
        /// `L_commit`, unweighted.
        public var commitment: Float?
        /// `L_con`, unweighted.
        public var contrastive: Float?
        /// The feature-drift penalty, unweighted (``CraftObjective/driftWeight``).
        public var drift: Float?
        /// Creates empty terms.
        public init() {}
    }

    /// The scalar loss to differentiate.
    public var total: Tensor
    /// Each term's value.
    public var terms: Terms
}
