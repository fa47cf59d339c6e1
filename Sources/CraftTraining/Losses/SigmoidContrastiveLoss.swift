// SigLIP's pairwise sigmoid loss, as transformers.SiglipModel.forward computes it (return_loss=True):
// logits = exp(logit_scale) * <x_i, y_j> + logit_bias on L2-normalised embeddings,
// loss = -sum_{i,j} log sigmoid(z_ij * logits_ij) / n with z = +1 on the diagonal and -1 elsewhere
// (the sum over all n² pairs divided by the batch size n, as in the SigLIP paper and big_vision).
import TensorCore

/// The SigLIP pairwise sigmoid loss between image and text embeddings of a batch.
///
/// Pair `(i, i)` is the matching image and text, every other pair a negative. Each embedding is L2
/// normalised first (as `SiglipModel` does), then `logits_ij = exp(logitScale) · <x_i, y_j> + logitBias`
/// and the loss is `−Σ_ij log σ(z_ij · logits_ij) / n` with `z_ij = +1` when `i == j`, `−1` otherwise.
/// Note the normalisation is by the batch size `n`, not by the `n²` pairs (the reference's
/// `nll = -sum(loglik, dim=-1); loss = nll.mean()`).
///
/// `logitScale` is the *log* of the temperature `t`, as the `logit_scale` parameter of SigLIP
/// checkpoints (initialised to `log 10`; `logitBias` to `−10`). Pass tensors that require gradients
/// to learn them, constants to keep them fixed.
///
/// - Parameters:
///   - imageEmbeddings: pooled image features `[n, d]`.
///   - textEmbeddings: text embeddings `[n, d]`, row `i` describing image `i`.
///   - logitScale: a one-element tensor, `log t`.
///   - logitBias: a one-element tensor, `b`.
/// - Returns: a scalar loss, differentiable with respect to all four inputs.
/// - Throws: ``TrainingError`` (`invalidLossInput`) when the shapes differ or the batch is empty.
public func sigmoidContrastiveLoss(
    imageEmbeddings: Tensor, textEmbeddings: Tensor, logitScale: Tensor, logitBias: Tensor
) throws -> Tensor {
    guard imageEmbeddings.rank == 2, imageEmbeddings.shape == textEmbeddings.shape, imageEmbeddings.shape[0] > 0 else {
        throw TrainingError(
            .invalidLossInput,
            "contrastive loss needs image and text embeddings of the same shape [n, d] with n > 0, got \(imageEmbeddings.shape) and \(textEmbeddings.shape)")
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
    var signs = [Float](repeating: -1, count: count * count)
    for index in 0..<count { signs[index * count + index] = 1 }
    let labels = Tensor(signs, shape: [count, count])
    return -(labels * logits).logSigmoid().sum() / Float(count)
}

/// Each row divided by its L2 norm (as `x / x.norm(p=2, dim=-1, keepdim=True)`), with the norm
/// clamped away from zero so an all-zero row gives zeros instead of NaN.
func l2Normalized(_ rows: Tensor) -> Tensor {
    rows / rows.squared().sum(along: -1, keepingDimensions: true).sqrt().clamped(min: 1e-12)
}
