"""Shared helpers for the op reference fixtures (run with Debian's /usr/bin/python3: torch 1.13 + numpy).

Each case is a folder tests/fixtures/ops/<op>/<case>/ holding:
  case.json      {"op", "inputs": [names], "params": {...}, "outputs": n, "grads": [names with a gradient]}
  in_<name>.npy  the inputs (float32, or int64 / bool for ids, targets and masks)
  out_<k>.npy    the forward outputs, computed in float32 by torch
  gout_<k>.npy   a random upstream gradient per float output (only when grads is non-empty)
  grad_<name>.npy  torch.autograd's gradient of sum(out_k * gout_k) for every input in grads
Before writing, the same function is checked in float64 with torch.autograd.gradcheck.
"""
import json
import os
import shutil

import numpy as np
import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "ops"))


def reset(op):
    d = os.path.join(ROOT, op)
    if os.path.isdir(d):
        shutil.rmtree(d)


def rand(gen, *shape, lo=-2.0, hi=2.0):
    return (torch.rand(tuple(shape), generator=gen, dtype=torch.float64) * (hi - lo) + lo)


def _as_tuple(y):
    return y if isinstance(y, (tuple, list)) else (y,)


def save_case(op, case, inputs, fn, params=None, grads=None, gen=None, gradcheck=True):
    """inputs: dict name -> tensor (float64 for float inputs, int64/bool otherwise).
    fn(**tensors) -> tensor or tuple. grads: names of the inputs to differentiate (default: all float inputs)."""
    params = params or {}
    if grads is None:
        grads = [k for k, v in inputs.items() if v.is_floating_point()]
    d = os.path.join(ROOT, op, case)
    os.makedirs(d, exist_ok=True)

    # float64 gradcheck of the very function whose float32 results we store.
    if gradcheck and grads:
        names = list(inputs)
        def f64(*xs):
            kw = dict(zip(names, xs))
            ys = _as_tuple(fn(**kw))
            return tuple(y for y in ys if y.is_floating_point())
        xs = []
        for k in names:
            v = inputs[k].clone()
            if v.is_floating_point():
                v = v.double().requires_grad_(k in grads)
            xs.append(v)
        assert torch.autograd.gradcheck(f64, tuple(xs), eps=1e-6, atol=1e-5, rtol=1e-4), f"gradcheck {op}/{case}"

    t32 = {}
    for k, v in inputs.items():
        v = v.clone()
        if v.is_floating_point():
            v = v.float().requires_grad_(k in grads)
        t32[k] = v
        np.save(os.path.join(d, f"in_{k}.npy"), v.detach().numpy())
    ys = _as_tuple(fn(**t32))
    for i, y in enumerate(ys):
        np.save(os.path.join(d, f"out_{i}.npy"), y.detach().numpy())
    if grads:
        gouts, fys = [], []
        for i, y in enumerate(ys):
            if y.is_floating_point() and y.requires_grad:
                g = torch.randn(tuple(y.shape), generator=gen, dtype=torch.float64).float()
                np.save(os.path.join(d, f"gout_{i}.npy"), g.numpy())
                gouts.append(g)
                fys.append(y)
        torch.autograd.backward(fys, gouts)
        for k in grads:
            g = t32[k].grad
            if g is None:
                g = torch.zeros_like(t32[k])
            np.save(os.path.join(d, f"grad_{k}.npy"), g.numpy())
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump({"op": op, "inputs": list(inputs), "params": params, "outputs": len(ys), "grads": grads}, f, indent=1)
