#!/usr/bin/env python3
"""Reference fixtures for the SafeTensors module (Tests/SafeTensorsTests/Fixtures), made with the
original `safetensors` package, and verification of the file the Swift writer produced.

Run by hand from the repository root (never by `make test`):

    .venv-ref/bin/python scripts/safetensors_fixtures.py          # write fixtures, then verify
    .venv-ref/bin/python scripts/safetensors_fixtures.py --verify # only verify swift-written

Writes:
  python-dtypes.safetensors   every dtype (F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL) with
                              edge values (F16/BF16 subnormals, +-inf, NaN, -0, extremes), metadata
  python-f32.safetensors      F32 tensors only, one metadata key: Swift must write it byte for byte
  sharded/                    a 2-shard checkpoint with model.safetensors.index.json (HF layout)
  expected.json               expected shapes, dtypes and values (Float32 bit patterns; integers as
                              decimal strings) plus the inputs the Swift writer test uses

swift-written.safetensors is produced by the Swift test "Swift writer output matches the committed
swift-written.safetensors" from the `swift_written_inputs` in expected.json. To regenerate it after
changing those inputs or the writer, run (from the repository root):

    SAFETENSORS_REGENERATE_FIXTURES=1 swift test --filter SafeTensorsTests.PythonFixtureTests

then run this script with --verify: it loads the file with the Python package and checks every
value against numpy's float16 and torch's bfloat16 rounding of the same inputs.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
import safetensors
import torch
from safetensors.numpy import save_file as np_save_file
from safetensors.torch import load_file as torch_load_file
from safetensors.torch import save_file as torch_save_file

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "SafeTensorsTests" / "Fixtures"
VERSIONS = {
    "safetensors": safetensors.__version__,
    "numpy": np.__version__,
    "torch": torch.__version__,
    "python": sys.version.split()[0],
}
GENERATOR = "scripts/safetensors_fixtures.py"
PRODUCER = f"{GENERATOR} (safetensors {safetensors.__version__}, numpy {np.__version__}, torch {torch.__version__})"


def float_bits(tensor: torch.Tensor) -> list[int]:
    """Float32 bit patterns of the tensor's values converted to float32, row-major."""
    values = tensor.detach().to(torch.float32).contiguous().reshape(-1).numpy()
    return [int(b) for b in values.view(np.uint32)]


def describe(tensor: torch.Tensor, dtype: str) -> dict:
    entry = {"dtype": dtype, "shape": list(tensor.shape)}
    if tensor.dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        entry["float_bits"] = float_bits(tensor)
    else:
        entry["ints"] = [str(int(v)) for v in tensor.reshape(-1).tolist()]
    return entry


DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint64: "U64", torch.uint32: "U32", torch.uint16: "U16", torch.uint8: "U8", torch.bool: "BOOL",
}


def dtypes_file(expected: dict) -> None:
    inf, nan = float("inf"), float("nan")
    f16_edges = [0.0, -0.0, 1.0, -2.5, 65504.0, -65504.0, 2.0**-14, 2.0**-24, -(2.0**-24),
                 1023 * 2.0**-24, 2.0**-14 - 2.0**-24, inf, -inf, nan, 0.333251953125, 3.140625]
    bf16_edges = [0.0, -0.0, 1.0, -2.5, 3.3895313892515355e38, 2.0**-126, 2.0**-133, -(2.0**-133),
                  9.183549615799121e-41, inf, -inf, nan, 0.333984375, 3.140625]
    generator = torch.Generator().manual_seed(7)
    tensors = {
        "float64.edges": torch.tensor([0.1, -1e300, 1e-300, 2.0**-1074, inf, -inf, 1.5], dtype=torch.float64),
        "float32.matrix": torch.randn(3, 4, generator=generator),
        "float32.scalar": torch.tensor(-7.25),
        "float32.empty": torch.zeros(0, 3),
        "float16.edges": torch.tensor(f16_edges, dtype=torch.float16).reshape(4, 4),
        "bfloat16.edges": torch.tensor(bf16_edges, dtype=torch.bfloat16).reshape(2, 7),
        "int64.values": torch.tensor([0, -1, 2**63 - 1, -(2**63), 123456789012], dtype=torch.int64),
        "int32.values": torch.tensor([[0, -1], [2**31 - 1, -(2**31)]], dtype=torch.int32),
        "int16.values": torch.tensor([-32768, 32767, 5], dtype=torch.int16),
        "int8.values": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "uint64.values": torch.tensor([0, 2**40 + 3], dtype=torch.uint64),
        "uint32.values": torch.tensor([0, 2**32 - 1], dtype=torch.uint32),
        "uint16.values": torch.tensor([0, 65535], dtype=torch.uint16),
        "uint8.values": torch.tensor([0, 1, 127, 128, 255], dtype=torch.uint8),
        "bool.mask": torch.tensor([[True, False, True], [False, False, True]]),
    }
    metadata = {"format": "pt", "producer": PRODUCER, "unicode": "é ☃ \"q\""}
    torch_save_file(tensors, str(FIXTURES / "python-dtypes.safetensors"), metadata=metadata)
    expected["dtypes_file"] = {
        "metadata": metadata,
        "tensors": {name: describe(t, DTYPE_NAMES[t.dtype]) for name, t in tensors.items()},
    }


def f32_file(expected: dict) -> None:
    rng = np.random.default_rng(11)
    arrays = {
        "b.weight": rng.standard_normal((3, 5)).astype(np.float32),
        "a.bias": rng.standard_normal(5).astype(np.float32),
        "A.upper": np.array([1.0, -0.0, np.inf], dtype=np.float32),
        "layers.10.w": np.arange(6, dtype=np.float32).reshape(2, 3),
        "layers.2.w": np.array(3.5, dtype=np.float32),
        "zero.sized": np.zeros((2, 0), dtype=np.float32),
        "naïve.ünïcode": np.array([[1.25]], dtype=np.float32),
        "escapes \"q\"\t/\\\x01\x7f": np.array([2.0], dtype=np.float32),  # serde_json escaping
    }
    metadata = {"producer": PRODUCER}  # one key: with several the package's key order is random
    np_save_file(arrays, str(FIXTURES / "python-f32.safetensors"), metadata=metadata)
    expected["f32_file"] = {
        "metadata": metadata,
        "tensors": {name: describe(torch.from_numpy(a), "F32") for name, a in arrays.items()},
    }


def sharded(expected: dict) -> None:
    directory = FIXTURES / "sharded"
    directory.mkdir(exist_ok=True)
    generator = torch.Generator().manual_seed(3)
    shards = {
        "model-00001-of-00002.safetensors": {
            "embed.weight": torch.randn(4, 3, generator=generator),
            "layers.0.weight": torch.randn(3, 3, generator=generator).to(torch.float16),
        },
        "model-00002-of-00002.safetensors": {
            "layers.1.weight": torch.randn(3, 3, generator=generator).to(torch.bfloat16),
            "position_ids": torch.arange(5, dtype=torch.int64),
        },
    }
    weight_map, total = {}, 0
    described = {}
    for shard, tensors in shards.items():
        torch_save_file(tensors, str(directory / shard), metadata={"format": "pt", "producer": PRODUCER})
        for name, tensor in tensors.items():
            weight_map[name] = shard
            total += tensor.numel() * tensor.element_size()
            described[name] = describe(tensor, DTYPE_NAMES[tensor.dtype])
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    expected["sharded"] = {"total_size": total, "weight_map": weight_map, "tensors": described}


def swift_written_inputs(expected: dict) -> None:
    """Inputs of the Swift writer test: random floats across F16/BF16 ranges plus rounding edges."""
    rng = np.random.default_rng(5)
    scales = np.float32(2.0) ** rng.integers(-30, 20, size=160).astype(np.float32)
    randoms = (rng.standard_normal(160).astype(np.float32) * scales).astype(np.float32)
    edges = np.array([
        0.0, -0.0, 1.0, 65504.0, 65519.99, 65520.0, 1e6, -1e6, 2.0**-24, 2.0**-25, 2.0**-25 * 1.0001,
        3 * 2.0**-26, 2.0**-14, 1 + 2.0**-11, 1 + 3 * 2.0**-11, 1 + 2.0**-8, 1 + 3 * 2.0**-8,
        3.4e38, -3.4e38, 1e-40, np.inf, -np.inf, np.nan,
    ], dtype=np.float32)
    values = np.concatenate([edges, randoms]).astype(np.float32)
    bits = [int(b) for b in values.view(np.uint32)]
    expected["swift_written_inputs"] = {
        "metadata": {"format": "pt", "writer": "Craft SafeTensorsWriter", "escapes": "tab\t \"q\" back\\slash é"},
        "float_bits": bits,
        "ints64": [str(v) for v in [0, -1, 2**63 - 1, -(2**63), 42]],
        "ints32": [str(v) for v in [0, -1, 2**31 - 1, -(2**31)]],
        "bytes_u8": [0, 1, 128, 255],
        "bytes_bool": [1, 0, 0, 1],
    }


def verify_swift_written(expected: dict) -> None:
    path = FIXTURES / "swift-written.safetensors"
    if not path.exists():
        print(f"{path} does not exist yet: run the Swift regeneration command in this script's docstring")
        return
    inputs = expected["swift_written_inputs"]
    values = np.array(inputs["float_bits"], dtype=np.uint32).view(np.float32)
    count = len(values)
    loaded = torch_load_file(str(path))
    with safetensors.safe_open(str(path), framework="np") as handle:
        metadata = handle.metadata()
    assert metadata == inputs["metadata"], (metadata, inputs["metadata"])

    def same_bits(actual: np.ndarray, wanted: np.ndarray, what: str) -> None:
        assert actual.dtype == wanted.dtype and actual.shape == wanted.shape, (what, actual.dtype, actual.shape)
        a = actual.view(np.uint8).reshape(-1)
        b = wanted.view(np.uint8).reshape(-1)
        if not np.array_equal(a, b):
            mismatch = np.nonzero(actual.reshape(-1).view(f"u{actual.itemsize}") != wanted.reshape(-1).view(f"u{wanted.itemsize}"))[0]
            raise AssertionError(f"{what}: {len(mismatch)} elements differ, first at {mismatch[:5]}")

    same_bits(loaded["values.f32"].numpy(), values, "F32")
    with np.errstate(over="ignore"):  # values above 65504 must become infinity, as here
        f16 = values.astype(np.float16)
    same_bits(loaded["values.f16"].numpy(), f16, "F16 vs numpy astype(float16)")
    bf16 = torch.from_numpy(values.copy()).to(torch.bfloat16)
    # torch's vectorised float->bfloat16 kernel turns NaN into 0xFFFF while its scalar c10::BFloat16
    # gives 0x7FC0 (what Swift writes): compare NaN positions by NaN-ness, everything else bit for bit.
    ours = loaded["values.bf16"]
    nan = torch.isnan(bf16)
    assert torch.equal(torch.isnan(ours), nan), "BF16 NaN positions"
    assert torch.equal(ours[~nan].view(torch.int16), bf16[~nan].view(torch.int16)), "BF16 vs torch .to(bfloat16)"
    assert bool((ours[nan].view(torch.int16) == 0x7FC0).all()), "BF16 NaN written as 0x7FC0"
    same_bits(loaded["values.f64"].numpy(), values.astype(np.float64), "F64")
    assert loaded["ints.i64"].tolist() == [int(v) for v in inputs["ints64"]]
    assert loaded["ints.i32"].tolist() == [[int(v) for v in inputs["ints32"][:2]], [int(v) for v in inputs["ints32"][2:]]]
    assert loaded["bytes.u8"].tolist() == inputs["bytes_u8"]
    assert loaded["bytes.bool"].tolist() == [bool(v) for v in inputs["bytes_bool"]]
    assert loaded["scalar"].shape == () and float(loaded["scalar"]) == 2.5
    assert tuple(loaded["empty"].shape) == (0, 2)
    print(f"verified {path.relative_to(ROOT)} with safetensors {safetensors.__version__}: "
          f"{len(loaded)} tensors, F16/BF16 rounding identical to numpy/torch for {count} values")


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    if "--verify" not in sys.argv:
        expected = {"generator": GENERATOR, "versions": VERSIONS}
        dtypes_file(expected)
        f32_file(expected)
        sharded(expected)
        swift_written_inputs(expected)
        (FIXTURES / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote fixtures to {FIXTURES.relative_to(ROOT)} with {VERSIONS}")
    expected = json.loads((FIXTURES / "expected.json").read_text())
    verify_swift_written(expected)


if __name__ == "__main__":
    main()
