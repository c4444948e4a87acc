#!/usr/bin/python3
"""Reference fixtures for MedVL.Formats (safetensors + .npy/.npz).

Run with Debian's interpreter: /usr/bin/python3 tools/formats/make_format_fixtures.py
Writes tests/fixtures/formats/. CI never runs this; the outputs are committed.

safetensors: python3-safetensors is not packaged in Debian, so this is a small independent writer written from
the spec (https://huggingface.co/docs/safetensors/ and huggingface/safetensors safetensors/src/tensor.rs `prepare`):
u64 LE header size, compact JSON header with __metadata__ first, tensors sorted by descending dtype alignment then
name, header padded with spaces to a multiple of 8. bf16 bytes come from torch. Expected values are written as
JSON (decimal floats) so the C# tests do not depend on any MedVL reader to know the truth.
.npy: written by numpy itself (np.save / np.lib.format.write_array).
"""
import json, os, struct
import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "formats")
os.makedirs(OUT, exist_ok=True)

# Position in the reference Dtype enum (increasing alignment).
RANK = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
        "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]


def st_write(path, tensors, metadata=None, sort=True):
    """tensors: list of (name, dtype_str, shape, raw_bytes)."""
    items = list(tensors)
    if sort:
        items.sort(key=lambda t: t[0].encode("utf-8"))
        items.sort(key=lambda t: RANK.index(t[1]), reverse=True)  # stable: name order kept within a dtype
    parts = []
    if metadata:
        parts.append('"__metadata__":' + json.dumps(dict(sorted(metadata.items())), separators=(",", ":"), ensure_ascii=False))
    off = 0
    for name, dt, shape, raw in items:
        parts.append(json.dumps(name, ensure_ascii=False) + ':{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}'
                     % (dt, ",".join(str(d) for d in shape), off, off + len(raw)))
        off += len(raw)
    header = ("{" + ",".join(parts) + "}").encode("utf-8")
    header += b" " * ((8 - len(header) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for _, _, _, raw in items:
            f.write(raw)


def np_entry(name, arr, dt):
    arr = arr.copy(order="C")  # (ascontiguousarray would turn a 0-d array into 1-d)
    return (name, dt, list(arr.shape), arr.astype(arr.dtype.newbyteorder("<")).tobytes())


rng = np.random.default_rng(1234)
expected = {}


def jf(v):
    """JSON has no NaN/Infinity: write those as strings the C# side parses."""
    v = float(v)
    return v if np.isfinite(v) else ("NaN" if np.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))


def remember(file, name, dt, shape, values):
    expected.setdefault(file, {})[name] = {"dtype": dt, "shape": list(shape),
                                           "values": [jf(v) for v in np.asarray(values, dtype=np.float64).ravel()]}


# --- st_basic: every MedVL dtype, scalar, empty, metadata, a non-ASCII name -------------------------------
basic = []
def add(name, arr, dt, values=None):
    basic.append(np_entry(name, arr, dt))
    remember("st_basic", name, dt, arr.shape, arr if values is None else values)

add("model.embed.weight", rng.standard_normal((3, 5)).astype(np.float32), "F32")
add("f16", rng.standard_normal((2, 7)).astype(np.float16), "F16")
add("f64", rng.standard_normal((4,)).astype(np.float64), "F64")
add("i64", np.array([[0, -1, 2**40], [7, -(2**35), 9]], dtype=np.int64), "I64")
add("i32", np.array([1, -2, 3, 2**31 - 1], dtype=np.int32), "I32")
add("i16", np.array([-32768, 5, 32767], dtype=np.int16), "I16")
add("u16", np.array([0, 65535, 12], dtype=np.uint16), "U16")
add("u8", np.array([[0, 255], [17, 3]], dtype=np.uint8), "U8")
add("i8", np.array([-128, 127, 0, -1, 5], dtype=np.int8), "I8")
add("mask", np.array([True, False, True], dtype=np.bool_), "BOOL")
add("scalar", np.array(2.5, dtype=np.float32), "F32")
add("empty", np.zeros((0, 4), dtype=np.float32), "F32")
add("zero_dim", np.zeros((2, 0, 3), dtype=np.float16), "F16")
add("naïve.τ", np.array([1.0, -2.0], dtype=np.float32), "F32")
bf = torch.randn(4, 3, generator=torch.Generator().manual_seed(7)).to(torch.bfloat16)
basic.append(("bf16", "BF16", [4, 3], bf.view(torch.int16).numpy().astype("<i2").tobytes()))
remember("st_basic", "bf16", "BF16", (4, 3), bf.float().numpy())
# torch float8 is not in torch 1.13; these bytes are decoded by the formula of the OCP FP8 spec below.
f8 = np.array([0x00, 0x01, 0x07, 0x08, 0x38, 0x3C, 0x7E, 0x7F, 0x80, 0xB8, 0xFE, 0xC1], dtype=np.uint8)
def e4m3(b):
    s, e, m = b >> 7, (b >> 3) & 15, b & 7
    if e == 15 and m == 7: return float("nan")
    v = (m / 8) * 2.0 ** -6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
    return -v if s else v
def e5m2(b):
    s, e, m = b >> 7, (b >> 2) & 31, b & 3
    if e == 31: return float("nan") if m else (-np.inf if s else np.inf)
    v = (m / 4) * 2.0 ** -14 if e == 0 else (1 + m / 4) * 2.0 ** (e - 15)
    return -v if s else v
f8b = np.array([0x00, 0x01, 0x03, 0x04, 0x3C, 0x7B, 0x7C, 0x7D, 0x80, 0xBC, 0xFC, 0x45], dtype=np.uint8)
basic.append(("f8_e4m3", "F8_E4M3", [12], f8.tobytes()))
remember("st_basic", "f8_e4m3", "F8_E4M3", (12,), [e4m3(int(b)) for b in f8])
basic.append(("f8_e5m2", "F8_E5M2", [12], f8b.tobytes()))
remember("st_basic", "f8_e5m2", "F8_E5M2", (12,), [e5m2(int(b)) for b in f8b])
st_write(os.path.join(OUT, "st_basic.safetensors"), basic, metadata={"format": "pt", "note": "MedVL \"fixture\"\n"})

# --- st_unaligned: written in the given order so the F32 tensor starts at byte offset 3 --------------------
ua = [np_entry("odd", np.array([1, 2, 3], dtype=np.uint8), "U8"),
      np_entry("w", np.arange(6, dtype=np.float32).reshape(2, 3) / 4, "F32"),
      np_entry("h", np.array([0.5, -1.25, 3.0], dtype=np.float16), "F16")]
remember("st_unaligned", "odd", "U8", (3,), [1, 2, 3])
remember("st_unaligned", "w", "F32", (2, 3), np.arange(6, dtype=np.float32) / 4)
remember("st_unaligned", "h", "F16", (3,), [0.5, -1.25, 3.0])
st_write(os.path.join(OUT, "st_unaligned.safetensors"), ua, sort=False)

# --- sharded: two shards + index (weight_map) ------------------------------------------------------------
sh = os.path.join(OUT, "sharded")
os.makedirs(sh, exist_ok=True)
a = rng.standard_normal((2, 2)).astype(np.float32); b = rng.standard_normal((3,)).astype(np.float32)
c = rng.standard_normal((1, 4)).astype(np.float16)
st_write(os.path.join(sh, "model-00001-of-00002.safetensors"), [np_entry("layers.0.w", a, "F32"), np_entry("layers.0.b", b, "F32")], {"format": "pt"})
st_write(os.path.join(sh, "model-00002-of-00002.safetensors"), [np_entry("layers.1.w", c, "F16")], {"format": "pt"})
remember("sharded", "layers.0.w", "F32", a.shape, a); remember("sharded", "layers.0.b", "F32", b.shape, b)
remember("sharded", "layers.1.w", "F16", c.shape, c)
with open(os.path.join(sh, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": a.nbytes + b.nbytes + c.nbytes},
               "weight_map": {"layers.0.w": "model-00001-of-00002.safetensors", "layers.0.b": "model-00001-of-00002.safetensors",
                              "layers.1.w": "model-00002-of-00002.safetensors"}}, f, indent=2)

# --- .npy written by numpy ---------------------------------------------------------------------------------
npd = os.path.join(OUT, "npy")
os.makedirs(npd, exist_ok=True)
arrays = {
    "f4": rng.standard_normal((3, 4)).astype("<f4"),
    "f8": rng.standard_normal((2, 3, 2)).astype("<f8"),
    "f2": rng.standard_normal((5,)).astype("<f2"),
    "i4": np.array([[1, -2], [2**31 - 1, -(2**31)]], dtype="<i4"),
    "i8": np.array([2**40, -3, 0], dtype="<i8"),
    "u1": np.array([0, 1, 255], dtype="|u1"),
    "b1": np.array([[True, False], [False, True]], dtype="|b1"),
    "u2": np.array([1, 65535], dtype="<u2"),
    "i2": np.array([-7, 300], dtype="<i2"),
    "scalar": np.array(3.25, dtype="<f4"),
    "empty": np.zeros((0, 3), dtype="<f4"),
    "big_endian_f4": rng.standard_normal((2, 3)).astype(">f4"),
    "big_endian_i8": np.array([1, -2, 2**33], dtype=">i8"),
}
for k, v in arrays.items():
    np.save(os.path.join(npd, k + ".npy"), v)
    expected.setdefault("npy", {})[k] = {"dtype": v.dtype.str, "shape": list(v.shape), "values": [float(x) for x in v.astype(np.float64).ravel()]}
fo = np.asfortranarray(rng.standard_normal((3, 4)).astype("<f4"))
np.save(os.path.join(npd, "fortran_f4.npy"), fo)
expected["npy"]["fortran_f4"] = {"dtype": "<f4", "shape": [3, 4], "values": [float(x) for x in fo.astype(np.float64).ravel(order="C")]}
for ver in [(2, 0), (3, 0)]:
    v = rng.standard_normal((2, 2)).astype("<f4")
    name = "v%d_f4" % ver[0]
    with open(os.path.join(npd, name + ".npy"), "wb") as f:
        np.lib.format.write_array(f, v, version=ver)
    expected["npy"][name] = {"dtype": "<f4", "shape": [2, 2], "values": [float(x) for x in v.astype(np.float64).ravel()]}
np.savez(os.path.join(npd, "bundle.npz"), weights=arrays["f4"], ids=arrays["i8"])
np.savez_compressed(os.path.join(npd, "bundle_compressed.npz"), weights=arrays["f4"], ids=arrays["i8"])

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, allow_nan=False)
print("wrote fixtures to", os.path.abspath(OUT))
