#!/usr/bin/env python3
"""Writes the bundle directories behind the embedded registry (run by hand; outputs committed).

Until the trained SigLIP-VQ / Llama / GPT-2 miniature lands (issue 6), the embedded registry holds small
but real bundles on real data, served by the built-in `table-encoder` / `table-backend` runtimes:

- examples/bundles/digits-vq: an encoder over scikit-learn's handwritten digits (8x8 images, UCI ML
  hand-written digits, CC BY 4.0, shipped inside scikit-learn). Each image is cut into four 4x4
  quadrants (4 visual tokens of 16 dims); the codebook is k-means (k = 32, seed 0) over the quadrants
  of the first 1500 images. The feature table holds 12 test images (indices 1500..1511).
- examples/bundles/digits-answers: a backend reading the same codebook. Its table maps each stored
  image's code tuple to the majority label of training images with the same tuple ("it is a 7"),
  falling back to the nearest training tuple by Hamming distance.
- examples/bundles/digits-answers-k24: the same backend built for a *different* codebook (k = 24),
  so the compatibility checker has a real mismatched pair to refuse.

Made with numpy, scikit-learn and safetensors from .venv-ref (a reference venv, `.venv-ref`).
Usage: .venv-ref/bin/python scripts/make_embedded_bundles.py
"""
import collections
import hashlib
import json
import pathlib
import struct

import numpy as np
from safetensors.numpy import save_file
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits

ROOT = pathlib.Path(__file__).resolve().parent.parent / "examples" / "bundles"
TRAIN = 1500
SHOWN = range(1500, 1512)


def codebook_hash(values: np.ndarray, metric: str = "l2") -> str:
    k, d = values.shape
    data = b"CRAFT-CODEBOOK\x00" + struct.pack("<IIIQQ", 1, 0 if metric == "l2" else 1, 1, k, d)
    flat = values.astype("<f4").reshape(-1).copy()
    flat[flat == 0] = 0.0  # -0.0 hashes as +0.0
    return "sha256:" + hashlib.sha256(data + flat.tobytes()).hexdigest()


def quadrants(images: np.ndarray) -> np.ndarray:
    """[n, 8, 8] -> [n, 4 tokens, 16] in row-major quadrant order."""
    q = images.reshape(-1, 2, 4, 2, 4).transpose(0, 1, 3, 2, 4)
    return q.reshape(-1, 4, 16).astype(np.float32)


def nearest(tokens: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    d = ((tokens[..., None, :] - codebook) ** 2).sum(-1)
    return d.argmin(-1)  # lowest index wins ties, as Craft's quantizer


def write_backend(name, summary, codebook, train_codes, labels, shown_codes, digest):
    table = collections.defaultdict(collections.Counter)
    for codes, label in zip(train_codes, labels):
        table[tuple(codes)][int(label)] += 1
    answers = {}
    for codes in shown_codes:
        key = tuple(int(c) for c in codes)
        if key in table:
            label = table[key].most_common(1)[0][0]
        else:  # nearest training tuple by Hamming distance, then by count
            best = min(table, key=lambda t: (sum(a != b for a, b in zip(t, key)), -sum(table[t].values())))
            label = table[best].most_common(1)[0][0]
        answers[",".join(str(c) for c in key)] = f"it is a {label}"
    directory = ROOT / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "answers.json").write_text(json.dumps({"answers": answers, "default": "I don't know."},
                                                       indent=2, sort_keys=True) + "\n")
    manifest = {
        "schema": "craft.bundle/v1", "kind": "backend", "name": name, "version": "1.0.0",
        "summary": summary, "domains": ["digits", "demo"], "license": "CC-BY-4.0",
        "runtime": {"id": "table-backend", "version": "1.0.0"},
        "codebook": {"hash": digest, "entries": int(codebook.shape[0]), "dim": 16, "depth": 1, "metric": "l2"},
        "files": [{"path": "answers.json"}],
        "backend": {"context_length": 64},
        "provenance": {"method": "table", "dataset": "sklearn load_digits[0:1500]",
                       "script": "scripts/make_embedded_bundles.py"},
    }
    (directory / "craft.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def main() -> None:
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    tokens = quadrants(images)
    train = tokens[:TRAIN].reshape(-1, 16)
    shown = tokens[list(SHOWN)]

    for k, backend_name, with_encoder in [(32, "digits-answers", True), (24, "digits-answers-k24", False)]:
        codebook = KMeans(n_clusters=k, random_state=0, n_init=4).fit(train).cluster_centers_.astype(np.float32)
        digest = codebook_hash(codebook)
        train_codes = nearest(tokens[:TRAIN], codebook)
        shown_codes = nearest(shown, codebook)
        if with_encoder:
            directory = ROOT / "digits-vq"
            directory.mkdir(parents=True, exist_ok=True)
            save_file({"codebook": codebook}, str(directory / "codebook.safetensors"))
            save_file({"features": shown}, str(directory / "features.safetensors"))
            manifest = {
                "schema": "craft.bundle/v1", "kind": "encoder", "name": "digits-vq", "version": "1.0.0",
                "summary": "Handwritten digits encoder: 8x8 images to 4 quadrant tokens (32-entry codebook)",
                "domains": ["digits", "demo"], "license": "CC-BY-4.0",
                "runtime": {"id": "table-encoder", "version": "1.0.0"},
                "codebook": {"hash": digest, "entries": k, "dim": 16, "depth": 1, "metric": "l2",
                             "tensor": {"file": "codebook.safetensors", "name": "codebook"}},
                "files": [{"path": "codebook.safetensors"}, {"path": "features.safetensors"}],
                "config": {"features": {"file": "features.safetensors", "name": "features"}},
                "encoder": {"image_size": 8, "tokens_per_image": 4},
                "provenance": {"method": "k-means", "dataset": "sklearn load_digits[0:1500]",
                               "images": "sklearn load_digits[1500:1512]", "labels": [int(x) for x in digits.target[list(SHOWN)]],
                               "script": "scripts/make_embedded_bundles.py"},
            }
            (directory / "craft.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        summary = (f"Digit answers read from a {k}-entry codebook" +
                   (" (the digits-vq codebook)" if with_encoder else " (a different codebook: pairs with no encoder here)"))
        write_backend(backend_name, summary, codebook, train_codes, digits.target[:TRAIN], shown_codes, digest)
        accuracy = np.mean([int(json.loads((ROOT / backend_name / "answers.json").read_text())["answers"][
            ",".join(str(c) for c in codes)].split()[-1]) == int(label)
            for codes, label in zip(shown_codes, digits.target[list(SHOWN)])])
        print(backend_name, digest, f"accuracy on the 12 shown images: {accuracy:.2f}")


if __name__ == "__main__":
    main()
