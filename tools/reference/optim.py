#!/usr/bin/env python3
"""Reference fixtures for MedVL.Optim (optimizers, LR schedules, gradient clipping).

Run with Debian's torch 1.13:  /usr/bin/python3 tools/reference/optim.py
Writes small .npy files under tests/fixtures/optim/ (committed; CI never runs this script).

What it checks against what:
  * torch.optim.AdamW / Adam / SGD (foreach=False, i.e. the _single_tensor_* code paths) driven exactly as a training
    loop drives them: clip_grad_norm_ -> optimizer.step() -> LambdaLR.step(), for 10 synthetic gradients.
    Each float32 run is also replayed in float64 and the two trajectories must agree closely (sanity of the fixture).
  * LR schedules: the lambdas re-implemented here from Hugging Face transformers' src/transformers/optimization.py
    (constant, constant_with_warmup, linear, cosine (num_cycles=0.5), cosine_with_hard_restarts), and the lr that
    torch.optim.lr_scheduler.LambdaLR actually puts into the optimizer at each step.
  * A small MLP (Linear-GELU-Linear, MSE loss) trained 10 AdamW steps with a cosine schedule; its loss gradient is
    confirmed with torch.autograd.gradcheck in float64.
"""
import math
import os
import shutil

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "optim")
STEPS = 10


def save(case, name, arr, dtype=np.float32):
    d = os.path.join(OUT, case)
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, name + ".npy"), np.ascontiguousarray(np.asarray(arr, dtype=dtype)))


# ---------------------------------------------------------------- schedules (transformers optimization.py)
def constant(step):
    return 1.0


def constant_with_warmup(step, warmup):
    if step < warmup:
        return float(step) / float(max(1.0, warmup))
    return 1.0


def linear_with_warmup(step, warmup, total):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    return max(0.0, float(total - step) / float(max(1, total - warmup)))


def cosine_with_warmup(step, warmup, total, cycles=0.5):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * progress)))


def cosine_hard_restarts(step, warmup, total, cycles=1):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(cycles) * progress) % 1.0))))


def write_schedules():
    # Each row: the lambda at steps 0..n-1 (n past the end of training, to cover the tail).
    cases = {
        "constant": [constant(s) for s in range(40)],
        "constant_with_warmup_w7": [constant_with_warmup(s, 7) for s in range(40)],
        "constant_with_warmup_w0": [constant_with_warmup(s, 0) for s in range(40)],
        "linear_w5_t30": [linear_with_warmup(s, 5, 30) for s in range(40)],
        "linear_w0_t1": [linear_with_warmup(s, 0, 1) for s in range(40)],
        "cosine_w5_t30": [cosine_with_warmup(s, 5, 30) for s in range(40)],
        "cosine_w0_t17": [cosine_with_warmup(s, 0, 17) for s in range(40)],
        "cosine_w3_t10_c1.5": [cosine_with_warmup(s, 3, 10, 1.5) for s in range(40)],
        "cosine_with_restarts_w4_t33_c3": [cosine_hard_restarts(s, 4, 33, 3) for s in range(40)],
        "cosine_with_restarts_w0_t20_c1": [cosine_hard_restarts(s, 0, 20, 1) for s in range(40)],
    }
    for name, vals in cases.items():
        save("schedules", name, vals, np.float64)
    # The lr LambdaLR sets on the optimizer before optimizer step k (k from 0), for base lr 3e-4.
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=3e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_with_warmup(s, 5, 30))
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    save("schedules", "lambdalr_cosine_w5_t30_lr3e-4", lrs, np.float64)


# ---------------------------------------------------------------- optimizer trajectories
SHAPES = [(7, 5), (13,), (3, 4, 2)]  # odd sizes: SIMD tails


def make_problem(seed):
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=g, dtype=torch.float64) * 0.5 for s in SHAPES]
    # Gradient scale changes per step so clip_grad_norm_ clips on some steps and not on others.
    scales = [0.05, 0.3, 2.0, 0.1, 1.5, 0.02, 0.8, 3.0, 0.2, 0.6]
    grads = [[torch.randn(s, generator=g, dtype=torch.float64) * scales[k] for k in range(STEPS)] for s in SHAPES]
    return params, grads


def run(kind, params0, grads, dtype, max_norm, norm_type):
    params = [torch.nn.Parameter(p.clone().to(dtype)) for p in params0]
    if kind == "adamw" or kind == "adamw_amsgrad":
        ams = kind == "adamw_amsgrad"
        opt = torch.optim.AdamW([
            {"params": params[:2], "lr": 1e-2, "weight_decay": 0.1},
            {"params": params[2:], "lr": 3e-3, "weight_decay": 0.0, "betas": (0.8, 0.99), "eps": 1e-6},
        ], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=ams, foreach=False)
    elif kind == "adam_l2":
        opt = torch.optim.Adam([
            {"params": params[:2], "lr": 1e-2, "weight_decay": 0.05},
            {"params": params[2:], "lr": 3e-3, "weight_decay": 0.0, "betas": (0.8, 0.99), "eps": 1e-6},
        ], lr=1e-3, foreach=False)
    elif kind == "sgd_nesterov":
        opt = torch.optim.SGD([
            {"params": params[:2], "lr": 0.1, "weight_decay": 1e-3},
            {"params": params[2:], "lr": 0.03, "momentum": 0.5},
        ], lr=0.05, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.0, foreach=False)
    elif kind == "sgd_momentum_dampening":
        opt = torch.optim.SGD([
            {"params": params[:2], "lr": 0.1, "weight_decay": 1e-2},
            {"params": params[2:], "lr": 0.03, "momentum": 0.0},
        ], lr=0.05, momentum=0.9, dampening=0.25, nesterov=False, weight_decay=0.0, foreach=False)
    else:
        raise ValueError(kind)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_with_warmup(s, 3, STEPS))
    out = {"norms": [], "lrs": []}
    for i in range(len(params)):
        for key in ("param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer"):
            out[f"{key}{i}"] = []
    for k in range(STEPS):
        for i, p in enumerate(params):
            p.grad = grads[i][k].to(dtype).clone()
        total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        out["norms"].append(float(total))
        out["lrs"].append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
        for i, p in enumerate(params):
            out[f"param{i}"].append(p.detach().clone())
            st = opt.state[p]
            for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer"):
                if key in st and st[key] is not None:
                    out[f"{key}{i}"].append(st[key].clone())
    return out


def write_optimizer_cases():
    cases = [
        ("adamw", 1, 1.0, 2.0),
        ("adamw_amsgrad", 2, 1.0, 2.0),
        ("adam_l2", 3, 1.0, 2.0),
        ("sgd_nesterov", 4, 1.0, 2.0),
        ("sgd_momentum_dampening", 5, 0.5, math.inf),
    ]
    for kind, seed, max_norm, norm_type in cases:
        params0, grads = make_problem(seed)
        f32 = run(kind, params0, grads, torch.float32, max_norm, norm_type)
        f64 = run(kind, params0, grads, torch.float64, max_norm, norm_type)
        # The float32 trajectory must track the float64 one (guards against a fixture built on a broken run).
        for i in range(len(SHAPES)):
            a = torch.stack(f32[f"param{i}"]).double()
            b = torch.stack(f64[f"param{i}"])
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), (kind, i, (a - b).abs().max())
        case = kind
        save(case, "hyper", [max_norm, norm_type], np.float64)
        save(case, "norms", f32["norms"])
        save(case, "lrs", f32["lrs"], np.float64)
        for i in range(len(SHAPES)):
            save(case, f"init{i}", params0[i].float())
            save(case, f"grads{i}", torch.stack(grads[i]).float())
            for key in ("param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer"):
                vals = f32[f"{key}{i}"]
                if vals:
                    save(case, f"{key}{i}", torch.stack(vals))


# ---------------------------------------------------------------- gradient clipping edge cases
def write_clip_cases():
    g = torch.Generator().manual_seed(11)
    grads = [torch.randn(s, generator=g) * 0.7 for s in [(9, 3), (1,), (33,)]]
    for name, max_norm, norm_type in [("l2_clip", 0.5, 2.0), ("l2_noclip", 100.0, 2.0), ("inf_clip", 0.3, math.inf),
                                      ("l1_clip", 1.0, 1.0), ("l3_clip", 0.4, 3.0)]:
        ps = [torch.nn.Parameter(torch.zeros_like(x)) for x in grads]
        for p, x in zip(ps, grads):
            p.grad = x.clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=norm_type)
        save("clip/" + name, "hyper", [max_norm, norm_type], np.float64)
        save("clip/" + name, "total", [float(total)])
        for i, (p, x) in enumerate(zip(ps, grads)):
            save("clip/" + name, f"grad{i}", x)
            save("clip/" + name, f"clipped{i}", p.grad)


# ---------------------------------------------------------------- small MLP, AdamW + cosine schedule
def write_mlp_case():
    g = torch.Generator().manual_seed(21)
    n, d_in, d_hidden, d_out = 5, 6, 9, 4
    x = torch.randn(n, d_in, generator=g)
    y = torch.randn(n, d_out, generator=g)
    w1 = torch.randn(d_hidden, d_in, generator=g) * 0.4
    b1 = torch.randn(d_hidden, generator=g) * 0.1
    w2 = torch.randn(d_out, d_hidden, generator=g) * 0.4
    b2 = torch.randn(d_out, generator=g) * 0.1

    def loss_fn(x_, y_, w1_, b1_, w2_, b2_):
        h = torch.nn.functional.gelu(torch.nn.functional.linear(x_, w1_, b1_))  # exact (erf) GELU
        return torch.nn.functional.mse_loss(torch.nn.functional.linear(h, w2_, b2_), y_)

    dbl = [t.double().requires_grad_(True) for t in (w1, b1, w2, b2)]
    assert torch.autograd.gradcheck(lambda *ws: loss_fn(x.double(), y.double(), *ws), dbl)

    params = [torch.nn.Parameter(t.clone()) for t in (w1, b1, w2, b2)]
    # HF Trainer convention: biases get no weight decay.
    opt = torch.optim.AdamW([{"params": [params[0], params[2]], "weight_decay": 0.01},
                             {"params": [params[1], params[3]], "weight_decay": 0.0}],
                            lr=5e-2, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_with_warmup(s, 2, STEPS))
    losses, traj = [], [[] for _ in params]
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(x, y, *params)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss))
        for i, p in enumerate(params):
            traj[i].append(p.detach().clone())
    save("mlp", "x", x)
    save("mlp", "y", y)
    for i, name in enumerate(("w1", "b1", "w2", "b2")):
        save("mlp", f"init_{name}", (w1, b1, w2, b2)[i])
        save("mlp", f"traj_{name}", torch.stack(traj[i]))
    save("mlp", "losses", losses)


if __name__ == "__main__":
    torch.set_num_threads(1)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    write_schedules()
    write_optimizer_cases()
    write_clip_cases()
    write_mlp_case()
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total} bytes)")
