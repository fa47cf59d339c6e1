"""Reference fixtures for the codebook space (Tests/CraftCoreTests/Fixtures/codebook-*.safetensors).

Run by hand with the reference environment (a venv with torch, transformers, faiss-cpu, vector-quantize-pytorch: see docs/codebook.md):
    .venv-ref/bin/python scripts/codebook_fixtures.py
Writes:
  codebook-faiss.safetensors      faiss IndexFlatL2 / IndexFlatIP top-2 on random codebooks and queries
  codebook-residual.safetensors   residual quantization (depth 3) against a float64 NumPy reference
  codebook-vq.safetensors         vector-quantize-pytorch VectorQuantize straight-through gradient and
                                  commitment loss (rotation_trick off, train() mode, codebook frozen)
  codebook-rvq-commitment.safetensors
                                  residual VQ (depth 4) commitment loss as VILA-U / RQ-VAE compute it:
                                  mean over levels d of mse(z, stopgrad(sum of the first d levels' codes)),
                                  codes from a float64 NumPy greedy search, loss and gradient by torch
                                  autograd (alone: --rvq-commitment)
With --example it writes instead the demo codebook (`make demo`):
  examples/codebooks/tiny-codebook.safetensors   `codebook` [16, 64]: k-means (scikit-learn, k=16,
                                                 seed 0) centroids of the 8x8 handwritten digits that
                                                 ship with scikit-learn (load_digits), pixels / 16
  examples/codebooks/sample-vectors.safetensors  `vectors` [6, 64]: six of those digit images
Every file's metadata names this script and the package versions.
"""
import os

import faiss
import numpy as np
import safetensors
import torch
import vector_quantize_pytorch
from importlib.metadata import version
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "CraftCoreTests", "Fixtures")
META = {
    "script": "scripts/codebook_fixtures.py",
    "versions": f"numpy {np.__version__}, faiss-cpu {version('faiss-cpu')}, torch {torch.__version__}, "
    f"vector-quantize-pytorch {version('vector-quantize-pytorch')}, safetensors {safetensors.__version__}",
}
rng = np.random.default_rng(20260226)
faiss.omp_set_num_threads(1)
torch.set_num_threads(1)


def faiss_fixture():
    # Queries near codes (code + noise) so most rows have a well separated nearest code, plus pure
    # random rows. K = 300 and N = 257 are not multiples of the block sizes the tests use.
    k, d, n = 300, 24, 257
    codebook = rng.standard_normal((k, d)).astype(np.float32)
    near = codebook[rng.integers(0, k, n // 2)] + 0.3 * rng.standard_normal((n // 2, d)).astype(np.float32)
    queries = np.concatenate([near, rng.standard_normal((n - n // 2, d)).astype(np.float32)]).astype(np.float32)
    index = faiss.IndexFlatL2(d)
    index.add(codebook)
    l2_distances, l2_indices = index.search(queries, 2)

    cos_codebook = (rng.standard_normal((k, d)) * rng.uniform(0.5, 3.0, (k, 1))).astype(np.float32)
    cos_queries = (rng.standard_normal((n, d)) * rng.uniform(0.1, 5.0, (n, 1))).astype(np.float32)
    normalised_codes = cos_codebook.copy()
    normalised_queries = cos_queries.copy()
    faiss.normalize_L2(normalised_codes)
    faiss.normalize_L2(normalised_queries)
    ip = faiss.IndexFlatIP(d)
    ip.add(normalised_codes)
    cos_similarity, cos_indices = ip.search(normalised_queries, 2)
    save_file(
        {
            "l2_codebook": codebook,
            "l2_queries": queries,
            "l2_indices": l2_indices.astype(np.int32),
            "l2_distances": l2_distances.astype(np.float32),
            "cos_codebook": cos_codebook,
            "cos_queries": cos_queries,
            "cos_indices": cos_indices.astype(np.int32),
            "cos_similarity": cos_similarity.astype(np.float32),
        },
        os.path.join(OUT, "codebook-faiss.safetensors"),
        metadata=META,
    )


def residual_fixture():
    depth, k, d, n = 3, 64, 16, 100
    codebook = np.stack(
        [rng.standard_normal((k, d)) * (0.5 ** level) for level in range(depth)]).astype(np.float32)
    queries = (codebook[0][rng.integers(0, k, n)] + 0.6 * rng.standard_normal((n, d))).astype(np.float32)
    c64 = codebook.astype(np.float64)
    residual = queries.astype(np.float64)
    quantized = np.zeros_like(residual)
    codes = np.zeros((n, depth), dtype=np.int32)
    gaps = np.full(n, np.inf)
    for level in range(depth):
        dist = (residual ** 2).sum(1, keepdims=True) + (c64[level] ** 2).sum(1)[None] - 2 * residual @ c64[level].T
        order = np.argsort(dist, axis=1, kind="stable")
        best = order[:, 0]
        gaps = np.minimum(gaps, dist[np.arange(n), order[:, 1]] - dist[np.arange(n), best])
        codes[:, level] = best
        quantized += c64[level][best]
        residual -= c64[level][best]
    save_file(
        {
            "codebook": codebook,
            "queries": queries,
            "codes": codes,
            "quantized": quantized.astype(np.float32),
            "residual_norms": np.linalg.norm(queries.astype(np.float64) - quantized, axis=1).astype(np.float32),
            "min_gap": gaps.astype(np.float32),
        },
        os.path.join(OUT, "codebook-residual.safetensors"),
        metadata=META,
    )


def vq_fixture():
    from vector_quantize_pytorch import VectorQuantize

    b, n, d, k = 2, 5, 8, 16
    torch.manual_seed(7)
    vq = VectorQuantize(
        dim=d, codebook_size=k, commitment_weight=1.0, rotation_trick=False, ema_update=False,
        learnable_codebook=False, kmeans_init=False, decay=0.99)
    codebook = torch.randn(k, d)
    with torch.no_grad():
        vq._codebook.embed.copy_(codebook[None])
    vq.train()
    x = (codebook[torch.randint(0, k, (b, n))] + 0.4 * torch.randn(b, n, d)).requires_grad_(True)
    quantize, indices, loss = vq(x)
    upstream = torch.randn(b, n, d)
    (ste_grad,) = torch.autograd.grad((quantize * upstream).sum(), x, retain_graph=True)
    (commit_grad,) = torch.autograd.grad(loss.sum(), x)
    # x + (q - x) rounds, so the straight-through output equals the code vectors only to ~1 ulp.
    assert torch.allclose(quantize.detach(), codebook[indices], atol=1e-6), "VectorQuantize moved the codebook"
    save_file(
        {
            "codebook": codebook.numpy(),
            "features": x.detach().numpy().reshape(b * n, d),
            "codes": indices.numpy().astype(np.int32).reshape(b * n),
            "quantized": quantize.detach().numpy().reshape(b * n, d),
            "upstream": upstream.numpy().reshape(b * n, d),
            "ste_gradient": ste_grad.numpy().reshape(b * n, d),
            "commitment_loss": loss.detach().reshape(1).numpy(),
            "commitment_gradient": commit_grad.numpy().reshape(b * n, d),
        },
        os.path.join(OUT, "codebook-vq.safetensors"),
        metadata=META,
    )


def example_codebook():
    import sklearn
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = (digits.data / 16.0).astype(np.float32)
    kmeans = KMeans(n_clusters=16, n_init=4, random_state=0).fit(pixels)
    out = os.path.join(os.path.dirname(__file__), "..", "examples", "codebooks")
    os.makedirs(out, exist_ok=True)
    meta = dict(META, versions=f"numpy {np.__version__}, scikit-learn {sklearn.__version__}",
                source="k-means (k=16, seed 0) of sklearn.datasets.load_digits pixels / 16")
    save_file({"codebook": kmeans.cluster_centers_.astype(np.float32)},
              os.path.join(out, "tiny-codebook.safetensors"), metadata=meta)
    picks = [0, 1, 2, 3, 10, 42]
    save_file({"vectors": pixels[picks]}, os.path.join(out, "sample-vectors.safetensors"),
              metadata=dict(meta, source=f"load_digits images {picks} (labels {digits.target[picks].tolist()}), pixels / 16"))
    print("wrote", os.path.normpath(out))


def rvq_commitment_fixture():
    local = np.random.default_rng(20261206)  # its own generator: the same file alone or in a full run
    depth, k, d = 4, 32, 8
    codebook = np.stack(
        [local.standard_normal((k, d)) * (0.5 ** level) for level in range(depth)]).astype(np.float32)
    features = (codebook[0][local.integers(0, k, 6)] + 0.5 * local.standard_normal((6, d))).astype(np.float32)
    c64 = codebook.astype(np.float64)
    residual = features.astype(np.float64)
    codes = np.zeros((6, depth), dtype=np.int32)
    for level in range(depth):
        dist = (residual ** 2).sum(1, keepdims=True) + (c64[level] ** 2).sum(1)[None] - 2 * residual @ c64[level].T
        best = np.argsort(dist, axis=1, kind="stable")[:, 0]
        codes[:, level] = best
        residual -= c64[level][best]
    z = torch.tensor(features.reshape(2, 3, d), requires_grad=True)
    table = torch.tensor(codebook)
    partial = torch.zeros(6, d)
    losses = []
    for level in range(depth):  # rq-vae-transformer's compute_commitment_loss over the cumulative sums
        partial = partial + table[level][torch.tensor(codes[:, level], dtype=torch.long)]
        losses.append((z - partial.reshape(2, 3, d).detach()).pow(2.0).mean())
    loss = torch.mean(torch.stack(losses))
    (grad,) = torch.autograd.grad(loss, z)
    save_file(
        {"codebook": codebook, "features": features.reshape(2, 3, d), "codes": codes.reshape(2, 3, depth),
         "commitment_loss": np.array([loss.item()], dtype=np.float32),
         "commitment_gradient": grad.numpy().astype(np.float32)},
        os.path.join(OUT, "codebook-rvq-commitment.safetensors"),
        metadata=META,
    )


if __name__ == "__main__":
    import sys

    if "--rvq-commitment" in sys.argv:
        rvq_commitment_fixture()
        sys.exit(0)
    if "--example" in sys.argv:
        example_codebook()
        sys.exit(0)
    faiss_fixture()
    residual_fixture()
    vq_fixture()
    rvq_commitment_fixture()
    print("wrote fixtures to", os.path.normpath(OUT))
