#!/usr/bin/env python3
"""Writes the bundle directories of examples/publish-an-encoder/ (run by hand; outputs committed).

- encoder/: `derm-vq`, a `table-encoder` bundle: an 8x4 L2 codebook and a feature table of 2 "images"
  x 4 tokens x 4 dims (safetensors), with the codebook hash of docs/codebook-hash.md declared.
- backend/: `tiny-answers`, a `table-backend` bundle reading the same codebook, answering from a
  table keyed by each image's codes (computed here with the same nearest-code rule: L2, lowest index
  wins ties).

Made with numpy and safetensors from .venv-ref (safetensors 0.8).
Usage: .venv-ref/bin/python scripts/make_publish_example.py
"""
import hashlib
import json
import pathlib
import struct

import numpy as np
from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent / "examples" / "publish-an-encoder"


def codebook_hash(values: np.ndarray, metric: str = "l2") -> str:
    depth, k, d = values.shape
    data = b"CRAFT-CODEBOOK\x00" + struct.pack("<IIIQQ", 1, 0 if metric == "l2" else 1, depth, k, d)
    flat = values.astype("<f4").reshape(-1).copy()
    flat[flat == 0] = 0.0  # -0.0 hashes as +0.0
    return "sha256:" + hashlib.sha256(data + flat.tobytes()).hexdigest()


def nearest_codes(features: np.ndarray, codebook: np.ndarray) -> list:
    distances = ((features[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
    return [int(np.argmin(row)) for row in distances]  # argmin returns the lowest index on ties


def main() -> None:
    rng = np.random.default_rng(20260226)
    codebook = rng.standard_normal((8, 4)).astype(np.float32)
    features = (codebook[[3, 1, 4, 1, 5, 0, 2, 6]] + 0.05 * rng.standard_normal((8, 4))).astype(np.float32)
    features = features.reshape(2, 4, 4)
    digest = codebook_hash(codebook[None])

    encoder = ROOT / "encoder"
    encoder.mkdir(parents=True, exist_ok=True)
    save_file({"codebook": codebook}, str(encoder / "codebook.safetensors"))
    save_file({"features": features}, str(encoder / "features.safetensors"))
    manifest = {
        "schema": "craft.bundle/v1",
        "kind": "encoder",
        "name": "derm-vq",
        "version": "1.0.0",
        "summary": "Dermatology encoder (example): dermoscopy images to codebook tokens",
        "domains": ["dermatology", "medical"],
        "license": "Apache-2.0",
        "runtime": {"id": "table-encoder", "version": "1.0.0"},
        "codebook": {"hash": digest, "entries": 8, "dim": 4, "depth": 1, "metric": "l2",
                     "tensor": {"file": "codebook.safetensors", "name": "codebook"}},
        "files": [{"path": "codebook.safetensors"}, {"path": "features.safetensors"}],
        "config": {"features": {"file": "features.safetensors", "name": "features"}},
        "encoder": {"image_size": 224, "tokens_per_image": 4},
        "provenance": {"method": "craft", "base": "example-base-vq@1.0.0", "dataset": "example (synthetic)"},
    }
    (encoder / "craft.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    answers = {",".join(str(c) for c in nearest_codes(image, codebook)): text
               for image, text in zip(features, ["benign nevus", "melanoma: refer to a dermatologist"])}
    backend = ROOT / "backend"
    backend.mkdir(parents=True, exist_ok=True)
    (backend / "answers.json").write_text(json.dumps({"answers": answers, "default": "I don't know."},
                                                     indent=2, sort_keys=True) + "\n")
    manifest = {
        "schema": "craft.bundle/v1",
        "kind": "backend",
        "name": "tiny-answers",
        "version": "0.1.0",
        "summary": "Tiny table backend (example) answering from image codes",
        "domains": ["demo"],
        "license": "Apache-2.0",
        "runtime": {"id": "table-backend", "version": "1.0.0"},
        "codebook": {"hash": digest, "entries": 8, "dim": 4, "depth": 1, "metric": "l2"},
        "files": [{"path": "answers.json"}],
        "backend": {"context_length": 64},
    }
    (backend / "craft.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(digest, answers)


if __name__ == "__main__":
    main()
