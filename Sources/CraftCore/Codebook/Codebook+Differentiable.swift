// The differentiable pieces of CRAFT's objective around the frozen codebook (docs/training.md),
// matching vector-quantize-pytorch's `VectorQuantize` (rotation_trick off): the straight-through
// estimator `x + (q − x).detach()` and the commitment loss `F.mse_loss(q.detach(), x)`.
import TensorCore

/// The output of ``Codebook/straightThrough(_:threads:)``.
public struct StraightThroughQuantization: Sendable {
    /// `z_q_hat = z_e + stopgrad(z_q − z_e)`: equals the code vectors forward (up to one rounding),
    /// and passes its gradient to the encoder output `z_e` unchanged. Same shape as the features.
    public var quantized: Tensor
    /// The chosen codes, shaped `[..., depth]` (the features' leading dimensions, then the levels).
    public var codes: IndexTensor
    /// The encoder output the codebook compared against: the features for `l2`, the L2-normalised
    /// features (a differentiable function of them) for `cosine`.
    public var encoderOutput: Tensor
    /// The code vectors `z_q` (no gradient), same shape as the features.
    public var codeVectors: Tensor
    /// The full search result (distances, residual norms), rows flattened to `[N]`.
    public var search: Quantization
}

extension Codebook {
    /// Quantizes encoder features with the straight-through estimator.
    ///
    /// The forward value is the code vectors `z_q`; the backward pass sends the gradient of
    /// ``StraightThroughQuantization/quantized`` to the features unchanged (through the
    /// normalisation for `cosine`). The codebook itself is frozen: nothing flows into it.
    ///
    /// ```swift
    /// let features = encoder(pixels)                 // [batch, tokens, D], requires gradients
    /// let vq = try codebook.straightThrough(features)
    /// let loss = surrogate(vq.quantized) + 0.1 * codebook.commitmentLoss(vq)
    /// ```
    ///
    /// - Parameters:
    ///   - features: the encoder output `z_e`, shaped `[..., D]`.
    ///   - threads: worker threads for the nearest-code search.
    /// - Throws: ``CraftCoreError`` (`invalidFeatures`) when the last dimension is not `D` or a value
    ///   is not finite.
    public func straightThrough(_ features: Tensor, threads: Int = 1) throws -> StraightThroughQuantization {
        guard let last = features.shape.last, last == dimension else {
            throw CraftCoreError(
                .invalidFeatures,
                "features shaped \(features.shape) cannot be quantized by a codebook of dimension \(dimension); the last dimension must be \(dimension)")
        }
        let encoderOutput: Tensor
        if metric == .cosine {
            let norms = features.squared().sum(along: -1, keepingDimensions: true).sqrt().clamped(min: 1e-12)
            encoderOutput = features / norms
        } else {
            encoderOutput = features
        }
        let rows = features.scalarCount / dimension
        // The search normalises cosine features itself, from the raw values.
        let search = try quantize(features.scalars, count: rows, threads: threads)
        let codeVectors = Tensor(search.quantized, shape: features.shape)
        let quantized = encoderOutput + (codeVectors - encoderOutput).stopGradient()
        let codes = IndexTensor(search.codes, shape: Array(features.shape.dropLast()) + [depth])
        return StraightThroughQuantization(
            quantized: quantized, codes: codes, encoderOutput: encoderOutput, codeVectors: codeVectors, search: search)
    }

    /// The commitment loss. Its gradient reaches the encoder only.
    ///
    /// - Depth 1: `mean ‖z_e − stopgrad(z_q)‖²`, the mean over all elements of the squared difference
    ///   between the encoder output and its code vectors, as vector-quantize-pytorch's
    ///   `F.mse_loss(quantize.detach(), x)`.
    /// - Depth D > 1 (residual VQ), VILA-U's convention (rq-vae-transformer's
    ///   `compute_commitment_loss`): the mean over levels `d = 1…D` of
    ///   `mean ‖z_e − stopgrad(Σ_{l≤d} q_l)‖²`, the encoder output against each cumulative partial sum
    ///   of the chosen code vectors, so every level's approximation pulls the encoder (the last term is
    ///   the depth-1 loss on the full sum). It equals summing each level's residual loss
    ///   `‖r_l − stopgrad(q_l)‖²` (with `r_l = z_e − Σ_{l'<l} stopgrad(q_l')`) and dividing by D.
    public func commitmentLoss(_ quantization: StraightThroughQuantization) -> Tensor {
        let output = quantization.encoderOutput
        guard depth > 1 else { return Tensor.meanSquaredError(output, quantization.codeVectors.stopGradient()) }
        let codes = quantization.codes.scalars
        let rows = codes.count / depth
        var partial = [Float](repeating: 0, count: rows * dimension)
        var total: Tensor?
        for level in 0..<depth {
            for row in 0..<rows {
                let code = Int(codes[row * depth + level])
                let source = (level * entries + code) * dimension
                for component in 0..<dimension { partial[row * dimension + component] += searchValues[source + component] }
            }
            let term = Tensor.meanSquaredError(output, Tensor(partial, shape: output.shape))
            total = total.map { $0 + term } ?? term
        }
        return total!.scaled(by: 1 / Float(depth))
    }
}
