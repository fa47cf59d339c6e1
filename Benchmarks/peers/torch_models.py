#!/usr/bin/env python3
"""PyTorch CPU peer for `craft-bench encoder|llama|train-step` (Benchmarks/CraftBench/ModelBenchmark*.swift).

Two modes, both started by the Swift benchmark (they can be run by hand too):

    python torch_models.py make DIR
        Builds the benchmark models once with seeded weights (re-initialised so that no norm weight or
        bias is trivial: norm weights 1 + 0.1 N(0,1), biases 0.1 N(0,1), matrices N(0,1)/sqrt(fan_in)) and
        writes them where both sides load them from:
          DIR/encoder/   SiglipVisionModel (hidden 384, 12 layers, 6 heads, MLP 1536, 224 px, patch 16)
          DIR/llama/     LlamaForCausalLM (hidden 768, 12 layers, 12 heads, MLP 2048, vocab 32000, tied)
          DIR/inputs.safetensors     pixels [8,3,224,224], tokens [512], codebook [4096,384],
                                     projector weight [768,384] and bias [768], prompt [8,8], answer [8,4]
          DIR/reference.safetensors  outputs on one thread (what the Swift side checks it agrees with)
        and exits. Skipped when DIR/reference.safetensors exists.

    python torch_models.py serve DIR
        Loads the models from DIR with `from_pretrained` on first use and answers timing requests on
        stdin, one per line, so one warm process alternates with the Swift side:
          CASE THREADS ITERATIONS   CASE in encoder | prefill | decode | train | train-kept
        reply: one line of per-iteration "wall:cpu" milliseconds (the first request of a CASE and
        THREADS pair runs one extra, untimed warm-up iteration);
          memory                    reply: "hwm_kb rss_kb" (VmHWM and VmRSS of this process)
          quit

What each case runs (float32, `torch.no_grad()` except train, default SDPA attention):
  encoder  SiglipVisionModel forward on the 8 images (last_hidden_state and pooler_output)
  prefill  LlamaForCausalLM forward on the 512 tokens with the KV cache built (logits for every position)
  decode   the first 128 tokens prefilled (not timed), then 64 greedy tokens one at a time through the
           cache (timed; the reply is the time for all 64)
  train    one CRAFT step, forward + backward: encoder forward on the 8 images, straight-through
           nearest-code quantization on the frozen codebook (commitment loss weight 0.1), frozen
           projector, frozen Llama fed [visual 196 | prompt 8 | answer 4] embeddings per image (batched),
           answer cross-entropy; gradients for every encoder parameter (no optimizer update). The
           logits of every position, as transformers' training forward computes them
  train-kept  the same step with `logits_to_keep`: the output projection over the rows that
           predict the answer only (what Craft's surrogate does), the same loss and gradients
"""
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

BATCH, IMAGE, PATCH = 8, 224, 16
ENCODER = dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=12, num_attention_heads=6,
               image_size=IMAGE, patch_size=PATCH, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
LLAMA = dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
             num_key_value_heads=12, vocab_size=32000, max_position_embeddings=1024, rms_norm_eps=1e-6,
             tie_word_embeddings=True, hidden_act="silu")
PREFILL, DECODE_PROMPT, DECODE_TOKENS = 512, 128, 64
CODES, PROMPT, ANSWER = 4096, 8, 4
COMMIT = 0.1


def reinitialise(model, generator, block_rows=None):
    """Norm weights 1 + 0.1 N(0,1), biases 0.1 N(0,1), matrices N(0,1)/sqrt(fan_in). With block_rows,
    matrices are drawn that many rows at a time (no float32 copy of a large table in a bfloat16 model)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=generator))
            elif name.endswith("bias") or p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
            else:
                fan_in = math.prod(p.shape[1:]) if p.dim() > 1 else p.shape[-1]
                step = block_rows or p.shape[0]
                for start in range(0, p.shape[0], step):
                    rows = p[start:start + step]
                    rows.copy_(torch.randn(rows.shape, generator=generator) / math.sqrt(fan_in))


def make(directory):
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM, SiglipVisionConfig, SiglipVisionModel

    if os.path.exists(os.path.join(directory, "reference.safetensors")):
        return
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(20261127)
    encoder = SiglipVisionModel(SiglipVisionConfig(**ENCODER)).eval()
    reinitialise(encoder, g)
    encoder.save_pretrained(os.path.join(directory, "encoder"), safe_serialization=True)
    llama = LlamaForCausalLM(LlamaConfig(**LLAMA)).eval()
    reinitialise(llama, g)
    llama.save_pretrained(os.path.join(directory, "llama"), safe_serialization=True)
    vocab = LLAMA["vocab_size"]
    inputs = {
        "pixels": torch.randn(BATCH, 3, IMAGE, IMAGE, generator=g),
        "tokens": torch.randint(0, vocab, (PREFILL,), generator=g),
        "codebook": torch.randn(CODES, ENCODER["hidden_size"], generator=g),
        "projector_weight": torch.randn(LLAMA["hidden_size"], ENCODER["hidden_size"], generator=g) / math.sqrt(ENCODER["hidden_size"]),
        "projector_bias": 0.1 * torch.randn(LLAMA["hidden_size"], generator=g),
        "prompt": torch.randint(0, vocab, (BATCH, PROMPT), generator=g),
        "answer": torch.randint(0, vocab, (BATCH, ANSWER), generator=g),
    }
    state = State(directory, inputs=inputs)
    reference = {}
    with torch.no_grad():
        out = state.encoder_forward()
        reference["encoder_last_hidden_state"] = out.last_hidden_state.contiguous()
        reference["encoder_pooler_output"] = out.pooler_output.contiguous()
        reference["prefill_logits_last"] = state.prefill()[0, -8:].contiguous()
        reference["decode_tokens"] = torch.tensor(state.decode(), dtype=torch.int64)
    loss, codes = state.train_step()
    reference["train_loss"] = loss.detach().reshape(1)
    reference["train_codes"] = codes.to(torch.int64)
    named = dict(state.encoder.named_parameters())
    for name in ["embeddings.patch_embedding.weight", "encoder.layers.0.self_attn.q_proj.weight", "encoder.layers.11.mlp.fc2.bias"]:
        reference["grad." + name] = named[name].grad.contiguous()
    save_file({k: v.contiguous() for k, v in inputs.items()}, os.path.join(directory, "inputs.safetensors"))
    save_file(reference, os.path.join(directory, "reference.safetensors"))


class State:
    """The models and inputs of one run, loaded lazily from DIR."""

    def __init__(self, directory, inputs=None):
        self.directory = directory
        self._inputs = inputs
        self._encoder = None
        self._llama = None

    @property
    def inputs(self):
        if self._inputs is None:
            from safetensors.torch import load_file
            self._inputs = load_file(os.path.join(self.directory, "inputs.safetensors"))
        return self._inputs

    @property
    def encoder(self):
        if self._encoder is None:
            from transformers import SiglipVisionModel
            self._encoder = SiglipVisionModel.from_pretrained(os.path.join(self.directory, "encoder"), dtype=torch.float32).eval()
        return self._encoder

    @property
    def llama(self):
        if self._llama is None:
            from transformers import LlamaForCausalLM
            self._llama = LlamaForCausalLM.from_pretrained(os.path.join(self.directory, "llama"), dtype=torch.float32).eval()
            for p in self._llama.parameters():
                p.requires_grad_(False)
        return self._llama

    def encoder_forward(self):
        return self.encoder(pixel_values=self.inputs["pixels"])

    def prefill(self):
        out = self.llama(input_ids=self.inputs["tokens"][None], use_cache=True)
        return out.logits

    def decode(self):
        out = self.llama(input_ids=self.inputs["tokens"][None, :DECODE_PROMPT], use_cache=True)
        return self.continue_decoding(out)

    def continue_decoding(self, out):
        cache, generated = out.cache, []
        token = out.logits[:, -1].argmax(-1)
        for _ in range(DECODE_TOKENS):
            generated.append(int(token))
            out = self.llama(input_ids=token[:, None], cache=cache, use_cache=True)
            cache = out.cache
            token = out.logits[:, -1].argmax(-1)
        return generated

    def train_step(self, kept=False):
        encoder, llama, x = self.encoder, self.llama, self.inputs
        encoder.train(False)  # no dropout in SigLIP anyway; eval keeps the same code path as Craft
        for p in encoder.parameters():
            p.requires_grad_(True)
            p.grad = None
        z_e = encoder(pixel_values=x["pixels"]).last_hidden_state            # [8, 196, 384]
        flat = z_e.detach().reshape(-1, z_e.shape[-1])
        codebook = x["codebook"]
        distances = (flat * flat).sum(1, keepdim=True) - 2 * flat @ codebook.T + (codebook * codebook).sum(1)
        codes = distances.argmin(1)
        z_q = codebook[codes].reshape(z_e.shape)
        quantized = z_e + (z_q - z_e).detach()
        commitment = F.mse_loss(z_e, z_q.detach())
        visual = F.linear(quantized, x["projector_weight"], x["projector_bias"])  # [8, 196, 768]
        embed = llama.get_input_embeddings()
        text = embed(torch.cat([x["prompt"], x["answer"]], dim=1))              # [8, 12, 768]
        embeddings = torch.cat([visual, text], dim=1)
        if kept:
            # Only the rows that predict the answer: the last ANSWER + 1 positions.
            logits = llama(inputs_embeds=embeddings, use_cache=False, logits_to_keep=ANSWER + 1).logits
        else:
            logits = llama(inputs_embeds=embeddings, use_cache=False).logits   # [8, 208, V]
        labels = torch.full(logits.shape[:2], -100, dtype=torch.int64)
        labels[:, -ANSWER:] = x["answer"]
        alignment = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
        loss = alignment + COMMIT * commitment
        loss.backward()
        return loss, codes


def memory():
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmHWM", "VmRSS")):
                key, value = line.split(":")
                values[key] = int(value.split()[0])
    return values.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), values.get("VmRSS", 0)


def serve(directory):
    state = State(directory)

    def run(case):
        if case in ("train", "train-kept"):
            state.train_step(kept=case == "train-kept")
            return
        with torch.no_grad():
            if case == "encoder":
                state.encoder_forward()
            elif case == "prefill":
                state.prefill()
            elif case == "decode":
                return "decode"
            else:
                raise ValueError(case)

    warmed = set()
    print(f"ready torch {torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability()})", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        if parts[0] == "memory":
            hwm, rss = memory()
            print(f"{hwm} {rss}", flush=True)
            continue
        case, threads, iterations = parts[0], int(parts[1]), int(parts[2])
        torch.set_num_threads(threads)
        times = []
        warm_up = (case, threads) not in warmed
        warmed.add((case, threads))
        for iteration in range(iterations + 1 if warm_up else iterations):
            if case == "decode":
                with torch.no_grad():
                    out = state.llama(input_ids=state.inputs["tokens"][None, :DECODE_PROMPT], use_cache=True)
                    start, cpu_start = time.perf_counter(), time.process_time()
                    state.continue_decoding(out)
            else:
                start, cpu_start = time.perf_counter(), time.process_time()
                run(case)
            if iteration > 0 or not warm_up:
                times.append(((time.perf_counter() - start) * 1000, (time.process_time() - cpu_start) * 1000))
        print(" ".join(f"{wall:.3f}:{cpu:.3f}" for wall, cpu in times), flush=True)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "serve"):
        sys.exit("usage: torch_models.py make|serve DIR")
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        serve(sys.argv[2])


if __name__ == "__main__":
    main()
