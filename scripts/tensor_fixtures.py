#!/usr/bin/env python3
"""Reference values for TensorCore's forward passes and gradients, from torch.autograd.

Writes Tests/TensorCoreTests/Fixtures/torch_reference.json. Each case holds named input tensors, the
forward outputs, a cotangent ("seed") per output, and the gradients of sum(output * seed) with respect
to every input, computed by torch.autograd in float32 with one thread.

Run by hand (make test never runs Python):
    .venv-ref/bin/python scripts/tensor_fixtures.py
"""
import json
import math
import pathlib
import sys

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)
OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/TensorCoreTests/Fixtures/torch_reference.json"


def tensor_json(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def rand(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_(True)


cases = {}


def record(name, inputs, outputs, extra=None, indices=None, constants=None):
    """inputs: dict of leaf tensors requiring grad; outputs: dict of tensors."""
    seeds = {k: torch.randn(v.shape) for k, v in outputs.items()}
    total = sum((outputs[k] * seeds[k]).sum() for k in outputs)
    grads = torch.autograd.grad(total, list(inputs.values()), allow_unused=True)
    case = {
        "inputs": {k: tensor_json(v) for k, v in inputs.items()},
        "outputs": {k: tensor_json(v) for k, v in outputs.items()},
        "seeds": {k: tensor_json(v) for k, v in seeds.items()},
        "gradients": {k: tensor_json(g if g is not None else torch.zeros_like(v))
                      for (k, v), g in zip(inputs.items(), grads)},
    }
    if extra:
        case["parameters"] = extra
    if constants:
        case["constants"] = {k: tensor_json(v) for k, v in constants.items()}
    if indices:
        case["indices"] = {k: {"shape": list(v.shape), "data": [int(x) for x in v.reshape(-1).tolist()]}
                           for k, v in indices.items()}
    cases[name] = case


# Matrix products: plain, batched with a transposed right side, a transposed left side, shared weights.
a, b = rand(3, 4), rand(4, 5)
record("matmul", {"a": a, "b": b}, {"out": a @ b})
a, b = rand(2, 3, 4), rand(2, 5, 4)
record("batched_matmul_transposed", {"a": a, "b": b}, {"out": a @ b.transpose(-1, -2)})
a, b = rand(2, 4, 3), rand(4, 5)
record("transposed_left_shared_right", {"a": a, "b": b}, {"out": a.transpose(-1, -2) @ b})
x, w, bias = rand(2, 3, 6), rand(5, 6), rand(5)
record("linear", {"x": x, "weight": w, "bias": bias}, {"out": F.linear(x, w, bias)})

# Broadcasting arithmetic.
a, b, c = rand(2, 3, 4), rand(3, 1), rand(4)
record("broadcasting", {"a": a, "b": b, "c": c},
       {"out": (a * b + c) - (a - b) / (c * c + 1), "out2": b / (a * a + 2) - c})

# Elementwise functions.
x = rand(4, 6, scale=3.0)
p = (torch.rand(4, 6) * 2 + 0.5).requires_grad_(True)
record("elementwise", {"x": x, "p": p}, {
    "exp": torch.exp(x * 0.5), "log": torch.log(p), "sqrt": torch.sqrt(p), "rsqrt": torch.rsqrt(p),
    "tanh": torch.tanh(x), "sigmoid": torch.sigmoid(x), "logsigmoid": F.logsigmoid(x * 10),
    "pow": torch.pow(p, 2.5), "clamp": torch.clamp(x, -1.5, 2.0), "neg_scale": -x * 0.25 + 1.0,
})

# Activations.
x = rand(3, 7, scale=2.5)
record("activations", {"x": x}, {
    "gelu": F.gelu(x), "gelu_tanh": F.gelu(x, approximate="tanh"), "silu": F.silu(x),
})

# Softmax and log-softmax.
x = rand(2, 3, 5, scale=2.0)
record("softmax", {"x": x}, {
    "softmax_last": F.softmax(x, dim=-1), "softmax_dim1": F.softmax(x, dim=1),
    "log_softmax_last": F.log_softmax(x, dim=-1), "log_softmax_dim0": F.log_softmax(x, dim=0),
})

# Layer norm and RMS norm (transformers' LlamaRMSNorm).
x, w, bias = rand(2, 3, 8), (1 + 0.1 * torch.randn(8)).requires_grad_(True), rand(8, scale=0.1)
record("layer_norm", {"x": x, "weight": w, "bias": bias}, {"out": F.layer_norm(x, [8], w, bias, eps=1e-5)},
       extra={"eps": 1e-5})
x, w = rand(2, 3, 8), (1 + 0.1 * torch.randn(8)).requires_grad_(True)


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


record("rms_norm", {"x": x, "weight": w}, {"out": rms_norm(x, w, 1e-6)}, extra={"eps": 1e-6})


# Rotary position embedding, transformers' Llama convention.
def rope_tables(dim, theta, positions):
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, cos, sin):
    return x * cos + rotate_half(x) * sin


cos, sin = rope_tables(8, 10000.0, torch.arange(5))
x = rand(1, 2, 5, 8)
record("rope", {"x": x}, {"out": apply_rope(x, cos, sin), "cos": cos, "sin": sin},
       extra={"theta": 10000.0, "head_dim": 8, "positions": list(range(5))})

# Attention: grouped-query (4 query heads, 2 key/value heads), causal plus right padding (batch 1 has 3
# real keys of 5). torch's scaled_dot_product_attention with a boolean mask (True = attend).
q, k, v = rand(2, 4, 5, 8), rand(2, 2, 5, 8), rand(2, 2, 5, 8)
valid = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
causal = torch.ones(5, 5, dtype=torch.bool).tril()
mask = causal[None, None] & valid[:, None, None, :]
out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
record("attention_gqa_causal_padding", {"query": q, "key": k, "value": v}, {"out": out},
       extra={"valid_lengths": [5, 3]})

# Cross-entropy with ignore_index=-100 and mean-squared error.
logits = rand(6, 10, scale=2.0)
targets = torch.tensor([3, -100, 9, 0, -100, 4])
record("cross_entropy", {"logits": logits}, {"loss": F.cross_entropy(logits, targets, ignore_index=-100)},
       indices={"targets": targets})
pred, target = rand(3, 4), torch.randn(3, 4)
record("mse", {"prediction": pred}, {"loss": F.mse_loss(pred, target)}, constants={"target": target})

# Embedding gather.
table = rand(10, 4)
ids = torch.tensor([[1, 3, 3], [0, 9, 2]])
record("embedding", {"table": table}, {"out": F.embedding(ids, table)}, indices={"ids": ids})


# A pre-norm Llama-style block: RMSNorm, q/k/v projections, RoPE, causal GQA attention, output
# projection, residual, RMSNorm, SwiGLU MLP, residual.
def init(*shape):
    return (torch.randn(*shape) / math.sqrt(shape[-1])).requires_grad_(True)


hidden, heads, kv_heads, head_dim, mlp, seq = 16, 4, 2, 4, 24, 5
params = {
    "x": rand(2, seq, hidden),
    "attn_norm": (1 + 0.1 * torch.randn(hidden)).requires_grad_(True),
    "q_proj": init(heads * head_dim, hidden), "k_proj": init(kv_heads * head_dim, hidden),
    "v_proj": init(kv_heads * head_dim, hidden), "o_proj": init(hidden, heads * head_dim),
    "mlp_norm": (1 + 0.1 * torch.randn(hidden)).requires_grad_(True),
    "gate_proj": init(mlp, hidden), "up_proj": init(mlp, hidden), "down_proj": init(hidden, mlp),
}


def llama_block(p):
    x = p["x"]
    bsz = x.shape[0]
    h = rms_norm(x, p["attn_norm"], 1e-6)
    q = F.linear(h, p["q_proj"]).view(bsz, seq, heads, head_dim).transpose(1, 2)
    k = F.linear(h, p["k_proj"]).view(bsz, seq, kv_heads, head_dim).transpose(1, 2)
    v = F.linear(h, p["v_proj"]).view(bsz, seq, kv_heads, head_dim).transpose(1, 2)
    cos, sin = rope_tables(head_dim, 10000.0, torch.arange(seq))
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    attn = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    x = x + F.linear(attn.transpose(1, 2).reshape(bsz, seq, heads * head_dim), p["o_proj"])
    h = rms_norm(x, p["mlp_norm"], 1e-6)
    return x + F.linear(F.silu(F.linear(h, p["gate_proj"])) * F.linear(h, p["up_proj"]), p["down_proj"])


record("llama_block", params, {"out": llama_block(params)},
       extra={"hidden": hidden, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim, "mlp": mlp,
              "eps": 1e-6, "theta": 10000.0})

# A pre-norm ViT/GPT-2-style block: LayerNorm, biased q/k/v, attention without a mask, GELU (tanh) MLP.
vit_heads, vit_mlp = 4, 32
vparams = {
    "x": rand(2, seq, hidden),
    "ln1_weight": (1 + 0.1 * torch.randn(hidden)).requires_grad_(True), "ln1_bias": rand(hidden, scale=0.1),
    "q_weight": init(hidden, hidden), "q_bias": rand(hidden, scale=0.1),
    "k_weight": init(hidden, hidden), "k_bias": rand(hidden, scale=0.1),
    "v_weight": init(hidden, hidden), "v_bias": rand(hidden, scale=0.1),
    "o_weight": init(hidden, hidden), "o_bias": rand(hidden, scale=0.1),
    "ln2_weight": (1 + 0.1 * torch.randn(hidden)).requires_grad_(True), "ln2_bias": rand(hidden, scale=0.1),
    "fc1_weight": init(vit_mlp, hidden), "fc1_bias": rand(vit_mlp, scale=0.1),
    "fc2_weight": init(hidden, vit_mlp), "fc2_bias": rand(hidden, scale=0.1),
}


def vit_block(p):
    x = p["x"]
    bsz = x.shape[0]
    d = hidden // vit_heads
    h = F.layer_norm(x, [hidden], p["ln1_weight"], p["ln1_bias"], eps=1e-6)

    def heads_of(t):
        return t.view(bsz, seq, vit_heads, d).transpose(1, 2)

    q = heads_of(F.linear(h, p["q_weight"], p["q_bias"]))
    k = heads_of(F.linear(h, p["k_weight"], p["k_bias"]))
    v = heads_of(F.linear(h, p["v_weight"], p["v_bias"]))
    attn = F.scaled_dot_product_attention(q, k, v)
    x = x + F.linear(attn.transpose(1, 2).reshape(bsz, seq, hidden), p["o_weight"], p["o_bias"])
    h = F.layer_norm(x, [hidden], p["ln2_weight"], p["ln2_bias"], eps=1e-6)
    return x + F.linear(F.gelu(F.linear(h, p["fc1_weight"], p["fc1_bias"]), approximate="tanh"),
                        p["fc2_weight"], p["fc2_bias"])


record("vit_block", vparams, {"out": vit_block(vparams)},
       extra={"hidden": hidden, "heads": vit_heads, "mlp": vit_mlp, "eps": 1e-6})

document = {
    "generator": "scripts/tensor_fixtures.py",
    "versions": {"torch": torch.__version__, "python": sys.version.split()[0]},
    "convention": "gradients[k] = d/d inputs[k] of sum over outputs o of sum(o * seeds[o])",
    "cases": cases,
}
OUT.write_text(json.dumps(document, separators=(",", ":")) + "\n")
print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(cases)} cases)")
