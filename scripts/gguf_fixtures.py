#!/usr/bin/env python3
"""GGUF fixtures for the GGUF module, written with the `gguf` Python package (llama.cpp's gguf-py).

Writes Tests/GGUFTests/Fixtures/types.gguf: metadata of every GGUF value type (integers of each
width, floats, bool, strings, arrays of numbers, strings and arrays) and one tensor per supported
type (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K), shaped like weight matrices. The quantized
tensors hold random block bytes (with finite scale fields), so dequantization is checked on every
bit pattern of the quantized values rather than on what a quantizer happens to produce. Beside it,
types.expected.json holds the metadata as JSON and each tensor dequantized by
`gguf.quants.dequantize` (the reference), as float32 bit patterns.

Run by hand (make test never runs Python):
    .venv-ref/bin/python scripts/gguf_fixtures.py
"""
import json
import pathlib

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/GGUFTests/Fixtures"
rng = np.random.default_rng(7)


def finite_half_bytes(count, scale):
    values = (rng.standard_normal(count) * scale).astype(np.float16)
    return values.view(np.uint8)


def random_blocks(qtype, rows, columns):
    block, size = GGML_QUANT_SIZES[qtype]
    assert columns % block == 0
    blocks = rows * columns // block
    data = rng.integers(0, 256, size=(blocks, size), dtype=np.uint8)
    # The f16 scale fields: finite values of a realistic size.
    if qtype in (T.Q8_0, T.Q4_0):
        data[:, 0:2] = finite_half_bytes(blocks, 0.02).reshape(blocks, 2)
    elif qtype in (T.Q4_K, T.Q5_K):
        data[:, 0:2] = finite_half_bytes(blocks, 0.01).reshape(blocks, 2)
        data[:, 2:4] = finite_half_bytes(blocks, 0.01).reshape(blocks, 2)
    elif qtype == T.Q6_K:
        data[:, size - 2:size] = finite_half_bytes(blocks, 0.01).reshape(blocks, 2)
    return data.reshape(rows, columns // block * size)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "types.gguf"
    writer = gguf.GGUFWriter(str(path), arch="llama")
    metadata = {}

    def add(key, value, kind):
        getattr(writer, "add_" + kind)(key, value)
        metadata[key] = value

    add("craft.u8", 200, "uint8")
    add("craft.i8", -100, "int8")
    add("craft.u16", 60000, "uint16")
    add("craft.i16", -30000, "int16")
    add("craft.u32", 4000000000, "uint32")
    add("craft.i32", -2000000000, "int32")
    add("craft.u64", 18000000000000000000, "uint64")
    add("craft.i64", -9000000000000000000, "int64")
    add("craft.f32", 0.15625, "float32")
    add("craft.f64", 2.718281828459045, "float64")
    add("craft.bool", True, "bool")
    add("craft.string", "héllo, gguf ✓", "string")
    writer.add_array("craft.ints", [1, -2, 3])
    metadata["craft.ints"] = [1, -2, 3]
    writer.add_array("craft.strings", ["a", "", "ünï"])
    metadata["craft.strings"] = ["a", "", "ünï"]
    writer.add_array("craft.floats", [0.5, -1.25])
    metadata["craft.floats"] = [0.5, -1.25]
    writer.add_array("craft.nested", [[1, 2], [3]])
    metadata["craft.nested"] = [[1, 2], [3]]

    tensors = {}
    rows, columns = 3, 512
    f32 = rng.standard_normal((rows, 64)).astype(np.float32)
    writer.add_tensor("t.f32", f32)
    tensors["t.f32"] = ("F32", f32)
    f16 = rng.standard_normal((rows, 64)).astype(np.float16)
    writer.add_tensor("t.f16", f16)
    tensors["t.f16"] = ("F16", f16.astype(np.float32))
    bf16_bits = rng.integers(0, 65536, size=(rows, 64), dtype=np.uint16)
    bf16_bits[(bf16_bits & 0x7F80) == 0x7F80] &= 0xBFFF  # no infinities or NaNs
    writer.add_tensor("t.bf16", bf16_bits.view(np.uint8).reshape(rows, 128), raw_dtype=T.BF16)
    tensors["t.bf16"] = ("BF16", gguf.quants.dequantize(bf16_bits.view(np.uint8).reshape(rows, 128), T.BF16))
    for name, qtype in [("Q8_0", T.Q8_0), ("Q4_0", T.Q4_0), ("Q4_K", T.Q4_K), ("Q5_K", T.Q5_K), ("Q6_K", T.Q6_K)]:
        raw = random_blocks(qtype, rows, columns)
        writer.add_tensor("t." + name.lower(), raw, raw_dtype=qtype)
        tensors["t." + name.lower()] = (name, gguf.quants.dequantize(raw, qtype))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    expected = {
        "metadata": metadata,
        "tensors": {
            name: {"type": kind, "shape": list(values.shape),
                   "bits": [int(b) for b in np.asarray(values, dtype=np.float32).reshape(-1).view(np.uint32)]}
            for name, (kind, values) in tensors.items()
        },
    }
    (OUT / "types.expected.json").write_text(json.dumps(expected, ensure_ascii=False))
    print(f"wrote {path} ({path.stat().st_size} bytes) and types.expected.json")


if __name__ == "__main__":
    main()
