// Llama and Qwen2 decoders from llama.cpp's GGUF files: the `{arch}.*` hyperparameters, llama.cpp's
// tensor names, and the row permutation llama.cpp's converter applies to Llama's query and key weights
// undone (docs/gguf.md). Q8_0, Q4_0, Q4_K, Q5_K and Q6_K matrices stay blocks (QuantizedMatrix), F16
// and BF16 matrices half precision (HalfMatrix); vectors are widened to float32 at load.
import Foundation
import GGUF
import TensorCore

extension LlamaConfiguration {
    /// The configuration a GGUF file's metadata describes (`general.architecture` `llama` or `qwen2`).
    ///
    /// - Throws: ``ModelError`` naming the key when one is missing or out of range, or the
    ///   architecture is another.
    public init(gguf file: GGUFFile) throws(ModelError) {
        let source = file.path
        guard let architecture = file.metadata["general.architecture"]?.stringValue else {
            throw ModelError(.invalidConfiguration, "\(source) has no general.architecture; it is not a model GGUF file")
        }
        guard architecture == "llama" || architecture == "qwen2" else {
            throw ModelError(.unsupported, "\(source) holds a \(architecture) model; Craft reads llama and qwen2 GGUF files")
        }
        func integer(_ key: String, default value: Int? = nil) throws(ModelError) -> Int {
            guard let found = file.metadata["\(architecture).\(key)"]?.integerValue ?? value else {
                throw ModelError(.invalidConfiguration, "\(source) has no \(architecture).\(key)")
            }
            guard found > 0, found <= ModelConfigurationLimits.maximumDimension else {
                throw ModelError(.invalidConfiguration, "\(source): \(architecture).\(key) is \(found), outside 1...\(ModelConfigurationLimits.maximumDimension)")
            }
            return found
        }
        let embedding: GGUFTensor
        do {
            embedding = try file.tensor("token_embd.weight")
        } catch {
            throw ModelError(.missingTensor, error.message)
        }
        let heads = try integer("attention.head_count")
        self.init(
            hiddenSize: try integer("embedding_length"), intermediateSize: try integer("feed_forward_length"),
            hiddenLayers: try integer("block_count"), attentionHeads: heads, kvHeads: try integer("attention.head_count_kv", default: heads),
            vocabularySize: embedding.shape[0],
            ropeTheta: Float(file.metadata["\(architecture).rope.freq_base"]?.doubleValue ?? 10000),
            tieWordEmbeddings: (try? file.tensor("output.weight")) == nil)
        if let dimension = file.metadata["\(architecture).rope.dimension_count"]?.integerValue, dimension != headDimension {
            throw ModelError(.unsupported, "\(source): \(architecture).rope.dimension_count \(dimension) differs from the head size \(headDimension); partial rotary embeddings are not supported")
        }
        if let scaling = file.metadata["\(architecture).rope.scaling.type"]?.stringValue, scaling != "none" {
            throw ModelError(.unsupported, "\(source) uses RoPE scaling \(scaling), which Craft does not read from GGUF files yet")
        }
        rmsNormEpsilon = Float(file.metadata["\(architecture).attention.layer_norm_rms_epsilon"]?.doubleValue ?? 1e-5)
        maxPositionEmbeddings = try integer("context_length", default: 2048)
        modelType = architecture
        if architecture == "qwen2" { attentionBiases = AttentionBiases(query: true, key: true, value: true) }
        bosTokenID = file.metadata["tokenizer.ggml.bos_token_id"]?.integerValue
        eosTokenIDs = file.metadata["tokenizer.ggml.eos_token_id"]?.integerValue.map { [$0] } ?? []
        guard hiddenSize == headDimension * heads, heads % kvHeads == 0, headDimension % 2 == 0 else {
            throw ModelError(.invalidConfiguration, "\(source): \(heads) heads (\(kvHeads) for keys and values) do not divide \(architecture).embedding_length \(hiddenSize) into even head sizes")
        }
    }
}

extension LlamaModel {
    /// Loads a Llama or Qwen2 decoder from a GGUF file: llama.cpp's tensor names mapped to Hugging
    /// Face's, Llama's query and key rows put back in Hugging Face's order.
    ///
    /// - Parameters:
    ///   - precision: `.stored` (the default) keeps Q8_0, Q4_0, Q4_K, Q5_K and Q6_K matrices as
    ///     their blocks and F16/BF16 ones in half precision, read in place (decoding multiplies
    ///     them directly); `.float32` dequantizes everything to float32.
    ///   - activations: how decoding multiplies the blocks: `.int8` (the default, llama.cpp's
    ///     arithmetic, fastest) or `.float32` (the exact dequantized weights, for checks).
    ///
    /// - Throws: ``ModelError`` naming the file and the tensor or key at fault (a GGUF error, a
    ///   tensor type Craft does not dequantize, a missing or misshapen tensor).
    public init(gguf url: URL, precision: WeightPrecision = .stored, activations: QuantizedMatrix.Activations = .int8) throws(ModelError) {
        let file: GGUFFile
        do {
            file = try GGUFFile(contentsOf: url)
        } catch {
            throw ModelError(error.code == .notFound ? .notFound : .unreadableWeights, error.message)
        }
        try self.init(gguf: file, precision: precision, activations: activations)
    }

    /// Loads a Llama or Qwen2 decoder from an opened GGUF file (see ``init(gguf:precision:)-(URL,_)``).
    public init(gguf file: GGUFFile, precision: WeightPrecision = .stored, activations: QuantizedMatrix.Activations = .int8) throws(ModelError) {
        let url = URL(fileURLWithPath: file.path)
        let configuration = try LlamaConfiguration(gguf: file)
        var weights: [String: WeightMatrix] = [:]
        for tensor in file.tensors {
            guard let name = Self.huggingFaceName(tensor.name) else {
                throw ModelError(.unexpectedTensor, "\(url.path) has a tensor \"\(tensor.name)\" that a \(configuration.modelType) model does not have")
            }
            let permutedHeads: Int? = configuration.modelType != "llama" || tensor.shape.count != 2 ? nil
                : name.hasSuffix("q_proj.weight") ? configuration.attentionHeads : name.hasSuffix("k_proj.weight") ? configuration.kvHeads : nil
            if precision == .stored, tensor.shape.count == 2 {
                // Kept as stored, in place in the mapping (query and key rows reordered in a copy).
                let (rows, columns) = (tensor.shape[0], tensor.shape[1])
                if let format = Self.quantizedFormat(tensor.type) {
                    let (bytes, owner) = Self.rows(of: tensor, in: file, unpermutingHeads: permutedHeads)
                    weights[name] = .quantized(QuantizedMatrix(format: format, rows: rows, columns: columns, blocks: bytes, owner: owner, activations: activations))
                    continue
                }
                if tensor.type == .f16 || tensor.type == .bf16 {
                    let (bytes, owner) = Self.rows(of: tensor, in: file, unpermutingHeads: permutedHeads)
                    weights[name] = .half(HalfMatrix(format: tensor.type == .f16 ? .float16 : .bfloat16, rows: rows, columns: columns, bits: bytes, owner: owner))
                    continue
                }
            }
            var values: [Float]
            do {
                values = try file.dequantized(tensor.name)
            } catch {
                throw ModelError(error.code == .unsupported ? .unsupported : .unreadableWeights, error.message)
            }
            if let heads = permutedHeads { values = Self.unpermute(values, shape: tensor.shape, heads: heads) }
            weights[name] = .float32(Tensor(values, shape: tensor.shape))
        }
        try self.init(configuration: configuration, store: WeightStore(loaded: weights, origin: url.path))
    }

    /// The block format Craft computes on for a GGUF tensor type, or `nil` for types dequantized at load.
    static func quantizedFormat(_ type: GGUFTensorType) -> QuantizedMatrix.Format? {
        switch type {
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_K: .q4_K
        case .q5_K: .q5_K
        case .q6_K: .q6_K
        default: nil
        }
    }

    /// The bytes of a matrix tensor in the mapping (kept alive by the file); when `heads` is given, a
    /// copy with llama.cpp's query/key row permutation undone (whole rows move, so quantized blocks
    /// are unchanged).
    static func rows(of tensor: GGUFTensor, in file: GGUFFile, unpermutingHeads heads: Int?) -> (UnsafeRawPointer, AnyObject) {
        let rows = tensor.shape[0]
        let rowBytes = tensor.byteCount / max(rows, 1)
        guard let heads else {
            return file.withBytes(of: tensor) { bytes in (bytes.baseAddress!, file) }
        }
        let copy = ByteBuffer(count: tensor.byteCount)
        file.withBytes(of: tensor) { bytes in
            unpermuteRows(from: bytes.baseAddress!, to: copy.pointer, rows: rows, rowBytes: rowBytes, heads: heads)
        }
        return (UnsafeRawPointer(copy.pointer), copy)
    }

    /// Hugging Face's name for a llama.cpp tensor name, or `nil` for one a decoder does not have.
    static func huggingFaceName(_ name: String) -> String? {
        switch name {
        case "token_embd.weight": return "model.embed_tokens.weight"
        case "output_norm.weight": return "model.norm.weight"
        case "output.weight": return "lm_head.weight"
        default: break
        }
        let parts = name.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]) else { return nil }
        let table = [
            "attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
            "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
            "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
            "attn_q.bias": "self_attn.q_proj.bias", "attn_k.bias": "self_attn.k_proj.bias", "attn_v.bias": "self_attn.v_proj.bias",
            "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight",
        ]
        return table[parts[2]].map { "model.layers.\(layer).\($0)" }
    }

    /// Undoes llama.cpp's `permute` of a query or key weight `[heads · depth, columns]`: the file
    /// holds, per head, the rows `(0, depth/2, 1, depth/2 + 1, …)` interleaved; Hugging Face's
    /// order is the two halves one after the other.
    package static func unpermute(_ values: [Float], shape: [Int], heads: Int) -> [Float] {
        var result = [Float](repeating: 0, count: values.count)
        values.withUnsafeBytes { source in
            result.withUnsafeMutableBytes { destination in
                unpermuteRows(from: source.baseAddress!, to: destination.baseAddress!, rows: shape[0],
                              rowBytes: shape[1] * MemoryLayout<Float>.size, heads: heads)
            }
        }
        return result
    }

    /// Moves whole rows of `rowBytes` bytes from llama.cpp's order to Hugging Face's (see
    /// ``unpermute(_:shape:heads:)``): float rows and rows of quantized blocks alike.
    static func unpermuteRows(from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer, rows: Int, rowBytes: Int, heads: Int) {
        let half = rows / heads / 2
        for head in 0..<heads {
            for pair in 0..<half {
                for side in 0..<2 {
                    // In the file: head, pair, side. In Hugging Face's order: head, side, pair.
                    let from = ((head * half + pair) * 2 + side) * rowBytes
                    let to = ((head * 2 + side) * half + pair) * rowBytes
                    (destination + to).copyMemory(from: source + from, byteCount: rowBytes)
                }
            }
        }
    }
}

/// Memory for a reordered copy of quantized blocks.
final class ByteBuffer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    init(count: Int) { pointer = .allocate(byteCount: max(count, 1), alignment: 16) }
    deinit { pointer.deallocate() }
}
