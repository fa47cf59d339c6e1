#!/usr/bin/env python3
"""Writes a Hugging Face Llama directory as a GGUF file the way llama.cpp's converter does, for
`craft-bench gguf`: `make_gguf.py MODEL_DIR OUT.gguf q8_0|q4_k|f32`. Uses the layout code of
scripts/gguf_model_fixtures.py (tensor names, Q/K permutation, {arch}.* keys; Q8_0 by gguf-py;
q4_k is its Q4_K_M-like mix of Q4_K, Q5_K and Q6_K by the script's min/max quantizers)."""
import pathlib
import sys

import torch
from gguf import GGMLQuantizationType as T
from transformers import LlamaForCausalLM

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
from gguf_model_fixtures import q4_k_mix, write_gguf  # noqa: E402


def main():
    directory, out, kind = sys.argv[1], sys.argv[2], sys.argv[3]
    model = LlamaForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    write_gguf(model, "llama", pathlib.Path(out), {"q8_0": T.Q8_0, "q4_k": q4_k_mix, "f32": T.F32}[kind])
    print(out)


if __name__ == "__main__":
    main()
