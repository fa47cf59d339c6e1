#!/usr/bin/env python3
"""PyTorch CPU peer for `craft-bench layers` (Benchmarks/CraftBench/LayerBenchmark.swift).

Serves timing requests on stdin so one process stays warm while the Swift benchmark alternates
between its own runs and these. Each request line is

    CASE MODE THREADS ITERATIONS

with CASE in {linear, block, attention, causal}, MODE in {forward, backward} ("backward" = forward
plus backward with respect to the input and every parameter; the attention cases are timed forward). The reply is one line of per-iteration "wall:cpu" times in
milliseconds (wall clock and process CPU time), after one warm-up iteration. Shapes match the Swift side:
  linear: x [512, 768], weight [3072, 768], bias [3072]
  block:  pre-norm ViT block, x [1, 256, 768], 12 heads, MLP 3072, LayerNorm eps 1e-6, GELU (tanh)
  attention: F.scaled_dot_product_attention, q/k/v [8, 196, 6·64] split into 6 heads (SigLIP's shape)
  causal:    the same, causal, q/k/v [1, 512, 12·64] split into 12 heads (a Llama prefill's)
"""
import math
import sys
import time

import torch
import torch.nn.functional as F

torch.manual_seed(0)
HIDDEN, MLP, HEADS, SEQ, ROWS = 768, 3072, 12, 256, 512


def init(*shape):
    return torch.randn(*shape) / math.sqrt(shape[-1])


def linear_setup():
    return {"x": torch.randn(ROWS, HIDDEN), "weight": init(MLP, HIDDEN), "bias": torch.randn(MLP) * 0.1}


def linear_forward(p):
    return F.linear(p["x"], p["weight"], p["bias"])


def block_setup():
    p = {"x": torch.randn(1, SEQ, HIDDEN)}
    for name, out_features, in_features in [("q", HIDDEN, HIDDEN), ("k", HIDDEN, HIDDEN), ("v", HIDDEN, HIDDEN),
                                            ("o", HIDDEN, HIDDEN), ("fc1", MLP, HIDDEN), ("fc2", HIDDEN, MLP)]:
        p[name + "_weight"] = init(out_features, in_features)
        p[name + "_bias"] = torch.randn(out_features) * 0.1
    for name in ["ln1", "ln2"]:
        p[name + "_weight"] = 1 + 0.1 * torch.randn(HIDDEN)
        p[name + "_bias"] = 0.1 * torch.randn(HIDDEN)
    return p


def block_forward(p):
    x = p["x"]
    b, d = x.shape[0], HIDDEN // HEADS
    h = F.layer_norm(x, [HIDDEN], p["ln1_weight"], p["ln1_bias"], eps=1e-6)

    def heads(t):
        return t.view(b, SEQ, HEADS, d).transpose(1, 2)

    q = heads(F.linear(h, p["q_weight"], p["q_bias"]))
    k = heads(F.linear(h, p["k_weight"], p["k_bias"]))
    v = heads(F.linear(h, p["v_weight"], p["v_bias"]))
    a = F.scaled_dot_product_attention(q, k, v)
    x = x + F.linear(a.transpose(1, 2).reshape(b, SEQ, HIDDEN), p["o_weight"], p["o_bias"])
    h = F.layer_norm(x, [HIDDEN], p["ln2_weight"], p["ln2_bias"], eps=1e-6)
    return x + F.linear(F.gelu(F.linear(h, p["fc1_weight"], p["fc1_bias"]), approximate="tanh"),
                        p["fc2_weight"], p["fc2_bias"])


def attention_setup(batch, length, heads):
    def setup():
        return {name: torch.randn(batch, length, heads * 64) for name in ("q", "k", "v")}
    return setup


def attention_forward(heads, causal):
    def forward(p):
        b, t = p["q"].shape[0], p["q"].shape[1]

        def split(x):
            return x.view(b, t, heads, 64).transpose(1, 2)

        return F.scaled_dot_product_attention(split(p["q"]), split(p["k"]), split(p["v"]), is_causal=causal)
    return forward


CASES = {"linear": (linear_setup, linear_forward), "block": (block_setup, block_forward),
         "attention": (attention_setup(8, 196, 6), attention_forward(6, False)),
         "causal": (attention_setup(1, 512, 12), attention_forward(12, True))}
params = {}


def run_once(case, mode):
    setup, forward = CASES[case]
    if case not in params:
        params[case] = setup()
    p = params[case]
    if mode == "forward":
        with torch.no_grad():
            forward(p)
        return
    leaves = {k: v.detach().requires_grad_(True) for k, v in p.items()}
    out = forward(leaves)
    seed = torch.ones_like(out)
    torch.autograd.grad(out, list(leaves.values()), seed)


def main():
    print(f"ready torch {torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability()})", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        case, mode, threads, iterations = parts[0], parts[1], int(parts[2]), int(parts[3])
        torch.set_num_threads(threads)
        run_once(case, mode)  # warm-up
        times = []
        for _ in range(iterations):
            start, cpu_start = time.perf_counter(), time.process_time()
            run_once(case, mode)
            times.append(((time.perf_counter() - start) * 1000, (time.process_time() - cpu_start) * 1000))
        print(" ".join(f"{wall:.3f}:{cpu:.3f}" for wall, cpu in times), flush=True)


if __name__ == "__main__":
    main()
