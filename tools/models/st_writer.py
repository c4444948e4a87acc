"""Minimal safetensors writer (the format: 8-byte little-endian header length, JSON header, raw data).

python3-safetensors is not packaged in Debian, so the fixtures are written with this instead. Layout follows the
safetensors spec (huggingface/safetensors README, "Format"): header keys are tensor names with
{"dtype", "shape", "data_offsets": [begin, end]} relative to the start of the data section, plus an optional
"__metadata__" map of strings; the header is padded with spaces to a multiple of 8 bytes, as the reference writer does.
"""
import json
import struct

import numpy as np
import torch

_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64"}


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        # numpy has no bfloat16: reinterpret the 16-bit payload.
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def save_file(tensors: dict, path: str, metadata: dict | None = None) -> None:
    header = {}
    blobs = []
    offset = 0
    # Sorted by name, as safetensors' own writer orders them (it sorts by dtype alignment then name; all ours are
    # byte-aligned so name order is what a reader sees).
    for name in sorted(tensors):
        t = tensors[name]
        data = _tensor_bytes(t)
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata if metadata is not None else {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def load_file(path: str) -> dict:
    """Reader used only to self-check the writer (round trip)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        buf = data[b:e]
        if info["dtype"] == "F32":
            arr = torch.from_numpy(np.frombuffer(buf, dtype="<f4").copy())
        elif info["dtype"] == "BF16":
            arr = torch.from_numpy(np.frombuffer(buf, dtype="<i2").copy()).view(torch.bfloat16)
        elif info["dtype"] == "F16":
            arr = torch.from_numpy(np.frombuffer(buf, dtype="<f2").copy())
        else:
            raise ValueError(info["dtype"])
        out[name] = arr.reshape(info["shape"])
    return out
