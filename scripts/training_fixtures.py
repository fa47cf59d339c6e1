"""Fixtures for Tests/CraftTrainingTests (CRAFT losses incl. the continuous baseline and the label-aware
L_con on the quantized path of a SigLIP tower, AdamW with and without parameter groups, cosine schedule,
gradient clipping).

Run by hand: .venv-ref/bin/python scripts/training_fixtures.py
Writes Tests/CraftTrainingTests/Fixtures/training_fixtures.json (small; flat row-major float lists) and
Tests/CraftTrainingTests/Fixtures/lcon_tower/ (a 2-layer SigLIP vision tower, config.json + model.safetensors).

References: transformers.SiglipModel's loss (sum over all pairs of -logsigmoid(z * logits), divided by
the batch size), torch.nn.functional.cross_entropy(ignore_index=-100), torch.optim.AdamW,
transformers.get_cosine_schedule_with_warmup, torch.nn.utils.clip_grad_norm_, torch.autograd.
"""
import json
import math
import os

import torch
import torch.nn.functional as F
import transformers
from transformers import get_cosine_schedule_with_warmup

torch.set_num_threads(1)
torch.manual_seed(1234)
OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "CraftTrainingTests", "Fixtures", "training_fixtures.json")


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def siglip_loss(image, text, logit_scale, logit_bias):
    # As transformers.SiglipModel.forward: normalise, logits_per_text = t @ i.T * exp(scale) + bias.
    image = image / image.norm(p=2, dim=-1, keepdim=True)
    text = text / text.norm(p=2, dim=-1, keepdim=True)
    logits_per_text = text @ image.t() * logit_scale.exp() + logit_bias
    eye = torch.eye(logits_per_text.size(0))
    m1_diag1 = -torch.ones_like(logits_per_text) + 2 * eye
    loglik = F.logsigmoid(m1_diag1 * logits_per_text)
    nll = -torch.sum(loglik, dim=-1)
    return nll.mean()


fixtures = {"generator": f"scripts/training_fixtures.py with torch {torch.__version__}, transformers {transformers.__version__}"}

# 1. SigLIP sigmoid loss and its gradients.
n, d = 4, 6
image = torch.randn(n, d, requires_grad=True)
text = torch.randn(n, d, requires_grad=True)
scale = torch.tensor(math.log(10.0), requires_grad=True)
bias = torch.tensor(-10.0 + 7.5, requires_grad=True)
loss = siglip_loss(image, text, scale, bias)
loss.backward()
fixtures["siglip"] = {
    "n": n, "d": d, "image": flat(image), "text": flat(text), "logit_scale": float(scale), "logit_bias": float(bias),
    "loss": float(loss), "grad_image": flat(image.grad), "grad_text": flat(text.grad),
    "grad_logit_scale": float(scale.grad), "grad_logit_bias": float(bias.grad),
}

# 2. Answer-token cross-entropy: logits [T, V], tokens [T], answer positions; shift by one.
T, V = 7, 5
logits = torch.randn(T, V, requires_grad=True)
tokens = torch.randint(0, V, (T,))
answer_start = 4  # tokens 4..6 are the answer; prompt positions are ignored
labels = tokens.clone()
labels[:answer_start] = -100
ce = F.cross_entropy(logits[:-1], labels[1:], ignore_index=-100)
ce.backward()
fixtures["answer_ce"] = {
    "t": T, "v": V, "logits": flat(logits), "tokens": [int(x) for x in tokens], "answer_start": answer_start,
    "loss": float(ce), "grad_logits": flat(logits.grad),
}

# 3. Composite CRAFT objective: linear encoder -> straight-through VQ (frozen l2 codebook) ->
#    frozen projector -> frozen causal-mean head -> answer CE; plus commitment and contrastive terms.
B, P, Din, D, K, H, Vc = 3, 4, 5, 4, 8, 6, 7
Lp, La = 2, 2  # prompt and answer tokens per example
enc_w = (torch.randn(D, Din) / math.sqrt(Din)).requires_grad_(True)
enc_b = (0.1 * torch.randn(D)).requires_grad_(True)
pixels = torch.randn(B, P, Din)
codebook = torch.randn(K, D)
proj_w = torch.randn(H, D) / math.sqrt(D)
proj_b = 0.1 * torch.randn(H)
embed = torch.randn(Vc, H)
head_w1 = torch.randn(H, H) / math.sqrt(H)
head_w2 = torch.randn(Vc, H) / math.sqrt(H)
text_emb = torch.randn(B, D)
prompts = torch.randint(0, Vc, (B, Lp))
answers = torch.randint(0, Vc, (B, La))
lambda_con, lambda_commit = 0.5, 0.1
c_scale, c_bias = math.log(10.0), -2.0

z_e = pixels @ enc_w.t() + enc_b                     # [B, P, D]
dist = (z_e.unsqueeze(-2) - codebook).pow(2).sum(-1)  # [B, P, K]
sorted_d, _ = dist.sort(dim=-1)
assert (sorted_d[..., 1] - sorted_d[..., 0]).min() > 1e-3, "near tie; change the seed"
codes = dist.argmin(-1)
z_q = codebook[codes]
z_q_hat = z_e + (z_q - z_e).detach()
commit = F.mse_loss(z_q.detach(), z_e)
sal_losses_logits, sal_labels = [], []
for b in range(B):
    visual = z_q_hat[b] @ proj_w.t() + proj_b         # [P, H]
    seq_tokens = torch.cat([prompts[b], answers[b]])
    seq = torch.cat([visual, embed[seq_tokens]], 0)  # [P + Lp + La, H]
    L = seq.shape[0]
    causal = torch.tril(torch.ones(L, L))
    causal = causal / causal.sum(-1, keepdim=True)
    h = torch.tanh((causal @ seq) @ head_w1.t())
    lg = h @ head_w2.t()                              # [L, Vc]
    lab = torch.full((L,), -100, dtype=torch.long)
    lab[P + Lp:] = answers[b]
    sal_losses_logits.append(lg[:-1])
    sal_labels.append(lab[1:])
sal = F.cross_entropy(torch.cat(sal_losses_logits), torch.cat(sal_labels), ignore_index=-100)
pooled = z_e.mean(1)
con = siglip_loss(pooled, text_emb, torch.tensor(c_scale), torch.tensor(c_bias))
total = lambda_con * con + lambda_commit * commit + sal
g_w, g_b = torch.autograd.grad(total, [enc_w, enc_b])
fixtures["composite"] = {
    "b": B, "p": P, "din": Din, "d": D, "k": K, "h": H, "v": Vc, "lp": Lp, "la": La,
    "enc_w": flat(enc_w), "enc_b": flat(enc_b), "pixels": flat(pixels), "codebook": flat(codebook),
    "proj_w": flat(proj_w), "proj_b": flat(proj_b), "embed": flat(embed), "head_w1": flat(head_w1),
    "head_w2": flat(head_w2), "text_emb": flat(text_emb),
    "prompts": [int(x) for x in prompts.reshape(-1)], "answers": [int(x) for x in answers.reshape(-1)],
    "lambda_con": lambda_con, "lambda_commit": lambda_commit, "logit_scale": c_scale, "logit_bias": c_bias,
    "codes": [int(x) for x in codes.reshape(-1)],
    "sal": float(sal), "commit": float(commit), "con": float(con), "total": float(total),
    "grad_enc_w": flat(g_w), "grad_enc_b": flat(g_b),
}

# 3b. The continuous fine-tuning baseline on the same tensors (no new random numbers are drawn, so
#     the sections after this one are unchanged): the head reads z_e itself (quantizer bypassed, no
#     straight-through estimator), L_commit is off; L_SAL and L_con as above.
z_e = pixels @ enc_w.t() + enc_b  # rebuilt: the graph above was freed by autograd.grad
c_sal_logits, c_sal_labels = [], []
for b in range(B):
    visual = z_e[b] @ proj_w.t() + proj_b
    seq_tokens = torch.cat([prompts[b], answers[b]])
    seq = torch.cat([visual, embed[seq_tokens]], 0)
    L = seq.shape[0]
    causal = torch.tril(torch.ones(L, L))
    causal = causal / causal.sum(-1, keepdim=True)
    h = torch.tanh((causal @ seq) @ head_w1.t())
    lg = h @ head_w2.t()
    lab = torch.full((L,), -100, dtype=torch.long)
    lab[P + Lp:] = answers[b]
    c_sal_logits.append(lg[:-1])
    c_sal_labels.append(lab[1:])
c_sal = F.cross_entropy(torch.cat(c_sal_logits), torch.cat(c_sal_labels), ignore_index=-100)
c_con = siglip_loss(z_e.mean(1), text_emb, torch.tensor(c_scale), torch.tensor(c_bias))
c_total = lambda_con * c_con + c_sal
c_g_w, c_g_b = torch.autograd.grad(c_total, [enc_w, enc_b])
fixtures["composite_continuous"] = {
    "sal": float(c_sal), "con": float(c_con), "total": float(c_total),
    "grad_enc_w": flat(c_g_w), "grad_enc_b": flat(c_g_b),
}

# 4. AdamW step for step with given gradients.
p1 = torch.randn(3, 4)
p2 = torch.randn(5)
params = [p1.clone().requires_grad_(True), p2.clone().requires_grad_(True)]
opt = torch.optim.AdamW(params, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
grads = []
steps = 6
for s in range(steps):
    gs = [torch.randn(3, 4), torch.randn(5)]
    grads.append([flat(g) for g in gs])
    for p, g in zip(params, gs):
        p.grad = g.clone()
    opt.step()
state = [opt.state[p] for p in params]
fixtures["adamw"] = {
    "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.05, "steps": steps,
    "initial": [flat(p1), flat(p2)], "shapes": [[3, 4], [5]], "grads": grads,
    "final": [flat(p) for p in params],
    "exp_avg": [flat(s["exp_avg"]) for s in state], "exp_avg_sq": [flat(s["exp_avg_sq"]) for s in state],
}

# 5. Cosine schedule with linear warmup (the multiplier of the base learning rate per step).
dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
sched = get_cosine_schedule_with_warmup(dummy, num_warmup_steps=3, num_training_steps=10)
fixtures["cosine"] = {
    "warmup": 3, "total": 10, "multipliers": [float(sched.lr_lambdas[0](s)) for s in range(13)],
}

# 6. clip_grad_norm_.
ga, gb = torch.randn(3, 4) * 2, torch.randn(5) * 2
pa, pb = torch.zeros(3, 4, requires_grad=True), torch.zeros(5, requires_grad=True)
pa.grad, pb.grad = ga.clone(), gb.clone()
norm = torch.nn.utils.clip_grad_norm_([pa, pb], max_norm=1.5)
fixtures["clip"] = {
    "max_norm": 1.5, "grads": [flat(ga), flat(gb)], "norm": float(norm), "clipped": [flat(pa.grad), flat(pb.grad)],
}

# 7. AdamW with the Hugging Face Trainer's two parameter groups: the bias-like tensor (rank 1) gets
#    weight decay 0 (Craft's default, AdamW.Configuration.decaysVectors = false).
torch.manual_seed(77)
q1 = torch.randn(3, 4)
q2 = torch.randn(5)
gparams = [q1.clone().requires_grad_(True), q2.clone().requires_grad_(True)]
gopt = torch.optim.AdamW([{"params": [gparams[0]], "weight_decay": 0.05}, {"params": [gparams[1]], "weight_decay": 0.0}],
                         lr=0.01, betas=(0.9, 0.999), eps=1e-8)
ggrads = []
for s in range(steps):
    gs = [torch.randn(3, 4), torch.randn(5)]
    ggrads.append([flat(g) for g in gs])
    for p, g in zip(gparams, gs):
        p.grad = g.clone()
    gopt.step()
fixtures["adamw_groups"] = {
    "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.05, "steps": steps,
    "initial": [flat(q1), flat(q2)], "shapes": [[3, 4], [5]], "grads": ggrads,
    "final": [flat(p) for p in gparams],
}


# 8. CRAFT's label-aware L_con: SigLIP's sigmoid loss over [n images, m distinct texts] with +1 where
#    the text describes the image (its caption, its class's label text), summed and divided by n.
def siglip_loss_targets(image, text, logit_scale, logit_bias, targets):
    image = image / image.norm(p=2, dim=-1, keepdim=True)
    text = text / text.norm(p=2, dim=-1, keepdim=True)
    logits = image @ text.t() * logit_scale.exp() + logit_bias
    return -F.logsigmoid(targets * logits).sum() / image.size(0)


torch.manual_seed(88)
n_img, m_txt, dd = 5, 4, 6
t_image = torch.randn(n_img, dd, requires_grad=True)
t_text = torch.randn(m_txt, dd)
# images 0 and 2 are class "a" (text 0), image 1 class "b" (text 1), images 3 and 4 class "c" (text 2);
# image 4 also has a caption (text 3).
targets = -torch.ones(n_img, m_txt)
for i, j in [(0, 0), (2, 0), (1, 1), (3, 2), (4, 2), (4, 3)]:
    targets[i, j] = 1
t_scale = torch.tensor(math.log(20.0), requires_grad=True)
t_bias = torch.tensor(-4.0, requires_grad=True)
t_loss = siglip_loss_targets(t_image, t_text, t_scale, t_bias, targets)
t_loss.backward()
fixtures["siglip_targets"] = {
    "n": n_img, "m": m_txt, "d": dd, "image": flat(t_image), "text": flat(t_text), "targets": flat(targets),
    "logit_scale": float(t_scale), "logit_bias": float(t_bias), "loss": float(t_loss),
    "grad_image": flat(t_image.grad), "grad_logit_scale": float(t_scale.grad), "grad_logit_bias": float(t_bias.grad),
}

# 9. L_con on the quantized path of a SigLIP tower (transformers' SiglipVisionModel, 2 layers, head)
#    that quantizes after layer 1: z_q_hat = z_e + (z_q - z_e).detach() continues through layer 2,
#    the post-layernorm and the head; the gradient reaches layer 1 through the estimator.
from transformers import SiglipVisionConfig, SiglipVisionModel
from safetensors.torch import save_file

torch.manual_seed(99)
vconfig = SiglipVisionConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                             image_size=8, patch_size=4, num_channels=3, vision_use_head=True)
tower = SiglipVisionModel(vconfig).eval()
with torch.no_grad():
    for name, param in tower.named_parameters():
        param.copy_(torch.randn_like(param) * (0.3 if param.dim() > 1 else 0.1) + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
vm = getattr(tower, "vision_model", tower)
pixels_q = torch.randn(5, 3, 8, 8)
codebook_q = torch.randn(16, 8)
hidden = vm.embeddings(pixels_q)
hidden = vm.encoder.layers[0](hidden, None)
hidden = hidden[0] if isinstance(hidden, tuple) else hidden
z_e = hidden
codes_q = torch.cdist(z_e.reshape(-1, 8), codebook_q).argmin(dim=-1)
z_q = codebook_q[codes_q].reshape(z_e.shape)
z_hat = z_e + (z_q - z_e).detach()
rest = vm.encoder.layers[1](z_hat, None)
rest = rest[0] if isinstance(rest, tuple) else rest
pooled = vm.head(vm.post_layernorm(rest))
text_q = torch.randn(4, 8)
q_loss = siglip_loss_targets(pooled, text_q, torch.tensor(math.log(20.0)), torch.tensor(-4.0), targets)
q_loss.backward()
tower_dir = os.path.join(os.path.dirname(OUT), "lcon_tower")
os.makedirs(tower_dir, exist_ok=True)
save_file({k: v.detach().contiguous() for k, v in tower.state_dict().items()}, os.path.join(tower_dir, "model.safetensors"))
with open(os.path.join(tower_dir, "config.json"), "w") as f:
    json.dump(vconfig.to_dict(), f, indent=1, sort_keys=True, default=str)
layer0 = vm.encoder.layers[0]
fixtures["lcon_quantized"] = {
    "pixels": flat(pixels_q), "codebook": flat(codebook_q), "text": flat(text_q), "targets": flat(targets),
    "logit_scale": math.log(20.0), "logit_bias": -4.0, "codes": [int(c) for c in codes_q],
    "pooled": flat(pooled), "loss": float(q_loss),
    "grad_layer0_fc1_weight": flat(layer0.mlp.fc1.weight.grad),
    "grad_patch_weight": flat(vm.embeddings.patch_embedding.weight.grad),
    "grad_layer1_fc1_weight": flat(vm.encoder.layers[1].mlp.fc1.weight.grad),
}

with open(OUT, "w") as f:
    json.dump(fixtures, f)
print("wrote", OUT, os.path.getsize(OUT), "bytes")
