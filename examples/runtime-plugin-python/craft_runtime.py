"""craft.runtime/v1 for Python plugins: message framing, safetensors reading and the serving loop
(docs/runtime-protocol.md). Shared by the example plugins next to this file; numpy only."""
import json
import struct
import sys
from pathlib import Path

try:
    import numpy as np
except ImportError:  # the handshake still works; loading says what is missing
    np = None

PROTOCOL = "craft.runtime/v1"


def require_numpy():
    if np is None:
        raise RuntimeError(f"this plugin needs numpy, which {sys.executable} lacks: {sys.executable} -m pip install numpy")


def read_message(stream):
    """One JSON line and the frames of the tensors it names; None at end of input."""
    line = stream.readline()
    if not line:
        return None
    message = json.loads(line)
    tensors = {}
    for descriptor in message.get("tensors", []):
        (length,) = struct.unpack("<Q", stream.read(8))
        data = stream.read(length)
        dtype = {"float32": "<f4", "int32": "<i4"}[descriptor["dtype"]]
        tensors[descriptor["name"]] = np.frombuffer(data, dtype=dtype).reshape(descriptor["shape"])
    return message, tensors


def write_message(stream, message, tensors=()):
    """One JSON line, then each tensor as a frame (8-byte little-endian length, the values)."""
    frames = []
    descriptors = []
    for name, array in tensors:
        dtype = "float32" if array.dtype.kind == "f" else "int32"
        data = np.ascontiguousarray(array, dtype="<f4" if dtype == "float32" else "<i4").tobytes()
        descriptors.append({"name": name, "dtype": dtype, "shape": list(array.shape)})
        frames.append(struct.pack("<Q", len(data)) + data)
    if descriptors:
        message = dict(message, tensors=descriptors)
    stream.write(json.dumps(message).encode() + b"\n")
    for frame in frames:
        stream.write(frame)
    stream.flush()



def read_safetensors(path):
    data = Path(path).read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {info['dtype']}; this plugin reads F32")
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(info["shape"])
    return tensors




def serve(plugin, version, runtimes, load, handlers):
    """Answers Craft until `shutdown` or the end of input: `hello` from `runtimes`, `load` by
    calling `load(message) -> (model, loaded_reply)`, and any other request by
    `handlers[type](model, message, tensors) -> (reply, tensors)`. Errors go back to Craft as
    `error` messages (and to stderr); the plugin keeps serving."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    model = None
    while True:
        received = read_message(stdin)
        if received is None:
            return  # end of input: Craft is gone
        message, tensors = received
        kind = message.get("type")
        try:
            if kind == "hello":
                write_message(stdout, {"type": "hello", "protocol": PROTOCOL, "plugin": plugin, "version": version, "runtimes": runtimes})
            elif kind == "load":
                model, reply = load(message)
                write_message(stdout, dict(reply, type="loaded"))
            elif kind == "shutdown":
                return
            elif kind in handlers:
                if model is None:
                    raise RuntimeError(f"{kind} before load")
                reply, frames = handlers[kind](model, message, tensors)
                write_message(stdout, reply, frames)
            else:
                write_message(stdout, {"type": "error", "message": f"unknown message {kind!r}"})
        except Exception as error:  # reported to Craft, which names it
            print(f"{plugin}: {type(error).__name__}: {error}", file=sys.stderr)
            write_message(stdout, {"type": "error", "message": f"{type(error).__name__}: {error}"})
