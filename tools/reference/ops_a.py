"""Reference fixtures for the differentiable core ops, part A (elementwise, reductions, softmax, norms,
activations, embedding, losses, selection, shape, linear/matmul). Writes tests/fixtures/ops/<op>/<case>/.
Run: /usr/bin/python3 tools/reference/ops_a.py [group ...]   (torch 1.13, CPU). Deterministic: the generator is
reseeded per group."""
import zlib

import torch
import torch.nn.functional as F

from common import rand, reset, save_case

g = torch.Generator().manual_seed(20240611)
ALL = []


def op(name):
    def deco(f):
        ALL.append((name, f))
        return f
    return deco


def signed_away_from_zero(*shape):
    m = rand(g, *shape, lo=0.5, hi=2.0)
    s = torch.where(rand(g, *shape, lo=-1, hi=1) < 0, -1.0, 1.0).double()
    return m * s


# ---------------- elementwise ----------------
BCAST = [("same", (3, 5), (3, 5)), ("row", (2, 3, 5), (5,)), ("outer", (4, 1, 3), (5, 1)),
         ("scalar", (3, 17), ()), ("left", (1, 7), (4, 3, 1)), ("tail33", (33,), (33,))]


@op("binary")
def _binary():
    for name, f in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("div", torch.div)]:
        reset(name)
        for case, sa, sb in BCAST:
            a = rand(g, *sa)
            b = signed_away_from_zero(*sb) if name == "div" else rand(g, *sb)
            save_case(name, case, {"a": a, "b": b}, lambda a, b, f=f: f(a, b), gen=g)


@op("unary")
def _unary():
    cases = {
        "neg": (lambda x: -x, {}, (-3, 3)),
        "scale": (lambda x: x * 0.37, {"alpha": 0.37}, (-3, 3)),
        "add_scalar": (lambda x: x + 1.25, {"alpha": 1.25}, (-3, 3)),
        "exp": (torch.exp, {}, (-4, 4)),
        "log": (torch.log, {}, (0.1, 5)),
        "sqrt": (torch.sqrt, {}, (0.1, 5)),
        "square": (torch.square, {}, (-3, 3)),
        "pow": (lambda x: torch.pow(x, 2.5), {"exponent": 2.5}, (0.1, 3)),
        "tanh": (torch.tanh, {}, (-4, 4)),
        "sigmoid": (torch.sigmoid, {}, (-6, 6)),
    }
    for name, (f, p, (lo, hi)) in cases.items():
        reset(name)
        for case, shape in [("m3x7", (3, 7)), ("v65", (65,))]:
            save_case(name, case, {"x": rand(g, *shape, lo=lo, hi=hi)}, f, params=p, gen=g)


@op("masked_fill")
def _masked_fill():
    reset("masked_fill")
    x = rand(g, 3, 5)
    mask = rand(g, 1, 5) > 0
    save_case("masked_fill", "bcast", {"x": x, "mask": mask}, lambda x, mask: x.masked_fill(mask, -1e4),
              params={"value": -1e4}, gen=g)
    x = rand(g, 2, 3, 4)
    mask = rand(g, 2, 3, 4) > 0.5
    save_case("masked_fill", "full", {"x": x, "mask": mask}, lambda x, mask: x.masked_fill(mask, 0.5),
              params={"value": 0.5}, gen=g)


@op("where")
def _where():
    reset("where")
    save_case("where", "bcast", {"cond": torch.tensor([[True], [False], [True]]), "a": rand(g, 3, 4), "b": rand(g, 4)},
              lambda cond, a, b: torch.where(cond, a, b), gen=g)
    save_case("where", "full", {"cond": rand(g, 2, 3, 5) > 0, "a": rand(g, 2, 3, 5), "b": rand(g, 1, 3, 1)},
              lambda cond, a, b: torch.where(cond, a, b), gen=g)


# ---------------- reductions ----------------
@op("reduce")
def _reduce():
    for name, f in [("sum", torch.sum), ("mean", torch.mean)]:
        reset(name)
        save_case(name, "all", {"x": rand(g, 3, 5, 7)}, lambda x, f=f: f(x), params={"dims": None, "keepdim": False}, gen=g)
        save_case(name, "dim1", {"x": rand(g, 3, 5, 7)}, lambda x, f=f: f(x, dim=[1]), params={"dims": [1], "keepdim": False}, gen=g)
        save_case(name, "dims02_keep", {"x": rand(g, 3, 5, 7)}, lambda x, f=f: f(x, dim=[0, 2], keepdim=True),
                  params={"dims": [0, 2], "keepdim": True}, gen=g)
        save_case(name, "last_neg", {"x": rand(g, 4, 33)}, lambda x, f=f: f(x, dim=[-1]), params={"dims": [-1], "keepdim": False}, gen=g)
    reset("max_dim")
    save_case("max_dim", "dim1", {"x": rand(g, 3, 6, 4)}, lambda x: torch.max(x, dim=1), params={"dim": 1, "keepdim": False}, gen=g)
    save_case("max_dim", "last_keep", {"x": rand(g, 5, 17)}, lambda x: torch.max(x, dim=-1, keepdim=True),
              params={"dim": -1, "keepdim": True}, gen=g)
    reset("sum_squares")
    save_case("sum_squares", "v", {"x": rand(g, 7, 9)}, lambda x: (x * x).sum(), gen=g)


# ---------------- softmax ----------------
@op("softmax")
def _softmax():
    for name, f in [("softmax", lambda x: torch.softmax(x, -1)), ("log_softmax", lambda x: torch.log_softmax(x, -1))]:
        reset(name)
        save_case(name, "m3x7", {"x": rand(g, 3, 7)}, f, gen=g)
        save_case(name, "b2x3x33", {"x": rand(g, 2, 3, 33)}, f, gen=g)
        # large logits: only a max-subtracted implementation survives exp() in float32
        save_case(name, "large", {"x": rand(g, 4, 17, lo=60.0, hi=100.0)}, f, gen=g)


# ---------------- norms ----------------
def rms_norm(x, w, eps):
    # HF LlamaRMSNorm / Phi3RMSNorm: variance in float32, x * rsqrt(var + eps), then weight *
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


@op("norms")
def _norms():
    reset("rms_norm")
    for case, shape, eps in [("r3x17", (3, 17), 1e-6), ("b2x3x33", (2, 3, 33), 1e-5)]:
        save_case("rms_norm", case, {"x": rand(g, *shape), "weight": rand(g, shape[-1], lo=0.5, hi=1.5)},
                  lambda x, weight, eps=eps: rms_norm(x, weight, eps), params={"eps": eps}, gen=g)
    reset("layer_norm")
    for case, shape in [("r3x17", (3, 17)), ("b2x3x33", (2, 3, 33))]:
        d = shape[-1]
        save_case("layer_norm", case, {"x": rand(g, *shape) + 0.7, "weight": rand(g, d), "bias": rand(g, d)},
                  lambda x, weight, bias: F.layer_norm(x, (d,), weight, bias, 1e-5), params={"eps": 1e-5}, gen=g)
    save_case("layer_norm", "nobias", {"x": rand(g, 4, 9), "weight": rand(g, 9)},
              lambda x, weight: F.layer_norm(x, (9,), weight, None, 1e-5), params={"eps": 1e-5}, gen=g)
    reset("group_norm")
    save_case("group_norm", "nchw", {"x": rand(g, 2, 6, 3, 5), "weight": rand(g, 6), "bias": rand(g, 6)},
              lambda x, weight, bias: F.group_norm(x, 3, weight, bias, 1e-6), params={"groups": 3, "eps": 1e-6}, gen=g)
    save_case("group_norm", "ncl", {"x": rand(g, 3, 4, 7) * 3, "weight": rand(g, 4), "bias": rand(g, 4)},
              lambda x, weight, bias: F.group_norm(x, 2, weight, bias, 1e-5), params={"groups": 2, "eps": 1e-5}, gen=g)
    save_case("group_norm", "noaffine", {"x": rand(g, 2, 4, 2, 3)},
              lambda x: F.group_norm(x, 4, None, None, 1e-6), params={"groups": 4, "eps": 1e-6}, gen=g)


# ---------------- activations ----------------
@op("activations")
def _activations():
    acts = {
        "gelu": lambda x: F.gelu(x),
        "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
        "silu": lambda x: F.silu(x),
    }
    for name, f in acts.items():
        reset(name)
        save_case(name, "m5x13", {"x": rand(g, 5, 13, lo=-6, hi=6)}, f, gen=g)
        save_case(name, "v129", {"x": rand(g, 129, lo=-3, hi=3)}, f, gen=g)
    reset("swiglu")
    save_case("swiglu", "m3x7", {"gate": rand(g, 3, 7, lo=-4, hi=4), "up": rand(g, 3, 7)},
              lambda gate, up: F.silu(gate) * up, gen=g)
    reset("swiglu_fused")

    def fused(x):  # HF Phi3MLP: gate, up = gate_up.chunk(2, dim=-1); up * act(gate)
        gate, up = x.chunk(2, dim=-1)
        return up * F.silu(gate)
    save_case("swiglu_fused", "b2x3x14", {"x": rand(g, 2, 3, 14, lo=-4, hi=4)}, fused, gen=g)


# ---------------- embedding / losses ----------------
@op("embedding")
def _embedding():
    reset("embedding")
    ids = torch.tensor([[1, 4, 4, 0, 10], [3, 3, 7, 2, 4]], dtype=torch.int64)
    save_case("embedding", "b2x5", {"ids": ids, "weight": rand(g, 11, 6)}, lambda ids, weight: F.embedding(ids, weight),
              params={"padding_idx": None}, gen=g)
    save_case("embedding", "padding", {"ids": ids, "weight": rand(g, 11, 6)},
              lambda ids, weight: F.embedding(ids, weight, padding_idx=4), params={"padding_idx": 4}, gen=g,
              gradcheck=False)  # padding_idx rows get no gradient by definition, so it is not the true Jacobian


@op("losses")
def _losses():
    reset("cross_entropy")
    t = torch.tensor([2, -100, 0, 8, 5, -100], dtype=torch.int64)
    save_case("cross_entropy", "ignore", {"logits": rand(g, 6, 9, lo=-4, hi=4), "targets": t},
              lambda logits, targets: F.cross_entropy(logits, targets, ignore_index=-100), gen=g)
    t = torch.tensor([1, 0, 16, 3, 9, 12, 2], dtype=torch.int64)
    save_case("cross_entropy", "all", {"logits": rand(g, 7, 17, lo=-8, hi=8), "targets": t},
              lambda logits, targets: F.cross_entropy(logits, targets), gen=g)
    reset("mse")
    save_case("mse", "m4x5", {"a": rand(g, 4, 5), "b": rand(g, 4, 5)}, lambda a, b: F.mse_loss(a, b), gen=g)


# ---------------- selection (no grad) ----------------
@op("select")
def _select():
    reset("argmax")
    x = torch.round(rand(g, 6, 9, lo=-3, hi=3))  # integers: many ties, torch returns the first maximum
    save_case("argmax", "ties", {"x": x}, lambda x: torch.argmax(x, dim=-1), grads=[], gen=g)
    save_case("argmax", "v33", {"x": rand(g, 4, 33)}, lambda x: torch.argmax(x, dim=-1), grads=[], gen=g)
    reset("topk")
    save_case("topk", "k3", {"x": rand(g, 5, 11)}, lambda x: torch.topk(x, 3, dim=-1), params={"k": 3}, grads=[], gen=g)
    save_case("topk", "k1", {"x": rand(g, 2, 3, 7)}, lambda x: torch.topk(x, 1, dim=-1), params={"k": 1}, grads=[], gen=g)


# ---------------- shape ----------------
@op("shape")
def _shape():
    reset("concat")
    save_case("concat", "dim1", {"a": rand(g, 2, 3), "b": rand(g, 2, 5)}, lambda a, b: torch.cat([a, b], 1),
              params={"dim": 1}, gen=g)
    save_case("concat", "dim0_three", {"a": rand(g, 2, 3, 2), "b": rand(g, 4, 3, 2), "c": rand(g, 1, 3, 2)},
              lambda a, b, c: torch.cat([a, b, c], 0), params={"dim": 0}, gen=g)
    reset("stack")
    save_case("stack", "dim1", {"a": rand(g, 2, 3), "b": rand(g, 2, 3), "c": rand(g, 2, 3)},
              lambda a, b, c: torch.stack([a, b, c], 1), params={"dim": 1}, gen=g)
    reset("split")
    save_case("split", "dim0", {"x": rand(g, 7, 5)}, lambda x: torch.split(x, [2, 5], 0), params={"sizes": [2, 5], "dim": 0}, gen=g)
    reset("chunk")
    save_case("chunk", "last", {"x": rand(g, 3, 7)}, lambda x: torch.chunk(x, 3, -1), params={"chunks": 3, "dim": -1}, gen=g)


# ---------------- linear / matmul ----------------
@op("linear")
def _linear():
    reset("linear")
    save_case("linear", "bias", {"x": rand(g, 2, 3, 7), "weight": rand(g, 5, 7), "bias": rand(g, 5)},
              lambda x, weight, bias: F.linear(x, weight, bias), gen=g)
    save_case("linear", "nobias", {"x": rand(g, 4, 17), "weight": rand(g, 9, 17)},
              lambda x, weight: F.linear(x, weight), gen=g)
    reset("matmul")
    for case, sa, sb in [("m2d", (3, 4), (4, 2)), ("bcast_b", (3, 4, 6), (6, 5)),
                         ("bcast_both", (2, 1, 3, 4), (5, 4, 2)), ("batched", (2, 5, 3), (2, 3, 7))]:
        save_case("matmul", case, {"a": rand(g, *sa), "b": rand(g, *sb)}, lambda a, b: torch.matmul(a, b), gen=g)


if __name__ == "__main__":
    import sys
    only = set(sys.argv[1:])
    for name, f in ALL:
        if not only or name in only:
            g.manual_seed(zlib.crc32(name.encode()))  # per group, so regenerating one group leaves the others unchanged
            f()
            print("wrote", name)
