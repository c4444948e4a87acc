#!/usr/bin/python3
"""Reference PyTorch checkpoints for MedVL.Formats.TorchCheckpoint, written by torch.save itself.

Run: /usr/bin/python3 tools/formats/make_torch_fixtures.py   (Debian python3-torch 1.13)
Writes tests/fixtures/formats/torch/: zip-format and legacy-format checkpoints of the same content, a nested training
checkpoint, a real nn.Module state_dict (with its _metadata attribute), the expected value of every tensor as a .npy
written by numpy (bf16/f16 widened to float32 by torch), and malicious pickles produced by Python's own pickle module.
"""
import collections, json, os, pickle, zipfile
import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "formats", "torch")
os.makedirs(os.path.join(OUT, "expected"), exist_ok=True)
g = torch.Generator().manual_seed(0)

base = torch.randn(4, 6, generator=g)
state = collections.OrderedDict()
state["encoder.weight"] = torch.randn(5, 3, generator=g)
state["encoder.bias"] = torch.nn.Parameter(torch.randn(5, generator=g))
state["half"] = torch.randn(2, 3, generator=g).half()
state["bf16"] = torch.randn(3, 2, generator=g).to(torch.bfloat16)
state["f64"] = torch.randn(3, generator=g).double()
state["ids"] = torch.tensor([[0, 5, -7], [2**40, 3, 1]], dtype=torch.int64)
state["i32"] = torch.tensor([1, -2, 3], dtype=torch.int32)
state["u8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
state["i8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
state["mask"] = torch.tensor([True, False, True, True])
state["scalar"] = torch.tensor(1.5)
state["empty"] = torch.zeros(0, 3)
state["base"] = base                      # shares storage with the next two
state["transposed"] = base.t()            # non-contiguous view: strides (1, 6)
state["row2"] = base[2]                   # storage_offset 12
state["strided"] = base[:, ::2]           # strides (6, 2)
state["big"] = torch.arange(1000, dtype=torch.float32) / 7  # enough bytes to see the 64-byte aligned record

def dump_expected(prefix, tensors):
    for name, t in tensors.items():
        t = t.detach()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        np.save(os.path.join(OUT, "expected", f"{prefix}__{name}.npy"), t.contiguous().numpy())

torch.save(state, os.path.join(OUT, "state_zip.pt"))
torch.save(state, os.path.join(OUT, "state_legacy.pt"), _use_new_zipfile_serialization=False)
dump_expected("state", state)

lin = torch.nn.Linear(3, 2)
with torch.no_grad():
    lin.weight.copy_(torch.randn(2, 3, generator=g)); lin.bias.copy_(torch.randn(2, generator=g))
sd = lin.state_dict()  # OrderedDict with a _metadata attribute (pickled via BUILD)
nested = {
    "epoch": 3,
    "state_dict": sd,
    "optimizer": {"lr": 0.1, "betas": (0.9, 0.999), "step": 2**40},
    "history": [torch.tensor([1.0, 2.0]), torch.tensor([3.0])],
    "tag": "medvl",
    "raw": b"\x00\xffbytes",
    "flag": True,
    "none": None,
}
torch.save(nested, os.path.join(OUT, "nested_zip.pt"))
torch.save(nested, os.path.join(OUT, "nested_legacy.pt"), _use_new_zipfile_serialization=False)
dump_expected("nested", {"state_dict.weight": sd["weight"], "state_dict.bias": sd["bias"],
                         "history.0": nested["history"][0], "history.1": nested["history"][1]})

# --- a bare tensor as the root object, and a protocol-4 save (FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL) ---
single = torch.randn(3, 4, generator=g)[:, 1:]    # non-contiguous root tensor with a storage offset
torch.save(single, os.path.join(OUT, "single_tensor.pt"))
torch.save(state, os.path.join(OUT, "state_zip_p4.pt"), pickle_protocol=4)
torch.save(state, os.path.join(OUT, "state_legacy_p4.pt"), pickle_protocol=4, _use_new_zipfile_serialization=False)
dump_expected("single", {"root": single})

# --- a sharded pytorch_model.bin checkpoint (as Med-MoE ships): one zip shard, one legacy shard, and the index ---
shd = os.path.join(OUT, "sharded_bin")
os.makedirs(shd, exist_ok=True)
s1 = collections.OrderedDict([("model.layers.0.w", torch.randn(2, 3, generator=g)), ("model.layers.0.b", torch.randn(3, generator=g).half())])
s2 = collections.OrderedDict([("lm_head.weight", torch.randn(4, 2, generator=g).to(torch.bfloat16))])
torch.save(s1, os.path.join(shd, "pytorch_model-00001-of-00002.bin"))
torch.save(s2, os.path.join(shd, "pytorch_model-00002-of-00002.bin"), _use_new_zipfile_serialization=False)
with open(os.path.join(shd, "pytorch_model.bin.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": 12 * 4 + 3 * 2 + 8 * 2},
               "weight_map": {"model.layers.0.w": "pytorch_model-00001-of-00002.bin", "model.layers.0.b": "pytorch_model-00001-of-00002.bin",
                              "lm_head.weight": "pytorch_model-00002-of-00002.bin"}}, f, indent=2)
dump_expected("sharded", {**s1, **s2})

# --- malicious pickles, produced by Python's pickle from objects whose __reduce__ calls dangerous functions ---
MARK = "/tmp/medvl_pickle_pwned"

class PosixSystem:
    def __reduce__(self):
        return (os.system, ("touch " + MARK,))

class BuiltinsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch %s')" % MARK,))

with open(os.path.join(OUT, "evil_os_system_p2.pkl"), "wb") as f:
    pickle.dump({"weight": PosixSystem()}, f, protocol=2)          # GLOBAL 'posix system' + REDUCE
with open(os.path.join(OUT, "evil_eval_p4.pkl"), "wb") as f:
    pickle.dump([BuiltinsEval()], f, protocol=4)                   # STACK_GLOBAL 'builtins eval' + REDUCE
with open(os.path.join(OUT, "evil_numpy_p2.pkl"), "wb") as f:
    pickle.dump({"a": np.arange(3)}, f, protocol=2)                # numpy.core.multiarray._reconstruct
# The same payload inside a torch zip archive (as a poisoned pytorch_model.bin would be).
with zipfile.ZipFile(os.path.join(OUT, "evil_zip.pt"), "w", zipfile.ZIP_STORED) as z:
    z.writestr("evil/data.pkl", pickle.dumps(collections.OrderedDict(w=PosixSystem()), protocol=2))
    z.writestr("evil/version", "3\n")
# And as the legacy stream: valid magic/protocol/sys_info, poisoned main pickle.
with open(os.path.join(OUT, "evil_legacy.pt"), "wb") as f:
    pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
    pickle.dump(1001, f, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
    pickle.dump({"w": BuiltinsEval()}, f, protocol=2)
    pickle.dump([], f, protocol=2)

# --- tensors carrying Python attributes (torch 1.13 drops them for Parameter and plain Tensor; torch 2.x would emit
#     _rebuild_parameter_with_state / _rebuild_from_type_v2, which the loader also accepts) ---
gs = torch.Generator().manual_seed(99)
pw = torch.nn.Parameter(torch.randn(2, 2, generator=gs)); pw.note = "lora"
tw = torch.randn(3, generator=gs); tw.tag = 7
stateful = {"param": pw, "tensor": tw}
torch.save(stateful, os.path.join(OUT, "stateful.pt"))
dump_expected("stateful", stateful)

# --- the torch 2.x spellings, emulated with pickle's own machinery (torch 1.13 cannot emit them): folder "archive",
#     _rebuild_from_type_v2(_rebuild_tensor_v2, torch.Tensor, args, state) for a tensor with attributes, and
#     _rebuild_parameter_with_state(data, requires_grad, hooks, state) for a Parameter with attributes. ---
import io
class _Storage:  # stands for a storage; becomes the persistent id torch writes
    def __init__(self, key, n): self.key, self.n = key, n
class _Tensor:
    def __init__(self, st, size, stride): self.args = (st, 0, size, stride, False, collections.OrderedDict())
    def __reduce__(self):
        return (torch._tensor._rebuild_from_type_v2, (torch._utils._rebuild_tensor_v2, torch.Tensor, self.args, {"tag": 7}))
class _PlainT(_Tensor):
    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)
class _Param:
    def __init__(self, t): self.t = t
    def __reduce__(self):
        return (torch._utils._rebuild_parameter_with_state, (self.t, True, collections.OrderedDict(), {"note": "lora"}))
if not hasattr(torch._utils, "_rebuild_parameter_with_state"):  # added in torch 2.0; pickle only needs the name
    def _rebuild_parameter_with_state(*a): raise RuntimeError("stub")
    _rebuild_parameter_with_state.__module__ = "torch._utils"
    torch._utils._rebuild_parameter_with_state = _rebuild_parameter_with_state
class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        return ("storage", torch.FloatStorage, obj.key, "cpu", obj.n) if isinstance(obj, _Storage) else None
v0 = np.arange(6, dtype="<f4") / 3; v1 = np.array([5, -6], dtype="<f4")
obj = collections.OrderedDict(t=_Tensor(_Storage("0", 6), (2, 3), (3, 1)), p=_Param(_PlainT(_Storage("1", 2), (2,), (1,))))
buf = io.BytesIO(); _Pickler(buf, protocol=2).dump(obj)
with zipfile.ZipFile(os.path.join(OUT, "torch2_style.pt"), "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", buf.getvalue())
    z.writestr("archive/byteorder", "little")
    z.writestr("archive/data/0", v0.tobytes())
    z.writestr("archive/data/1", v1.tobytes())
    z.writestr("archive/version", "3\n")
    z.writestr("archive/.data/serialization_id", "0123456789")
np.save(os.path.join(OUT, "expected", "torch2__t.npy"), v0.reshape(2, 3))
np.save(os.path.join(OUT, "expected", "torch2__p.npy"), v1)

# --- a state dict that happens to have a "model" entry next to top-level tensors: it must not be unwrapped ---
torch.save({"w": torch.ones(2), "model": {"x": torch.zeros(1)}}, os.path.join(OUT, "model_key.pt"))

assert not os.path.exists(MARK)
print("wrote", sorted(os.listdir(OUT)))
