"""Reference fixtures for CraftTraining's pretraining pieces (Tests/CraftTrainingTests/Fixtures/pretraining/).

Run by hand from the repository root:
    .venv-ref/bin/python scripts/pretraining_fixtures.py [kmeans] [backend] [contrastive]

kmeans.json: sklearn.cluster.KMeans(algorithm="lloyd", tol=0, n_init=1) from given initial centres
  (one case where every cluster keeps points, one where a far centre starts empty and is relocated),
  and the best inertia of k-means++ with n_init=10 on well separated blobs.
contrastive.safetensors: a tiny transformers.SiglipModel (vision tower with head, text tower), its
  sigmoid loss (return_loss=True) on four image-text pairs and torch.autograd's gradients for every
  tensor of both towers and for logit_scale and logit_bias.
backend_*.safetensors: a tiny LlamaForCausalLM and GPT2LMHeadModel with a linear projector; the answer
  cross-entropy of [prefix, projected visual vectors, prompt ids, answer ids + eos] (labels -100 outside
  the answer, HF shift) and torch.autograd's gradients for every decoder parameter and the projector.
"""
import json
import math
import sys

import numpy as np
import sklearn
import torch
import transformers
from sklearn.cluster import KMeans

torch.set_num_threads(1)
OUT = "Tests/CraftTrainingTests/Fixtures/pretraining"


def floats(a):
    return [float(x) for x in np.asarray(a, dtype=np.float64).reshape(-1)]


def kmeans():
    rng = np.random.default_rng(0)
    blobs = rng.normal(0, 6, size=(5, 6))
    points = np.concatenate([b + rng.normal(0, 0.7, size=(40, 6)) for b in blobs]).astype(np.float32)
    points = points[rng.permutation(len(points))]
    x = points.astype(np.float64)
    cases = []
    init_a = x[:7].copy()
    init_b = np.concatenate([x[:4], np.full((1, 6), 100.0)])
    for name, init in [("seven_from_first_points", init_a), ("far_centre_relocated", init_b)]:
        km = KMeans(n_clusters=len(init), init=init, n_init=1, max_iter=100, tol=0, algorithm="lloyd").fit(x)
        cases.append({"name": name, "entries": len(init), "initial": floats(init), "centres": floats(km.cluster_centers_),
                      "labels": [int(v) for v in km.labels_], "inertia": float(km.inertia_), "iterations": int(km.n_iter_)})
    best = KMeans(n_clusters=5, init="k-means++", n_init=10, max_iter=100, tol=0, algorithm="lloyd", random_state=0).fit(x)
    doc = {"made_by": f"scripts/pretraining_fixtures.py; scikit-learn {sklearn.__version__}, numpy {np.__version__}",
           "count": len(points), "dimension": 6, "points": floats(points), "cases": cases,
           "best_inertia_five": float(best.inertia_)}
    with open(f"{OUT}/kmeans.json", "w") as f:
        json.dump(doc, f)
    print("kmeans.json", [(c["name"], c["inertia"], c["iterations"]) for c in cases], best.inertia_)


VOCAB = ["[UNK]", "<s>", "</s>", "what", "colour", "is", "it", "?", "red", "green", "blue", "gold", "the", "image",
         "shows", "a", "big", "small", "cat", "dog"]
EXAMPLES = [("what colour is it ?", "red", 3), ("the image shows", "a big cat", 2)]
DIM = 4


def make_tokenizer():
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(["[UNK]", "<s>", "</s>"])
    tokenizer.save(f"{OUT}/backend.tokenizer.json")
    return tokenizer


def scramble(model, generator):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and ("norm" in name or "ln_" in name) and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=generator))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
            else:
                fan_in = p.shape[0] if ".c_" in name else p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=generator) / fan_in ** 0.5)


def backend():
    from safetensors.torch import save_file
    tokenizer = make_tokenizer()
    generator = torch.Generator().manual_seed(0)
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        hidden_size=8, intermediate_size=12, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        head_dim=4, vocab_size=20, rope_theta=100.0, rms_norm_eps=1e-6, max_position_embeddings=64,
        tie_word_embeddings=False, attn_implementation="eager"))
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_embd=8, n_layer=2, n_head=2, n_positions=32, vocab_size=20, attn_implementation="eager"))
    for kind, model in [("llama", llama), ("gpt2", gpt2)]:
        scramble(model, generator)
        model.eval()  # no dropout; gradients still flow
        hidden = 8
        weight = (torch.randn(hidden, DIM, generator=generator) * 0.5).requires_grad_()
        bias = (torch.randn(hidden, generator=generator) * 0.1).requires_grad_()
        visuals = [torch.randn(n, DIM, generator=generator) for _, _, n in EXAMPLES]
        embed = model.get_input_embeddings()
        rows, labels = [], []
        for (prompt, answer, _), visual in zip(EXAMPLES, visuals):
            prompt_ids = tokenizer.encode(prompt, add_special_tokens=False).ids
            answer_ids = tokenizer.encode(answer, add_special_tokens=False).ids + [2]
            ids = lambda xs: embed(torch.tensor(xs))
            embeddings = torch.cat([ids([1]), visual @ weight.T + bias, ids(prompt_ids), ids(answer_ids)])
            logits = model(inputs_embeds=embeddings[None]).logits[0]
            start = 1 + len(visual) + len(prompt_ids)
            label = torch.full((len(embeddings),), -100)
            label[start:] = torch.tensor(answer_ids)
            rows.append(logits[:-1])
            labels.append(label[1:])
        loss = torch.nn.functional.cross_entropy(torch.cat(rows), torch.cat(labels), ignore_index=-100)
        params = dict(model.named_parameters())
        grads = torch.autograd.grad(loss, list(params.values()) + [weight, bias])
        out = {"loss": loss.detach().reshape(1), "projector.weight": weight.detach(), "projector.bias": bias.detach()}
        for i, visual in enumerate(visuals):
            out[f"visual.{i}"] = visual
        canonical = lambda n: n[len("transformer."):] if n.startswith("transformer.") else n
        for (name, p), g in zip(params.items(), grads):
            out[f"decoder.{canonical(name)}"] = p.detach()
            out[f"grad.{canonical(name)}"] = g
        out["grad.projector.weight"], out["grad.projector.bias"] = grads[-2], grads[-1]
        versions = f"scripts/pretraining_fixtures.py; torch {torch.__version__}, transformers {transformers.__version__}"
        save_file({k: v.contiguous() for k, v in out.items()}, f"{OUT}/backend_{kind}.safetensors", metadata={"made_by": versions})
        print(f"backend_{kind}.safetensors loss", float(loss), "tensors", len(out))


def contrastive():
    from safetensors.torch import save_file
    generator = torch.Generator().manual_seed(1)
    config = transformers.SiglipConfig(
        text_config=dict(vocab_size=20, hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2,
                         max_position_embeddings=6, projection_size=16),
        vision_config=dict(hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2, image_size=8,
                           patch_size=4),
    )
    config._attn_implementation = "eager"
    model = transformers.SiglipModel(config)
    scramble(model, generator)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(10.0) + 0.3)
        model.logit_bias.fill_(-9.5)
    model.eval()
    pixels = torch.randn(4, 3, 8, 8, generator=generator)
    input_ids = torch.tensor([[3, 4, 5, 0, 0, 0], [8, 0, 0, 0, 0, 0], [12, 13, 14, 15, 16, 0], [9, 10, 0, 0, 0, 0]])
    out = model(input_ids=input_ids, pixel_values=pixels, return_loss=True)
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(out.loss, list(params.values()))
    rename = lambda n: n.replace("vision_model.", "vision.", 1).replace("text_model.", "text.", 1)
    tensors = {"loss": out.loss.detach().reshape(1), "pixels": pixels, "input_ids": input_ids.float()}
    for (name, p), g in zip(params.items(), grads):
        tensors[f"param.{rename(name)}"] = p.detach().reshape(p.shape)
        tensors[f"grad.{rename(name)}"] = g
    versions = f"scripts/pretraining_fixtures.py; torch {torch.__version__}, transformers {transformers.__version__}"
    save_file({k: v.contiguous() for k, v in tensors.items()}, f"{OUT}/contrastive.safetensors", metadata={"made_by": versions})
    print("contrastive.safetensors loss", float(out.loss), "parameters", len(params))


if __name__ == "__main__":
    parts = sys.argv[1:] or ["kmeans", "backend", "contrastive"]
    if "kmeans" in parts:
        kmeans()
    if "backend" in parts:
        backend()
    if "contrastive" in parts:
        contrastive()
