// SigLIP's pairwise sigmoid loss, as transformers.SiglipModel.forward computes it (return_loss=True):
// logits = exp(logit_scale) * <x_i, y_j> + logit_bias on L2-normalised embeddings,
// loss = -sum_{i,j} log sigmoid(z_ij * logits_ij) / n with z = +1 on the diagonal and -1 elsewhere
// (the sum over all n² pairs divided by the batch size n, as in the SigLIP paper and big_vision).
// With explicit targets (CRAFT's label-aware L_con) z is any ±1 matrix [n images, m texts].
import TensorCore

/// The SigLIP pairwise sigmoid loss between image and text embeddings of a batch.
///
/// Without `targets`, pair `(i, i)` is the matching image and text and every other pair a negative.
/// Each embedding is L2 normalised first (as `SiglipModel` does), then
/// `logits_ij = exp(logitScale) · <x_i, y_j> + logitBias` and the loss is
/// `−Σ_ij log σ(z_ij · logits_ij) / n` with `z_ij = +1` when `i == j`, `−1` otherwise.
/// Note the normalisation is by the number of images `n`, not by the pairs (the reference's
/// `nll = -sum(loglik, dim=-1); loss = nll.mean()`).
///
/// With `targets` (`[n, m]`, `+1` for a matching pair and `−1` otherwise), the `m` texts need not be
/// one per image: ``ContrastiveTargets`` builds them so that images of the same class share their
/// label text as a positive instead of counting as each other's negatives.
///
/// `logitScale` is the *log* of the temperature `t`, as the `logit_scale` parameter of SigLIP
/// checkpoints (initialised to `log 10`; `logitBias` to `−10`). Pass tensors that require gradients
/// to learn them, constants to keep them fixed.
///
/// - Parameters:
///   - imageEmbeddings: pooled image features `[n, d]`.
///   - textEmbeddings: text embeddings `[m, d]`; without `targets`, `m = n` and row `i` describes image `i`.
///   - logitScale: a one-element tensor, `log t`.
///   - logitBias: a one-element tensor, `b`.
///   - targets: `[n, m]` of `±1`, or `nil` for the diagonal.
/// - Returns: a scalar loss, differentiable with respect to the embeddings, scale and bias.
/// - Throws: ``TrainingError`` (`invalidLossInput`) when the shapes differ or the batch is empty.
public func sigmoidContrastiveLoss(
    imageEmbeddings: Tensor, textEmbeddings: Tensor, logitScale: Tensor, logitBias: Tensor, targets: Tensor? = nil
) throws -> Tensor {
    let matched = targets == nil ? imageEmbeddings.shape == textEmbeddings.shape : textEmbeddings.rank == 2 && textEmbeddings.shape[0] > 0
    guard imageEmbeddings.rank == 2, imageEmbeddings.shape[0] > 0, matched, imageEmbeddings.shape.last == textEmbeddings.shape.last else {
        throw TrainingError(
            .invalidLossInput,
            "contrastive loss needs image embeddings [n, d] and text embeddings [\(targets == nil ? "n" : "m"), d] with n > 0, got \(imageEmbeddings.shape) and \(textEmbeddings.shape)")
    }
    if let targets, targets.shape != [imageEmbeddings.shape[0], textEmbeddings.shape[0]] {
        throw TrainingError(
            .invalidLossInput,
            "contrastive targets are shaped \(targets.shape) but there are \(imageEmbeddings.shape[0]) images and \(textEmbeddings.shape[0]) texts")
    }
    guard logitScale.scalarCount == 1, logitBias.scalarCount == 1 else {
        throw TrainingError(
            .invalidLossInput,
            "contrastive loss needs a one-element logit scale and bias, got shapes \(logitScale.shape) and \(logitBias.shape)")
    }
    let count = imageEmbeddings.shape[0]
    let images = l2Normalized(imageEmbeddings)
    let texts = l2Normalized(textEmbeddings)
    let scale = logitScale.reshaped([]).exp()
    let logits = images.matmul(texts.transposed()) * scale + logitBias.reshaped([])
    let labels = targets?.stopGradient() ?? {
        var signs = [Float](repeating: -1, count: count * count)
        for index in 0..<count { signs[index * count + index] = 1 }
        return Tensor(signs, shape: [count, count])
    }()
    return -(labels * logits).logSigmoid().sum() / Float(count)
}

/// Each row divided by its L2 norm (as `x / x.norm(p=2, dim=-1, keepdim=True)`), with the norm
/// clamped away from zero so an all-zero row gives zeros instead of NaN.
func l2Normalized(_ rows: Tensor) -> Tensor {
    rows / rows.squared().sum(along: -1, keepingDimensions: true).sqrt().clamped(min: 1e-12)
}

/// The texts and `±1` targets of CRAFT's label-aware contrastive term for one batch.
///
/// Every distinct text of the batch (each example's caption and its label text "a photo of a
/// {label}", whichever it has) is embedded once; image `i` is a positive for each text that describes
/// it: its own caption, and the label text it shares with every image of the same class. So two
/// images of one class are not pushed apart as negatives, and captions and labels work together.
public struct ContrastiveTargets: Sendable, Equatable {
    /// The distinct texts, in order of first appearance.
    public var texts: [String]
    /// `[images, texts]` row-major, `+1` where the text describes the image, `−1` otherwise.
    public var signs: [Float]
    /// The number of images.
    public var images: Int

    /// The targets of a batch, or `nil` when an example has no caption and no label (then the batch
    /// has no contrastive term) or the batch is empty.
    public init?(_ batch: [TrainingExample]) {
        let perImage = batch.map(\.contrastiveTexts)
        guard !batch.isEmpty, perImage.allSatisfy({ !$0.isEmpty }) else { return nil }
        var texts: [String] = []
        var index: [String: Int] = [:]
        for text in perImage.joined() where index[text] == nil {
            index[text] = texts.count
            texts.append(text)
        }
        var signs = [Float](repeating: -1, count: batch.count * texts.count)
        for (row, own) in perImage.enumerated() {
            for text in own { signs[row * texts.count + index[text]!] = 1 }
        }
        self.texts = texts
        self.signs = signs
        self.images = batch.count
    }

    /// The targets as a tensor `[images, texts]`.
    public var tensor: Tensor { Tensor(signs, shape: [images, texts.count]) }
}
