#!/usr/bin/env python3
"""Exports the embedded miniature's data set (docs/experiment.md) to examples/data/digits/.

Source: scikit-learn's copy of the UCI "Optical Recognition of Handwritten Digits" test set
(1797 8x8 images, 16 grey levels), shipped inside scikit-learn (BSD-3-Clause package) and
originally published by the UCI Machine Learning Repository under CC BY 4.0
(https://doi.org/10.24432/C50P49; Alpaydin & Kaynak, 1998).

What it writes (all seeded, byte-for-byte reproducible with the same package versions):
- A fixed stratified split: 1000 train / 797 test images (scikit-learn train_test_split, seed 0).
- Every image upscaled from 8x8 to 16x16 (a patch-2 tower sees 64 visual tokens) (PIL bicubic), 8-bit greyscale PNG, in three domains:
  * general: the upscaled digit as is (white strokes on black, like the source).
  * mild:    contrast lowered to 60 % around mid-grey, light Gaussian blur (sigma 0.4), light sensor
             noise (sigma 12 grey levels). No inversion.
  * strong:  contrast inverted (dark strokes on a light background), Gaussian blur (sigma 0.7),
             sensor noise (sigma 28 grey levels) and a random brightness offset in [-20, 20].
  Noise is drawn from numpy's PCG64 seeded per domain (mild 1, strong 2), in file order.
- JSONL per domain and split (`{domain}-{split}.jsonl`) with two question kinds per image:
  "what digit is this ?" -> "seven", and "is the digit even or odd ?" -> "odd", plus `label`.
- tokenizer.json: a WordLevel tokenizer (Lowercase, Whitespace) over every word of the prompts,
  answers and contrastive texts ("a photo of a seven"), with <pad>, <unk>, <bos>, <eos>.

Usage: .venv-ref/bin/python scripts/export_digits.py
Made with numpy 2.x, scikit-learn, pillow from .venv-ref (versions are recorded in meta.json).
"""
import json
import pathlib

import numpy as np
import PIL
import sklearn
from PIL import Image, ImageFilter
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = pathlib.Path(__file__).resolve().parent.parent / "examples" / "data" / "digits"
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
QUESTIONS = [
    ("what digit is this ?", lambda d: NAMES[d]),
    ("is the digit even or odd ?", lambda d: "even" if d % 2 == 0 else "odd"),
]
SIZE = 16


def upscale(image8: np.ndarray) -> np.ndarray:
    grey = Image.fromarray((image8 * (255.0 / 16.0)).round().astype(np.uint8), mode="L")
    return np.asarray(grey.resize((SIZE, SIZE), Image.BICUBIC), dtype=np.float64)


def blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), mode="L")
    return np.asarray(image.filter(ImageFilter.GaussianBlur(radius=sigma)), dtype=np.float64)


def shift(pixels: np.ndarray, domain: str, rng: np.random.Generator) -> np.ndarray:
    if domain == "general":
        return pixels
    if domain == "mild":
        out = 128 + 0.6 * (pixels - 128)
        out = blur(out, 0.4)
        out = out + rng.normal(0, 12, out.shape)
        return out
    if domain == "strong":
        out = 255 - pixels
        out = blur(out, 0.7)
        out = out + rng.normal(0, 28, out.shape) + rng.uniform(-20, 20)
        return out
    raise ValueError(domain)


def main() -> None:
    digits = load_digits()
    indices = np.arange(len(digits.target))
    train, test = train_test_split(indices, train_size=1000, test_size=797, stratify=digits.target, random_state=0)
    splits = {"train": sorted(train.tolist()), "test": sorted(test.tolist())}
    ROOT.mkdir(parents=True, exist_ok=True)
    words = set()
    for domain, seed in (("general", 0), ("mild", 1), ("strong", 2)):
        rng = np.random.Generator(np.random.PCG64(seed))
        (ROOT / "images" / domain).mkdir(parents=True, exist_ok=True)
        for split in ("train", "test"):
            lines = []
            for index in splits[split]:
                digit = int(digits.target[index])
                pixels = shift(upscale(digits.images[index]), domain, rng)
                name = f"images/{domain}/{index:04d}.png"
                Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), mode="L").save(
                    ROOT / name, optimize=True)
                for prompt, answer in QUESTIONS:
                    lines.append({"image": name, "prompt": prompt, "answer": answer(digit), "label": NAMES[digit]})
                    words.update(prompt.split())
                    words.add(answer(digit))
                words.update(f"a photo of a {NAMES[digit]}".split())
            with open(ROOT / f"{domain}-{split}.jsonl", "w") as handle:
                for line in lines:
                    handle.write(json.dumps(line) + "\n")
    specials = ["<pad>", "<unk>", "<bos>", "<eos>"]
    vocab = {token: i for i, token in enumerate(specials + sorted(words))}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True} for i, t in enumerate(specials)],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
    }
    (ROOT / "tokenizer.json").write_text(json.dumps(tokenizer, indent=1) + "\n")
    meta = {
        "source": "scikit-learn load_digits (UCI Optical Recognition of Handwritten Digits, CC BY 4.0)",
        "script": "scripts/export_digits.py",
        "numpy": np.__version__, "scikit-learn": sklearn.__version__, "pillow": PIL.__version__,
        "image_size": SIZE, "train": len(splits["train"]), "test": len(splits["test"]),
        "domains": ["general", "mild", "strong"], "labels": NAMES,
    }
    (ROOT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
