"""The numpy GPT-2 of examples/runtime-plugin-python run on its own, in-process: the peer of
`craft-bench plugin`'s eval comparison (docs/benchmarks.md, "Runtime plugins").

Reads the requests Craft wrote (each prompt's segments in craft.runtime/v1 form, with its visual
vectors in a float32 file), loads the bundle the plugin loads, and times `generate` over every
request. Prints one JSON line: seconds per request, and the answers (so Craft can check they agree).

    numpy_gpt2_generate.py --plugin PATH --bundle DIR --requests FILE.json --vectors FILE.f32 --max-tokens N
"""
import argparse
import importlib.machinery
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugin", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--requests", required=True)
    parser.add_argument("--vectors", required=True)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()

    plugin = Path(args.plugin)
    sys.path.insert(0, str(plugin.parent))
    loader = importlib.machinery.SourceFileLoader("numpy_gpt2_plugin", str(plugin))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)

    manifest = json.loads((Path(args.bundle) / "craft.json").read_text())
    model = module.GPT2(args.bundle, manifest)
    requests = json.loads(Path(args.requests).read_text())
    vectors = np.fromfile(args.vectors, dtype="<f4")
    prepared = []
    for request in requests:
        offset, shape = request["offset"], request["shape"]
        count = shape[0] * shape[1]
        prepared.append((request["segments"], {"vectors.0": vectors[offset:offset + count].reshape(shape)}))

    options = {"max_tokens": args.max_tokens, "temperature": 0, "top_k": 0, "seed": 0, "stop": []}
    start = time.perf_counter()
    answers = [model.generate(segments, options, tensors)[0] for segments, tensors in prepared]
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds_per_request": seconds / len(prepared), "answers": answers}))


if __name__ == "__main__":
    main()
