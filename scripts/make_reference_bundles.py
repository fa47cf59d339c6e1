#!/usr/bin/env python3
"""Write two tiny .craft bundles with Python only (tarfile, gzip, safetensors, numpy), following
docs/bundle-format.md independently of the Swift packer, and check bundle layouts.

    .venv-ref/bin/python scripts/make_reference_bundles.py            # writes the fixtures
    .venv-ref/bin/python scripts/make_reference_bundles.py --check F  # checks F's layout

Outputs (committed): Tests/CraftBundlesTests/Fixtures/py-encoder-1.0.0.craft (runtime table-encoder)
and py-backend-1.0.0.craft (runtime table-backend), reading the same 8x4 L2 codebook. The codebook
hash is computed here from docs/codebook-hash.md, so the Swift tests that verify, pair and run these
bundles check the Swift reader, the hash and the table runtimes against a second implementation.
`--check` verifies a bundle made by anyone (e.g. `craft-registry pack`): gzip header (MTIME 0, no
name), craft.json first, sorted entries, mtime/uid/gid 0, empty owner names, modes 0644/0755,
only regular files and directories, and every size and sha256 against the manifest.
Made with numpy 2.4.6, safetensors 0.8.0, Python 3.11.7 tarfile/gzip (.venv-ref).
"""
import gzip
import hashlib
import io
import json
import pathlib
import struct
import sys
import tarfile

import numpy as np
from safetensors.numpy import save

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "CraftBundlesTests" / "Fixtures"


def codebook_hash(values, metric="l2"):
    """docs/codebook-hash.md, written from the spec."""
    values = np.asarray(values, dtype=np.float32)
    depth, k, d = (1, *values.shape) if values.ndim == 2 else values.shape
    data = b"CRAFT-CODEBOOK\x00" + struct.pack("<IIIQQ", 1, {"l2": 0, "cosine": 1}[metric], depth, k, d)
    clean = np.where(values == 0, np.float32(0), values).astype("<f4")  # -0.0 -> +0.0
    return "sha256:" + hashlib.sha256(data + clean.tobytes()).hexdigest()


def pack(manifest, files, out):
    """Pack like docs/bundle-format.md: craft.json first, then parents and files sorted by UTF-8 bytes."""
    files = {path: bytes(data) for path, data in files.items()}
    manifest["files"] = [
        {"path": p, "size": len(files[p]), "sha256": hashlib.sha256(files[p]).hexdigest()}
        for p in sorted(files, key=lambda p: p.encode())
    ]
    manifest_bytes = (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()
    directories = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, data=None):
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.mode, info.size = 0o644, len(data)
                tar.addfile(info, io.BytesIO(data))
        add("craft.json", manifest_bytes)
        for name in sorted(directories | set(files), key=lambda p: p.encode()):
            add(name, files.get(name))
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    out.write_bytes(compressed.getvalue())
    return "sha256:" + hashlib.sha256(compressed.getvalue()).hexdigest()


def check(path):
    """Check a bundle's layout against docs/bundle-format.md; returns a list of problems."""
    data = pathlib.Path(path).read_bytes()
    problems = []
    if data[:2] != b"\x1f\x8b":
        return ["not gzip"]
    if data[3] & 0x08:
        problems.append("gzip header stores a file name")
    if data[4:8] != b"\0\0\0\0":
        problems.append(f"gzip MTIME is {struct.unpack('<I', data[4:8])[0]}, expected 0")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tar:
        members = tar.getmembers()
        if not members or members[0].name != "craft.json" or not members[0].isfile():
            return problems + ["craft.json is not the first entry"]
        manifest = json.loads(tar.extractfile(members[0]).read())
        rest = [m.name for m in members[1:]]
        if rest != sorted(rest, key=lambda p: p.encode()):
            problems.append(f"entries not sorted: {rest}")
        listed = {f["path"]: f for f in manifest["files"]}
        for m in members:
            if m.mtime != 0 or m.uid != 0 or m.gid != 0 or m.uname or m.gname:
                problems.append(f"{m.name}: mtime/uid/gid/uname/gname = {m.mtime}/{m.uid}/{m.gid}/{m.uname!r}/{m.gname!r}")
            if not (m.isfile() or m.isdir()):
                problems.append(f"{m.name}: not a regular file or directory")
            if m.mode != (0o755 if m.isdir() else 0o644):
                problems.append(f"{m.name}: mode {oct(m.mode)}")
            if m.isfile() and m.name != "craft.json":
                entry = listed.pop(m.name, None)
                body = tar.extractfile(m).read()
                if entry is None:
                    problems.append(f"{m.name}: not listed")
                elif entry["size"] != len(body) or entry["sha256"] != hashlib.sha256(body).hexdigest():
                    problems.append(f"{m.name}: size or sha256 differs from the manifest")
        problems += [f"{p}: listed but missing" for p in listed]
    return problems


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        problems = check(sys.argv[2])
        print("\n".join(problems) if problems else f"ok: {sys.argv[2]} follows docs/bundle-format.md")
        return 1 if problems else 0

    k, d, tokens = 8, 4, 4
    codebook = (2 * np.random.default_rng(20260226).standard_normal((k, d))).astype(np.float32)
    nearest = ((codebook[:, None] - codebook[None]) ** 2).sum(-1) + np.eye(k) * 1e9
    assert nearest.min() > 0.5, "codebook entries must be well separated"  # offsets below are 0.01
    codes = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [7, 7, 0, 0]])
    features = (codebook[codes] + np.float32(0.01) * np.arange(d, dtype=np.float32)).astype(np.float32)
    hash_ = codebook_hash(codebook)
    encoder = {
        "schema": "craft.bundle/v1", "kind": "encoder", "name": "py-encoder", "version": "1.0.0",
        "summary": "Reference table encoder written by scripts/make_reference_bundles.py", "domains": ["testing"],
        "license": "MIT", "runtime": {"id": "table-encoder", "version": "1.0.0"},
        "codebook": {"hash": hash_, "entries": k, "dim": d, "depth": 1, "metric": "l2",
                     "tensor": {"file": "weights/codebook.safetensors", "name": "codebook"}},
        "config": {"features": {"file": "features.safetensors", "name": "features"}},
        "encoder": {"image_size": 16, "tokens_per_image": tokens},
        "provenance": {"method": "reference fixture"}, "requires": {"craft": ">=0.1.0 <1.0.0"},
        "x-written-by": "python",
    }
    encoder_digest = pack(encoder, {
        "weights/codebook.safetensors": save({"codebook": codebook}),
        "features.safetensors": save({"features": features}),
    }, FIXTURES / "py-encoder-1.0.0.craft")
    answers = {",".join(map(str, row)): text for row, text in zip(codes.tolist(), ["ascending", "descending", "mixed"])}
    backend = {
        "schema": "craft.bundle/v1", "kind": "backend", "name": "py-backend", "version": "1.0.0",
        "summary": "Reference table backend written by scripts/make_reference_bundles.py", "license": "MIT",
        "runtime": {"id": "table-backend", "version": "1.0.0"},
        "codebook": {"hash": hash_, "entries": k, "dim": d, "depth": 1, "metric": "l2"},
        "backend": {"context_length": 32},
    }
    backend_digest = pack(backend, {
        "answers.json": (json.dumps({"answers": answers, "default": "unknown"}, sort_keys=True) + "\n").encode(),
    }, FIXTURES / "py-backend-1.0.0.craft")
    for name in ["py-encoder-1.0.0.craft", "py-backend-1.0.0.craft"]:
        assert not check(FIXTURES / name), check(FIXTURES / name)
    print("codebook hash", hash_)
    print("py-encoder-1.0.0.craft", encoder_digest)
    print("py-backend-1.0.0.craft", backend_digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
