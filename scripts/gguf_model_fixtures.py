#!/usr/bin/env python3
"""GGUF Llama and Qwen2 fixtures laid out as llama.cpp's converter lays them out, with reference logits.

For each case, a seeded random-initialised transformers model is written to a GGUF file with the
`gguf` package the way llama.cpp's convert_hf_to_gguf.py does (tensor names `token_embd`,
`blk.N.attn_q`, ...; Llama's Q and K rows permuted for ggml's RoPE layout; `{arch}.*` hyperparameter
keys; `output.weight` absent when tied), its matrices in F32, F16 or Q8_0 (quantized by gguf-py,
bit-exact with ggml). transformers then loads that same GGUF file (`gguf_file=`, which dequantizes)
and its float32 logits for a token sequence are the reference.

Writes Tests/GGUFTests/Fixtures/models/<case>.gguf and <case>.logits.json.
Run by hand (make test never runs Python):
    .venv-ref/bin/python scripts/gguf_model_fixtures.py
"""
import json
import pathlib
import tempfile

import numpy as np
import torch
import gguf
from gguf import GGMLQuantizationType as T
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/GGUFTests/Fixtures/models"
TOKENS = [1, 17, 42, 5, 99, 3, 64, 120, 7, 2, 33]
TOKENIZERS = {
    "llama": OUT.parent / "tokenizers/spm_llama.gguf",
    "qwen2": OUT.parent / "tokenizers/bpe_qwen2.gguf",
}
VOCAB = {"llama": 600, "qwen2": 801}  # the token counts of those vocabularies


def permute(weights, n_head, n_head_kv):
    # llama.cpp convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


# gguf-py dequantizes the K-quants but does not quantize them; these simple quantizers (min/max
# scales, not llama.cpp's search) write valid blocks in ggml's layout, and gguf-py's dequantization
# of them is what transformers loads and what Craft must match.

def f16(values):
    return np.asarray(values, dtype=np.float32).astype(np.float16)


def pack_k_scales(scales, minimums):
    """Q4_K/Q5_K's 12 bytes of 6-bit scales and minimums for 8 sub-blocks ([n, 8] each)."""
    out = np.zeros((scales.shape[0], 12), dtype=np.uint8)
    for s in range(4):
        out[:, s] = (scales[:, s] & 63) | ((scales[:, s + 4] >> 4) << 6)
        out[:, s + 4] = (minimums[:, s] & 63) | ((minimums[:, s + 4] >> 4) << 6)
        out[:, s + 8] = (scales[:, s + 4] & 0x0F) | ((minimums[:, s + 4] & 0x0F) << 4)
    return out


def quantize_k(data, bits):
    """Q4_K (bits 4) or Q5_K (bits 5) blocks for a float32 matrix whose rows are multiples of 256."""
    levels = (1 << bits) - 1
    x = data.reshape(-1, 8, 32).astype(np.float32)
    low = np.minimum(x.min(axis=-1), 0)
    scale = (x.max(axis=-1) - low) / levels
    offset = -low
    d = f16(np.maximum(scale.max(axis=-1), 1e-8) / 63)
    dmin = f16(np.maximum(offset.max(axis=-1), 1e-8) / 63)
    sc = np.clip(np.rint(scale / d.astype(np.float32)[:, None]), 0, 63).astype(np.uint8)
    mn = np.clip(np.rint(offset / dmin.astype(np.float32)[:, None]), 0, 63).astype(np.uint8)
    factor = d.astype(np.float32)[:, None] * sc
    shift = dmin.astype(np.float32)[:, None] * mn
    q = np.where(factor[..., None] > 0, np.rint((x + shift[..., None]) / np.where(factor > 0, factor, 1)[..., None]), 0)
    q = np.clip(q, 0, levels).astype(np.uint8)  # [n, 8, 32]
    nibbles = q & 0x0F
    qs = (nibbles[:, 0::2, :] | (nibbles[:, 1::2, :] << 4)).reshape(-1, 128)
    parts = [d.view(np.uint8).reshape(-1, 2), dmin.view(np.uint8).reshape(-1, 2), pack_k_scales(sc, mn)]
    if bits == 5:
        qh = np.zeros((q.shape[0], 32), dtype=np.uint8)
        for s in range(8):
            qh |= ((q[:, s, :] >> 4) & 1) << s
        parts.append(qh)
    return np.concatenate(parts + [qs], axis=1)


def quantize_q6_k(data):
    x = data.reshape(-1, 16, 16).astype(np.float32)
    scale = np.abs(x).max(axis=-1) / 32
    d = f16(np.maximum(scale.max(axis=-1), 1e-8) / 127)
    sc = np.clip(np.rint(scale / d.astype(np.float32)[:, None]), -128, 127).astype(np.int8)
    factor = d.astype(np.float32)[:, None] * sc
    q = np.where(factor[..., None] != 0, np.rint(x / np.where(factor != 0, factor, 1)[..., None]), 0)
    q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(-1, 256)
    ql = np.zeros((q.shape[0], 128), dtype=np.uint8)
    qh = np.zeros((q.shape[0], 64), dtype=np.uint8)
    for position in range(256):
        half, i = divmod(position, 128)
        ql[:, half * 64 + i % 64] |= (q[:, position] & 0x0F) << ((i // 64) * 4)
        qh[:, half * 32 + i % 32] |= (q[:, position] >> 4) << ((i // 32) * 2)
    return np.concatenate([ql, qh, sc.view(np.uint8), d.view(np.uint8).reshape(-1, 2)], axis=1)


def quantized(data, qtype):
    """Blocks of `qtype` for a 2-D float32 matrix, checked against gguf-py's dequantization."""
    if qtype in (T.Q8_0, T.Q4_0):
        blocks = gguf.quants.quantize(data, qtype)
    else:
        flat = {T.Q4_K: lambda v: quantize_k(v, 4), T.Q5_K: lambda v: quantize_k(v, 5), T.Q6_K: quantize_q6_k}[qtype](data)
        blocks = flat.reshape(data.shape[0], -1)
    back = gguf.quants.dequantize(blocks, qtype).reshape(data.shape)
    assert np.abs(back - data).max() <= 0.15 * np.abs(data).max(), f"{qtype.name} quantizer is off"
    return blocks


def q4_k_mix(name):
    """A Q4_K_M-like mix (rows must be whole blocks of 256): Q4_K, with attn_v in Q5_K in the first
    layer and Q6_K in the others, ffn_down and the output in Q6_K."""
    if name == "output.weight" or "ffn_down" in name or (name.endswith("attn_v.weight") and not name.startswith("blk.0.")):
        return T.Q6_K
    return T.Q5_K if name == "blk.0.attn_v.weight" else T.Q4_K


def write_gguf(model, arch, path, matrix_type):
    config = model.config
    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(config.rope_theta if hasattr(config, "rope_theta") else config.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_file_type(0)
    # The tokenizer section of a real vocabulary (scripts/gguf_tokenizer_fixtures.py): SentencePiece
    # for Llama, byte-level BPE for Qwen2, copied key by key. A model with another vocabulary size
    # (the benchmark's) gets a synthetic SentencePiece vocabulary of its size, so llama.cpp loads it.
    fields = gguf.GGUFReader(str(TOKENIZERS[arch])).fields
    if len(fields["tokenizer.ggml.tokens"].data) != config.vocab_size:
        tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
        tokens += [f"\u2581t{i}" for i in range(config.vocab_size - len(tokens))]
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores([0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(config.vocab_size - 259)])
        writer.add_token_types([2, 3, 3] + [6] * 256 + [1] * (config.vocab_size - 259))
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_unk_token_id(0)
        fields = {}
    for field in fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        value_type = field.types[0]
        if value_type == gguf.GGUFValueType.ARRAY:
            element = field.types[1]
            values = [bytes(field.parts[i]).decode() if element == gguf.GGUFValueType.STRING else field.parts[i][0].item()
                      for i in field.data]
            writer.add_key_value(field.name, values, value_type, sub_type=element)
        else:
            raw = field.parts[field.data[0]]
            value = bytes(raw).decode() if value_type == gguf.GGUFValueType.STRING else raw[0].item()
            writer.add_key_value(field.name, value, value_type)

    names = {
        "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    per_layer = {
        "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
        "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
        "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
    }
    for name, tensor in model.state_dict().items():
        if config.tie_word_embeddings and name == "lm_head.weight":
            continue
        data = tensor.detach().float().numpy()
        if name.startswith("model.layers."):
            index, rest = name[len("model.layers."):].split(".", 1)
            target = f"blk.{index}.{per_layer[rest]}"
            if arch == "llama" and rest == "self_attn.q_proj.weight":
                data = permute(data, config.num_attention_heads, config.num_attention_heads)
            if arch == "llama" and rest == "self_attn.k_proj.weight":
                data = permute(data, config.num_attention_heads, config.num_key_value_heads)
        else:
            target = names[name]
        qtype = matrix_type(target) if callable(matrix_type) else matrix_type
        if data.ndim == 2 and qtype in (T.Q8_0, T.Q4_0, T.Q4_K, T.Q5_K, T.Q6_K):
            writer.add_tensor(target, quantized(data, qtype), raw_dtype=qtype)
        elif data.ndim == 2 and qtype == T.F16:
            writer.add_tensor(target, data.astype(np.float16))
        else:
            writer.add_tensor(target, data.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cases = [
        ("llama_f32", "llama", T.F32, LlamaForCausalLM(LlamaConfig(
            vocab_size=VOCAB["llama"], hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False))),
        ("llama_q8_0", "llama", T.Q8_0, None),
        ("qwen2_f16", "qwen2", T.F16, Qwen2ForCausalLM(Qwen2Config(
            vocab_size=VOCAB["qwen2"], hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=True))),
    ]
    cases[1] = ("llama_q8_0", "llama", T.Q8_0, cases[0][3])
    cases.append(("llama_q4_k", "llama", q4_k_mix, LlamaForCausalLM(LlamaConfig(
        vocab_size=VOCAB["llama"], hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False))))
    cases.append(("qwen2_q4_0", "qwen2", T.Q4_0, Qwen2ForCausalLM(Qwen2Config(
        vocab_size=VOCAB["qwen2"], hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=True))))
    for case, arch, matrix_type, model in cases:
        model = model.eval()
        with torch.no_grad():
            for parameter in model.parameters():  # larger than the initialiser's, so logits differ clearly
                parameter.mul_(3.0)
        path = OUT / f"{case}.gguf"
        write_gguf(model, arch, path, matrix_type)
        loaded = AutoModelForCausalLM.from_pretrained(str(OUT), gguf_file=path.name, dtype=torch.float32).eval()
        with torch.no_grad():
            logits = loaded(torch.tensor([TOKENS])).logits[0].float().numpy()
        (OUT / f"{case}.logits.json").write_text(json.dumps({"tokens": TOKENS, "shape": list(logits.shape),
                                                            "logits": [float(f"{v:.7g}") for v in logits.reshape(-1)]}))
        print(f"{case}: {path.stat().st_size} bytes, logits {logits.shape}")
        # Undo the in-place scaling for the next case built on the same model.
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.div_(3.0)


if __name__ == "__main__":
    main()
