"""Checks that transformers loads the model directories Craft writes (ModelWriting) and computes the
same outputs, and writes transformers' outputs as the test fixture.

By hand:
    CRAFT_EXPORT_WRITTEN_MODELS=/tmp/written swift test --filter ModelWritingTests
    .venv-ref/bin/python scripts/check_written_models.py /tmp/written \
        --fixture Tests/CraftModelsTests/Fixtures/written_models.reference.safetensors

The Swift test writes seven tiny models (Llama untied with biases, Llama tied, GPT-2 tied and untied,
SigLIP vision with and without head, SigLIP text) and Swift's outputs (swift_outputs.safetensors); this
script loads each directory with `from_pretrained` (which must report no missing or unexpected keys),
runs the same fixed inputs, prints the largest differences and fails above 1e-4 relative.
"""
import argparse
import math
import sys

import numpy as np
import safetensors
import torch
import transformers
from safetensors.numpy import load_file, save_file

torch.set_num_threads(1)

TOKENS = [1, 5, 9, 2, 7, 3, 39, 0]
TEXT_TOKENS = [[3, 4, 5, 6, 0, 0, 0, 0], [7, 8, 9, 10, 11, 12, 13, 0]]
PIXELS = np.array([math.sin(0.37 * i) for i in range(384)], dtype=np.float32).reshape(2, 3, 8, 8)


def load(cls, path):
    model, info = cls.from_pretrained(path, attn_implementation="eager", output_loading_info=True)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        sys.exit(f"{path}: transformers reports {bad}")
    return model.eval()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--fixture")
    args = parser.parse_args()
    root = args.directory
    out = {}
    with torch.no_grad():
        for name in ["llama", "llama_tied"]:
            model = load(transformers.LlamaForCausalLM, f"{root}/{name}")
            out[f"{name}_logits"] = model(torch.tensor([TOKENS])).logits[0]
        for name in ["gpt2", "gpt2_untied"]:
            model = load(transformers.GPT2LMHeadModel, f"{root}/{name}")
            out[f"{name}_logits"] = model(torch.tensor([TOKENS])).logits[0]
        for name in ["vision", "vision_no_head"]:
            model = load(transformers.SiglipVisionModel, f"{root}/{name}")
            result = model(pixel_values=torch.from_numpy(PIXELS))
            out[f"{name}_last_hidden_state"] = result.last_hidden_state
            if name == "vision":
                out[f"{name}_pooler_output"] = result.pooler_output
        model = load(transformers.SiglipTextModel, f"{root}/text")
        result = model(input_ids=torch.tensor(TEXT_TOKENS))
        out["text_last_hidden_state"] = result.last_hidden_state
        out["text_pooler_output"] = result.pooler_output
    out = {k: v.detach().numpy().astype(np.float32) for k, v in out.items()}
    swift = load_file(f"{root}/swift_outputs.safetensors")
    worst = 0.0
    for name, expected in sorted(out.items()):
        actual = swift[name]
        assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
        diff = np.abs(actual - expected).max()
        relative = diff / max(np.abs(expected).max(), 1e-6)
        worst = max(worst, relative)
        print(f"{name:32s} shape {str(expected.shape):14s} max |swift - transformers| {diff:.3e} (relative {relative:.3e})")
    if args.fixture:
        versions = f"scripts/check_written_models.py; torch {torch.__version__}, transformers {transformers.__version__}, safetensors {safetensors.__version__}"
        save_file(out, args.fixture, metadata={"made_by": versions})
        print("wrote", args.fixture)
    if worst > 1e-4:
        sys.exit(f"outputs differ: worst relative difference {worst:.3e}")
    print("OK: transformers loads every written directory and agrees with Swift")


if __name__ == "__main__":
    main()
