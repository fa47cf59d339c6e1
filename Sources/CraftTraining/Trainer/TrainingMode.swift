// The two ways the trainer can fine-tune an encoder: CRAFT (quantizer-anchored, the paper's method)
// and the paper's continuous fine-tuning baseline (quantizer bypassed, no commitment term).

/// Whether the surrogate reads the encoder's quantized tokens (CRAFT) or its continuous output.
///
/// - ``craft``: the surrogate is fed the straight-through `z_q_hat = z_e + stopgrad(z_q − z_e)` and
///   validation feeds the code vectors `z_q`; `L_commit` is used when the objective turns it on.
/// - ``continuous``: the baseline without the quantizer's anchoring. The surrogate is fed the
///   encoder's continuous output `z_e` during training and validation; gradients reach the encoder
///   directly (no straight-through estimator); `L_commit` is off whatever the objective says
///   (`L_SAL` and `L_con` are unchanged). Codes are still computed, for statistics and the log's
///   `commitment_distance`. An encoder trained this way is published with
///   `config.bypass_quantizer: true` so that inference also feeds `z_e`.
///
/// Encoded as the strings `"craft"` and `"continuous"`.
public enum TrainingMode: String, Sendable, Codable, Equatable, CaseIterable {
    /// CRAFT: quantized tokens through the straight-through estimator (the default).
    case craft
    /// The continuous fine-tuning baseline: the quantizer is bypassed and `L_commit` is off.
    case continuous
}
