import Foundation
import Testing

/// The JSON written by scripts/training_fixtures.py.
struct TrainingFixtures: Decodable {
    struct Siglip: Decodable {
        let n: Int, d: Int
        let image: [Float], text: [Float]
        let logit_scale: Float, logit_bias: Float, loss: Float
        let grad_image: [Float], grad_text: [Float]
        let grad_logit_scale: Float, grad_logit_bias: Float
    }
    struct AnswerCE: Decodable {
        let t: Int, v: Int
        let logits: [Float], tokens: [Int32]
        let answer_start: Int
        let loss: Float
        let grad_logits: [Float]
    }
    struct Composite: Decodable {
        let b: Int, p: Int, din: Int, d: Int, k: Int, h: Int, v: Int, lp: Int, la: Int
        let enc_w: [Float], enc_b: [Float], pixels: [Float], codebook: [Float]
        let proj_w: [Float], proj_b: [Float], embed: [Float], head_w1: [Float], head_w2: [Float], text_emb: [Float]
        let prompts: [Int32], answers: [Int32]
        let lambda_con: Float, lambda_commit: Float, logit_scale: Float, logit_bias: Float
        let codes: [Int32]
        let sal: Float, commit: Float, con: Float, total: Float
        let grad_enc_w: [Float], grad_enc_b: [Float]
    }
    struct AdamW: Decodable {
        let lr: Float, beta1: Double, beta2: Double, eps: Double, weight_decay: Double, steps: Int
        let initial: [[Float]], shapes: [[Int]], grads: [[[Float]]], final: [[Float]]
        let exp_avg: [[Float]], exp_avg_sq: [[Float]]
    }
    struct AdamWGroups: Decodable {
        let lr: Float, beta1: Double, beta2: Double, eps: Double, weight_decay: Double, steps: Int
        let initial: [[Float]], shapes: [[Int]], grads: [[[Float]]], final: [[Float]]
    }
    struct SiglipTargets: Decodable {
        let n: Int, m: Int, d: Int
        let image: [Float], text: [Float], targets: [Float]
        let logit_scale: Float, logit_bias: Float, loss: Float
        let grad_image: [Float], grad_logit_scale: Float, grad_logit_bias: Float
    }
    struct QuantizedContrastive: Decodable {
        let pixels: [Float], codebook: [Float], text: [Float], targets: [Float]
        let logit_scale: Float, logit_bias: Float, codes: [Int32]
        let pooled: [Float], loss: Float
        let grad_layer0_fc1_weight: [Float], grad_patch_weight: [Float], grad_layer1_fc1_weight: [Float]
    }
    struct Cosine: Decodable {
        let warmup: Int, total: Int
        let multipliers: [Double]
    }
    struct Clip: Decodable {
        let max_norm: Float
        let grads: [[Float]]
        let norm: Float
        let clipped: [[Float]]
    }
    let siglip: Siglip
    let answer_ce: AnswerCE
    let composite: Composite
    let adamw: AdamW
    let cosine: Cosine
    let clip: Clip
    let adamw_groups: AdamWGroups
    let siglip_targets: SiglipTargets
    let lcon_quantized: QuantizedContrastive

    static func load() throws -> TrainingFixtures {
        let url = try #require(Bundle.module.url(forResource: "training_fixtures", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(TrainingFixtures.self, from: Data(contentsOf: url))
    }

    /// The directory of the 2-layer SigLIP vision tower with head (config.json, model.safetensors).
    static func lconTower() throws -> URL {
        let url = try #require(Bundle.module.url(forResource: "training_fixtures", withExtension: "json", subdirectory: "Fixtures"))
        return url.deletingLastPathComponent().appendingPathComponent("lcon_tower")
    }
}
