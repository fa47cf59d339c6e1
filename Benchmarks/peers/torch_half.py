#!/usr/bin/env python3
"""PyTorch CPU peer for `craft-bench half` (Benchmarks/CraftBench/HalfPrecisionBenchmark.swift).

    python torch_half.py make DIR
        Writes DIR: a Qwen2-0.5B-shaped Qwen2ForCausalLM (24 layers, hidden 896, 14 heads, 2 KV heads,
        MLP 4864, vocab 151936, tied embeddings, rope theta 1e6) with seeded random weights (norm
        weights 1 + 0.1 N(0,1), biases 0.1 N(0,1), matrices N(0,1)/sqrt(fan_in)), saved in bfloat16.
        Skipped when DIR/model.safetensors exists.

    python torch_half.py run DIR DTYPE THREADS PROMPT TOKENS
        In a fresh process: loads DIR with from_pretrained in DTYPE (bfloat16 or float32), prefills
        PROMPT tokens and decodes TOKENS greedily through the KV cache, then prints one line
            load_ms=… baseline_mib=… resident_mib=… peak_mib=… prefill_ms=… decode_ms_per_token=… tokens=t1,t2,…
        (resident before loading, after transformers is imported; right after loading; peak over
        the whole run, VmHWM). The prompt is token
        i -> (i * 7919 + 13) % vocab, as on the Swift side.
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import memory, reinitialise  # noqa: E402  (the same seeded initialisation as the other model benchmarks)

QWEN2_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rms_norm_eps=1e-6,
                 tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                 use_sliding_window=False, hidden_act="silu", bos_token_id=151643, eos_token_id=151643)


def memory_mib():
    """Resident and peak memory of this process in MiB."""
    peak, resident = memory()
    return resident / 1024, peak / 1024


def make(directory):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if os.path.exists(os.path.join(directory, "model.safetensors")):
        return
    torch.manual_seed(20261206)
    generator = torch.Generator().manual_seed(20261206)
    # Built directly in bfloat16 so that making it needs about 1 GiB, not 2.
    torch.set_default_dtype(torch.bfloat16)
    model = Qwen2ForCausalLM(Qwen2Config(**QWEN2_05B)).eval()
    torch.set_default_dtype(torch.float32)
    reinitialise(model, generator, block_rows=4096)
    model.save_pretrained(directory, safe_serialization=True)
    extra = os.path.join(directory, "generation_config.json")
    if os.path.exists(extra):
        os.remove(extra)


def run(directory, dtype, threads, prompt, tokens):
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    baseline, _ = memory_mib()
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=getattr(torch, dtype)).eval()
    load_ms = (time.perf_counter() - start) * 1000
    resident, _ = memory_mib()
    vocab = model.config.vocab_size
    ids = torch.tensor([[(i * 7919 + 13) % vocab for i in range(prompt)]])
    generated = []
    with torch.no_grad():
        start = time.perf_counter()
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)  # as generate() does
        prefill_ms = (time.perf_counter() - start) * 1000
        past = out.past_key_values
        token = int(out.logits[0, -1].argmax())
        start = time.perf_counter()
        for _ in range(tokens):
            generated.append(token)
            out = model(input_ids=torch.tensor([[token]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = int(out.logits[0, -1].argmax())
        decode_ms = (time.perf_counter() - start) * 1000 / tokens
    _, peak = memory_mib()
    print(f"load_ms={load_ms:.1f} baseline_mib={baseline:.1f} resident_mib={resident:.1f} peak_mib={peak:.1f} prefill_ms={prefill_ms:.1f} "
          f"decode_ms_per_token={decode_ms:.3f} tokens={','.join(map(str, generated))} version=torch{torch.__version__}",
          flush=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 7 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit("usage: torch_half.py make DIR | run DIR bfloat16|float32 THREADS PROMPT TOKENS")


if __name__ == "__main__":
    main()
