"""Reference fixtures for the model runtimes (CraftModels: Llama, Qwen2, GPT-2, SigLIP).

Run by hand with the reference environment (no internet needed; tiny random configs):

    .venv-ref/bin/python scripts/model_fixtures.py          # every fixture
    .venv-ref/bin/python scripts/model_fixtures.py qwen2    # only the Qwen2 ones
    .venv-ref/bin/python scripts/model_fixtures.py rope     # only the scaled-RoPE Llama ones
    .venv-ref/bin/python scripts/model_fixtures.py projector  # only the mlp2x_gelu projector

Writes into Tests/CraftModelsTests/Fixtures/models/:
  <name>/config.json + <name>/model.safetensors   (save_pretrained(safe_serialization=True))
  <name>.reference.safetensors                    (inputs and reference outputs)

Weights are re-initialised so that a missing bias or norm shows (norm weights 1+0.1*N(0,1), biases
0.1*N(0,1), matrices N(0,1)/sqrt(fan_in)), eager attention, one thread.
"""
import json
import math
import os
import sys

import safetensors
import torch
import transformers
from safetensors.torch import load_file, save_file

torch.set_num_threads(1)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "CraftModelsTests", "Fixtures", "models")
VERSIONS = (f"scripts/model_fixtures.py; torch {torch.__version__}, transformers {transformers.__version__}, "
            f"safetensors {safetensors.__version__}")


def reinitialise(model, seed, conv1d_names=()):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            short = name.split(".")[-1]
            if short.endswith("bias"):
                p.copy_(0.1 * noise)
            elif p.dim() == 1:  # norm weights
                p.copy_(1 + 0.1 * noise)
            elif p.dim() == 2 and any(c in name for c in conv1d_names):  # GPT-2 Conv1D [in, out]
                p.copy_(noise / p.shape[0] ** 0.5)
            elif p.dim() >= 2:
                fan_in = 1
                for s in p.shape[1:]:
                    fan_in *= s
                p.copy_(noise / fan_in ** 0.5)
            else:
                p.copy_(noise)


def save_model(model, name):
    path = os.path.join(ROOT, name)
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(path, extra)):
            os.remove(os.path.join(path, extra))
    return path


def save_reference(name, tensors):
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(ROOT, f"{name}.reference.safetensors"), metadata={"made_by": VERSIONS})


def decoder_reference(model, name, vocab, hidden, seed, length=7):
    gen = torch.Generator().manual_seed(seed + 1000)
    ids = torch.randint(0, vocab, (1, length), generator=gen)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    with torch.no_grad():
        generated = model.generate(ids, do_sample=False, max_new_tokens=6, min_new_tokens=6,
                                   attention_mask=torch.ones_like(ids))[0]
    embeds = torch.randn(1, 5, hidden, generator=gen).requires_grad_(True)
    targets = torch.randint(0, vocab, (5,), generator=gen)
    embeds_logits = model(inputs_embeds=embeds).logits[0]
    loss = torch.nn.functional.cross_entropy(embeds_logits, targets)
    (grad,) = torch.autograd.grad(loss, embeds)
    save_reference(name, {
        "input_ids": ids[0].to(torch.int64), "logits": logits, "generated": generated.to(torch.int64),
        "embeddings": embeds[0], "embeddings_logits": embeds_logits, "targets": targets.to(torch.int64),
        "loss": loss.reshape([]), "embeddings_gradient": grad[0],
    })


def llama(name, tied, old_rope, seed, biases=False):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=tied,
        attention_bias=biases, mlp_bias=biases, head_dim=16 if biases else None,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0 if old_rope else 10000.0},
        attn_implementation="eager", bos_token_id=1, eos_token_id=2)
    model = transformers.LlamaForCausalLM(config).eval()
    reinitialise(model, seed)
    if tied:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    path = save_model(model, name)
    if old_rope:  # the transformers 4.x layout: a top-level rope_theta
        cfg_path = os.path.join(path, "config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg.pop("rope_parameters", None)
        cfg["rope_theta"] = 500000.0
        cfg["rope_scaling"] = None
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
    decoder_reference(model, name, 128, 32, seed)


def llama_rope(name, rope_parameters, seed):
    """Llama with a scaled RoPE (linear, llama3) from rope_parameters, checked on 40 tokens: longer than
    the original context of 16 positions the scaling is defined against."""
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
        rope_parameters=rope_parameters, attn_implementation="eager", bos_token_id=1, eos_token_id=2)
    model = transformers.LlamaForCausalLM(config).eval()
    reinitialise(model, seed)
    save_model(model, name)
    decoder_reference(model, name, 128, 32, seed, length=40)


def mlp_projector(name, seed, dim=32, hidden=32):
    """LLaVA/VILA's mm_projector (mlp2x_gelu): Sequential(Linear(D, H), GELU(), Linear(H, H)), exact
    GELU, with the checkpoint's tensor names; the reference holds an input, the output and the input
    gradient of sum(output * upstream)."""
    torch.manual_seed(seed)
    projector = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, hidden))
    reinitialise(projector, seed)
    gen = torch.Generator().manual_seed(seed + 1000)
    vectors = torch.randn(5, dim, generator=gen).requires_grad_(True)
    upstream = torch.randn(5, hidden, generator=gen)
    output = projector(vectors)
    (grad,) = torch.autograd.grad((output * upstream).sum(), vectors)
    weights = {f"model.mm_projector.{k}": v.detach().contiguous() for k, v in projector.state_dict().items()}
    save_file(weights, os.path.join(ROOT, f"{name}.safetensors"), metadata={"made_by": VERSIONS})
    save_reference(name, {"vectors": vectors, "upstream": upstream, "output": output, "vectors_gradient": grad})


def qwen2(name, tied, seed, bfloat16=False):
    """Qwen2ForCausalLM: q/k/v biases (no o_proj bias), GQA, rope theta 1e6 via rope_parameters.
    With bfloat16 the checkpoint is saved in bfloat16 and the reference is that same file loaded
    in float32 (what Craft computes from it)."""
    torch.manual_seed(seed)
    config = transformers.Qwen2Config(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=tied,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, use_sliding_window=False,
        attn_implementation="eager", bos_token_id=1, eos_token_id=2)
    model = transformers.Qwen2ForCausalLM(config).eval()
    reinitialise(model, seed)
    assert model.model.layers[0].self_attn.q_proj.bias is not None and model.model.layers[0].self_attn.o_proj.bias is None
    if bfloat16:
        path = save_model(model.to(torch.bfloat16), name)
        model = transformers.Qwen2ForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    else:
        save_model(model, name)
    decoder_reference(model, name, 128, 32, seed)


def half_precision(name, family, dtype, seed):
    """A checkpoint saved in half precision (float16 or bfloat16); the reference is that same file
    loaded in float32, which is what Craft computes from it (weights kept in half precision, products
    in float32)."""
    torch.manual_seed(seed)
    if family == "llama":
        config = transformers.LlamaConfig(
            vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            attn_implementation="eager", bos_token_id=1, eos_token_id=2)
        model_class = transformers.LlamaForCausalLM
        model = model_class(config).eval()
        reinitialise(model, seed)
    else:
        config = transformers.GPT2Config(vocab_size=128, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                         attn_implementation="eager", bos_token_id=0, eos_token_id=0)
        model_class = transformers.GPT2LMHeadModel
        model = model_class(config).eval()
        reinitialise(model, seed, conv1d_names=("c_attn", "c_proj", "c_fc"))
    path = save_model(model.to(dtype), name)
    model = model_class.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    decoder_reference(model, name, 128, 32, seed)


def gpt2(name, seed, variant=False):
    torch.manual_seed(seed)
    extra = dict(n_inner=48, scale_attn_by_inverse_layer_idx=True, tie_word_embeddings=False,
                 activation_function="gelu") if variant else {}
    config = transformers.GPT2Config(
        vocab_size=128, n_positions=64, n_embd=32, n_layer=2, n_head=4, attn_implementation="eager",
        bos_token_id=0, eos_token_id=0, **extra)
    model = transformers.GPT2LMHeadModel(config).eval()
    reinitialise(model, seed, conv1d_names=("c_attn", "c_proj", "c_fc"))
    save_model(model, name)
    decoder_reference(model, name, 128, 32, seed)


def siglip(name, use_head, prefix, seed):
    torch.manual_seed(seed)
    config = transformers.SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_channels=3,
        image_size=32, patch_size=8, layer_norm_eps=1e-6, vision_use_head=use_head, attn_implementation="eager")
    model = transformers.SiglipVisionModel(config).eval()
    reinitialise(model, seed)
    path = save_model(model, name)
    weights_path = os.path.join(path, "model.safetensors")
    weights = load_file(weights_path)
    has_prefix = all(k.startswith("vision_model.") for k in weights)
    if prefix and not has_prefix:
        weights = {"vision_model." + k: v for k, v in weights.items()}
    elif not prefix and has_prefix:
        weights = {k[len("vision_model."):]: v for k, v in weights.items()}
    save_file(weights, weights_path, metadata={"format": "pt"})
    gen = torch.Generator().manual_seed(seed + 1000)
    pixels = torch.randn(2, 3, 32, 32, generator=gen).requires_grad_(True)
    out = model(pixel_values=pixels, output_hidden_states=True)
    tensors = {"pixel_values": pixels, "last_hidden_state": out.last_hidden_state,
               "hidden_state_after_layer_1": out.hidden_states[1]}
    # A scalar loss on the output for the gradient w.r.t. the pixels.
    weight = torch.randn(out.last_hidden_state.shape, generator=gen)
    loss = (out.last_hidden_state * weight).sum()
    if use_head:
        tensors["pooler_output"] = out.pooler_output
        pool_weight = torch.randn(out.pooler_output.shape, generator=gen)
        loss = loss + (out.pooler_output * pool_weight).sum()
        tensors["pooler_loss_weight"] = pool_weight
    named = dict(model.named_parameters())
    weight_names = ["embeddings.patch_embedding.weight", "encoder.layers.0.self_attn.q_proj.weight",
                    "encoder.layers.1.mlp.fc2.bias", "post_layernorm.weight"]
    if use_head:
        weight_names += ["head.probe", "head.attention.in_proj_weight"]
    grads = torch.autograd.grad(loss, [pixels] + [named[n] for n in weight_names])
    tensors["hidden_loss_weight"] = weight
    tensors["pixel_gradient"] = grads[0]
    for n, g in zip(weight_names, grads[1:]):
        tensors["weight_gradient." + n] = g
    save_reference(name, tensors)


def siglip_text(name, seed):
    torch.manual_seed(seed)
    config = transformers.SiglipTextConfig(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=12, projection_size=24, layer_norm_eps=1e-6, pad_token_id=1, bos_token_id=2,
        eos_token_id=3, attn_implementation="eager")
    model = transformers.SiglipTextModel(config).eval()
    reinitialise(model, seed)
    path = save_model(model, name)
    weights_path = os.path.join(path, "model.safetensors")
    weights = load_file(weights_path)  # published checkpoints carry the text_model. prefix
    weights = {(k if k.startswith("text_model.") else "text_model." + k): v for k, v in weights.items()}
    save_file(weights, weights_path, metadata={"format": "pt"})
    gen = torch.Generator().manual_seed(seed + 1000)
    ids = torch.randint(4, 100, (2, 12), generator=gen)
    ids[1, 7:] = 1  # padded with pad_token_id to max_length, as SigLIP is used
    with torch.no_grad():
        out = model(input_ids=ids)
    save_reference(name, {"input_ids": ids.to(torch.int64), "last_hidden_state": out.last_hidden_state,
                          "pooler_output": out.pooler_output})


def vila_u_layout(name, seed, depth=4, codes=16):
    """A checkpoint laid out as VILA-U's vision side (random, small): a full SiglipModel (vision tower
    of 3 layers, quantized before its last; text tower for L_con; its own learned logit scale and
    bias), a tokenizer.json for the text tower, and a residual-VQ codebook stored as RQ-VAE stores
    it: one [K + 1, D] tensor shared by every level whose last row is the padding embedding, never a
    code. The reference holds pixel values, the output of layer 2 (what is quantized), and the codes
    and quantized vectors of residual quantization at depth 4 on the K real rows."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    torch.manual_seed(seed)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, num_channels=3,
                  image_size=32, patch_size=8, layer_norm_eps=1e-6, vision_use_head=True)
    text = dict(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=12, projection_size=32, layer_norm_eps=1e-6, pad_token_id=1, bos_token_id=2,
                eos_token_id=3)
    config = transformers.SiglipConfig(text_config=text, vision_config=vision, attn_implementation="eager")
    model = transformers.SiglipModel(config).eval()
    reinitialise(model, seed)
    with torch.no_grad():  # learned values, not SigLIP's initial log(10) and -10
        model.logit_scale.fill_(math.log(11.5))
        model.logit_bias.fill_(-7.25)
    path = save_model(model, name)
    vocab = {"<unk>": 0, "<pad>": 1, "<s>": 2, "</s>": 3}
    for index in range(4, 100):
        vocab[f"w{index}"] = index
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(os.path.join(path, "tokenizer.json"))

    gen = torch.Generator().manual_seed(seed + 1000)
    codebook = torch.randn(codes, 32, generator=gen) * 1.5
    stored = torch.cat([codebook, torch.zeros(1, 32)])  # RQ-VAE's nn.Embedding(K + 1, D, padding_idx=K)
    save_file({"quantizer.codebooks.0.weight": stored}, os.path.join(ROOT, f"{name}.rq_codebook.safetensors"),
              metadata={"made_by": VERSIONS})
    pixels = torch.randn(2, 3, 32, 32, generator=gen)
    with torch.no_grad():
        hidden = model.vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states[2]
    residual, quantized, chosen = hidden.clone(), torch.zeros_like(hidden), []
    for _ in range(depth):
        distances = (residual.unsqueeze(-2) - codebook).pow(2).sum(-1)
        index = distances.argmin(-1)
        vectors = codebook[index]
        chosen.append(index)
        quantized += vectors
        residual -= vectors
    save_reference(name, {"pixel_values": pixels, "features": hidden, "codes": torch.stack(chosen, -1).to(torch.int64),
                          "quantized": quantized, "logit_scale": model.logit_scale.detach().reshape(1),
                          "logit_bias": model.logit_bias.detach().reshape(1)})


def main():
    os.makedirs(ROOT, exist_ok=True)
    only = sys.argv[1:]  # later additions can be made alone; the others stay as they were made
    if not only or "qwen2" in only:
        qwen2("qwen2_untied", tied=False, seed=11)
        qwen2("qwen2_tied_bf16", tied=True, seed=12, bfloat16=True)
    if not only or "half" in only:
        half_precision("llama_untied_f16", "llama", torch.float16, seed=17)
        half_precision("gpt2_bf16", "gpt2", torch.bfloat16, seed=18)
    if not only or "vila_u" in only:
        vila_u_layout("vila_u_layout", seed=19)
    if not only or "projector" in only:
        mlp_projector("mlp2x_gelu_projector", seed=16)
    if not only or "rope" in only:
        llama_rope("llama_rope_linear", {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}, seed=13)
        llama_rope("llama_rope_llama3", {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                         "original_max_position_embeddings": 16}, seed=14)
        llama_rope("llama_rope_default_long", {"rope_type": "default", "rope_theta": 10000.0}, seed=15)
    if only:
        return
    llama("llama_tied", tied=True, old_rope=False, seed=1)
    llama("llama_untied_old_rope", tied=False, old_rope=True, seed=2)
    gpt2("gpt2", seed=3)
    # Options the main fixtures leave at their defaults.
    llama("llama_biases_head_dim", tied=False, old_rope=False, seed=7, biases=True)
    gpt2("gpt2_untied_variant", seed=8, variant=True)
    siglip("siglip_head_prefixed", use_head=True, prefix=True, seed=4)
    siglip("siglip_no_head", use_head=False, prefix=False, seed=5)
    siglip_text("siglip_text", seed=6)
    with open(os.path.join(ROOT, "README.md"), "w") as f:
        f.write(f"Made by {VERSIONS}.\n\n"
                "Each directory is a tiny random Hugging Face checkpoint (config.json + model.safetensors);\n"
                "each NAME.reference.safetensors holds the inputs and the reference outputs from transformers.\n")
    print("written to", os.path.abspath(ROOT), file=sys.stderr)


if __name__ == "__main__":
    main()
