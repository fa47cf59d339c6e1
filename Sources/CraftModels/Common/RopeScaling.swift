// RoPE variants of Llama-family checkpoints (`rope_parameters.rope_type`), computed as transformers'
// `modeling_rope_utils.py` does, in Float32 and in the same order of operations.
import Foundation
import TensorCore

/// How a checkpoint scales its rotary position embedding's inverse frequencies.
public enum RopeScaling: Sendable, Equatable {
    /// `default`: `1 / theta^(2i/d)`.
    case none
    /// `linear`: every inverse frequency divided by `factor` (position interpolation).
    case linear(factor: Float)
    /// `llama3` (Llama 3.1 and later): low frequencies (wavelength over `original / low`) divided by
    /// `factor`, high ones (under `original / high`) kept, the band between interpolated smoothly.
    case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalMaxPositions: Int)

    /// The inverse frequencies for a head dimension and base `theta`.
    public func inverseFrequencies(headDimension: Int, theta: Float) -> [Float] {
        let base = RotaryEmbedding.inverseFrequencies(headDimension: headDimension, theta: theta)
        switch self {
        case .none:
            return base
        case .linear(let factor):
            return base.map { $0 / factor }
        case .llama3(let factor, let low, let high, let original):
            let old = Float(original)
            let lowWavelength = Float(Double(original) / Double(low))
            let highWavelength = Float(Double(original) / Double(high))
            let twoPi = Float(2 * Double.pi)
            return base.map { inverse in
                let wavelength = twoPi / inverse
                let kept = wavelength > lowWavelength ? inverse / factor : inverse
                let smooth = (old / wavelength - low) / (high - low)
                let smoothed = (1 - smooth) * kept / factor + smooth * kept
                let medium = !(wavelength < highWavelength) && !(wavelength > lowWavelength)
                return medium ? smoothed : kept
            }
        }
    }

    /// The `rope_parameters` object of a `config.json` (transformers 5 layout) for `theta`.
    public func parameters(theta: Float) -> [String: Any] {
        switch self {
        case .none:
            return ["rope_type": "default", "rope_theta": Double(theta)]
        case .linear(let factor):
            return ["rope_type": "linear", "rope_theta": Double(theta), "factor": Double(factor)]
        case .llama3(let factor, let low, let high, let original):
            return ["rope_type": "llama3", "rope_theta": Double(theta), "factor": Double(factor),
                    "low_freq_factor": Double(low), "high_freq_factor": Double(high),
                    "original_max_position_embeddings": original]
        }
    }
}
