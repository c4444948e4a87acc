#!/usr/bin/python3
"""Reference fixtures for the part-B differentiable ops: rotary embeddings, attention, conv2d, nearest upsampling.

Run with Debian's /usr/bin/python3 (torch 1.13 + numpy):  /usr/bin/python3 tools/reference/ops_b.py
Writes tests/fixtures/ops/{rope,attention,conv2d,upsample}/<case>/ in the layout of the part-A fixtures:
  case.json        {"op", "inputs": [names], "params": {...}, "outputs": n, "grads": [names]}
  in_<name>.npy    inputs (float32; int64 for position ids)
  out_<k>.npy      forward outputs computed in float32 by torch
  gout_<k>.npy     a random upstream gradient per output
  grad_<name>.npy  torch.autograd's gradient of sum(out_k * gout_k) for each name in grads
Each function is first checked in float64 with torch.autograd.gradcheck.

The formulas follow Hugging Face transformers: rotate_half / apply_rotary_pos_emb (modeling_llama.py), the default and
"longrope" inverse frequencies (modeling_rope_utils.py), repeat_kv + eager attention, and torch's conv2d / interpolate.
torch 1.13 has no F.scaled_dot_product_attention; its math backend is exactly softmax(q kᵀ scale + mask) v, written out here.
"""
import json
import math
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "ops"))


def reset(op):
    d = os.path.join(ROOT, op)
    if os.path.isdir(d):
        shutil.rmtree(d)


def rand(gen, *shape, lo=-2.0, hi=2.0):
    return torch.rand(tuple(shape), generator=gen, dtype=torch.float64) * (hi - lo) + lo


def save_case(op, case, inputs, fn, params, grads, gen):
    """inputs: name -> tensor (float64 floats, int64 ids). fn(**inputs) -> tensor."""
    d = os.path.join(ROOT, op, case)
    os.makedirs(d, exist_ok=True)
    names = list(inputs)

    def f(*xs):
        return fn(**dict(zip(names, xs)))

    xs = []
    for k in names:
        v = inputs[k].clone()
        if v.is_floating_point():
            v = v.double().requires_grad_(k in grads)
        xs.append(v)
    assert torch.autograd.gradcheck(f, tuple(xs), eps=1e-6, atol=1e-5, rtol=1e-4), f"gradcheck {op}/{case}"

    t32 = []
    for k in names:
        v = inputs[k].clone()
        if v.is_floating_point():
            v = v.float().requires_grad_(k in grads)
        t32.append(v)
        np.save(os.path.join(d, f"in_{k}.npy"), v.detach().numpy())
    y = f(*t32)
    np.save(os.path.join(d, "out_0.npy"), y.detach().numpy())
    g = torch.randn(tuple(y.shape), generator=gen, dtype=torch.float64).float()
    np.save(os.path.join(d, "gout_0.npy"), g.numpy())
    y.backward(g)
    for k, v in zip(names, t32):
        if k in grads:
            np.save(os.path.join(d, f"grad_{k}.npy"), v.grad.numpy())
    with open(os.path.join(d, "case.json"), "w") as fh:
        json.dump({"op": op, "inputs": names, "params": params, "outputs": 1, "grads": grads}, fh, indent=1, sort_keys=True)


# ---------------------------------------------------------------- rotary embeddings (HF)

def default_inv_freq(dim, base):
    # modeling_rope_utils._compute_default_rope_parameters (float32 throughout)
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))


def longrope_inv_freq(dim, base, ext_factors):
    # modeling_rope_utils._compute_longrope_parameters
    inv_freq_shape = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
    return 1.0 / (torch.tensor(ext_factors, dtype=torch.float32) * base ** inv_freq_shape)


def cos_sin(inv_freq, position_ids, attention_scaling):
    # LlamaRotaryEmbedding.forward: freqs = inv_freq ⊗ positions in float32, emb = cat(freqs, freqs)
    freqs = (inv_freq[None, :, None].float() @ position_ids[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * attention_scaling, emb.sin() * attention_scaling  # [B, T, rotary_dim]


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, cos, sin, rotary_dim):
    # apply_rotary_pos_emb (unsqueeze_dim=1) with the partial-rotary split of Phi / StableLM
    cos = cos.unsqueeze(1).to(x.dtype)
    sin = sin.unsqueeze(1).to(x.dtype)
    x_rot, x_pass = x[..., :rotary_dim], x[..., rotary_dim:]
    return torch.cat(((x_rot * cos) + (rotate_half(x_rot) * sin), x_pass), dim=-1)


def rope_cases(gen):
    reset("rope")
    cases = [
        # name, B, H, T, head_dim, partial factor, theta, position ids [B or 1, T], longrope
        ("full", 2, 3, 5, 8, 1.0, 10000.0, torch.arange(3, 8)[None, :], None),
        ("phi2_partial", 2, 2, 7, 80, 0.4, 10000.0, torch.tensor([[0, 1, 2, 3, 4, 5, 6], [40, 41, 42, 43, 44, 45, 46]]), None),
        ("stablelm_partial", 1, 2, 6, 32, 0.25, 10000.0, torch.arange(10, 16)[None, :], None),
        ("odd_half_tail", 1, 2, 3, 38, 34 / 38, 500000.0, torch.arange(0, 3)[None, :], None),
        ("longrope", 1, 2, 4, 16, 1.0, 10000.0, torch.arange(5000, 5004)[None, :],
         dict(max_position_embeddings=131072, original_max_position_embeddings=4096, sequence_length=5004)),
    ]
    for name, B, H, T, D, pf, theta, pos, lr in cases:
        rdim = int(D * pf)
        params = {"head_dim": D, "rotary_dim": rdim, "partial_rotary_factor": pf, "theta": theta,
                  "position_ids": pos.reshape(-1).tolist(), "position_rows": pos.shape[0]}
        if lr is None:
            inv = default_inv_freq(rdim, theta)
            scaling = 1.0
        else:
            short = (1.0 + torch.rand(rdim // 2, generator=gen, dtype=torch.float64) * 0.5).float().tolist()
            long = (1.0 + torch.rand(rdim // 2, generator=gen, dtype=torch.float64) * 3.0).float().tolist()
            ext = long if lr["sequence_length"] > lr["original_max_position_embeddings"] else short
            inv = longrope_inv_freq(rdim, theta, ext)
            factor = lr["max_position_embeddings"] / lr["original_max_position_embeddings"]
            scaling = math.sqrt(1 + math.log(factor) / math.log(lr["original_max_position_embeddings"])) if factor > 1 else 1.0
            params.update(lr, short_factor=short, long_factor=long, attention_scaling=scaling)
        cos, sin = cos_sin(inv, pos, scaling)
        d = os.path.join(ROOT, "rope", name)
        os.makedirs(d, exist_ok=True)
        np.save(os.path.join(d, "inv_freq.npy"), inv.numpy())
        np.save(os.path.join(d, "cos.npy"), cos[..., : rdim // 2].numpy())
        np.save(os.path.join(d, "sin.npy"), sin[..., : rdim // 2].numpy())
        x = rand(gen, B, H, T, D)
        save_case("rope", name, {"x": x}, lambda x: apply_rope(x, cos.to(x.dtype), sin.to(x.dtype), rdim), params, ["x"], gen)


# ---------------------------------------------------------------- attention

def repeat_kv(x, n_rep):
    # modeling_llama.repeat_kv: [B, Hkv, S, D] -> [B, Hkv * n_rep, S, D]
    b, hkv, s, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, hkv, n_rep, s, d).reshape(b, hkv * n_rep, s, d)


def visibility(T, S, causal, window):
    i = torch.arange(T)[:, None] + (S - T)  # absolute position of each query
    j = torch.arange(S)[None, :]
    ok = torch.ones(T, S, dtype=torch.bool)
    if causal:
        ok &= j <= i
    if window:
        ok &= (i - j) < window
    return ok


def attention(q, k, v, mask, causal, window, scale):
    H, Hkv = q.shape[1], k.shape[1]
    T, S = q.shape[2], k.shape[2]
    k = repeat_kv(k, H // Hkv)
    v = repeat_kv(v, H // Hkv)
    s = (q @ k.transpose(-1, -2)) * scale
    if mask is not None:
        s = s + mask
    s = s.masked_fill(~visibility(T, S, causal, window), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def attention_cases(gen):
    reset("attention")
    cases = [
        # name, B, H, Hkv, T, S, D, causal, window, mask kind, scale
        ("bidirectional_multiblock", 1, 2, 2, 70, 70, 16, False, 0, None, None),
        ("causal_gqa", 2, 4, 2, 37, 37, 13, True, 0, None, None),
        ("kv_cache_mqa", 1, 4, 1, 5, 83, 24, True, 0, None, None),
        ("sliding_window", 1, 2, 2, 75, 75, 8, True, 20, None, None),
        ("mask_per_batch", 2, 2, 2, 19, 19, 12, True, 0, "batch", None),
        ("mask_shared_bidirectional", 1, 3, 3, 20, 33, 7, False, 0, "shared", 0.3),
        ("decode_gqa_window", 2, 6, 2, 1, 130, 40, True, 50, None, None),
    ]
    for name, B, H, Hkv, T, S, D, causal, window, mk, scale in cases:
        sc = scale if scale is not None else 1.0 / math.sqrt(D)
        inputs = {"q": rand(gen, B, H, T, D), "k": rand(gen, B, Hkv, S, D), "v": rand(gen, B, Hkv, S, D)}
        if mk == "batch":
            m = rand(gen, B, 1, T, S, lo=-1.0, hi=1.0)
            m[0, 0, :, :3] = float("-inf")  # left padding of batch row 0 (its first 3 keys)
            m[0, 0, :3, :] = 0.0            # …whose padded query rows still see themselves via the causal range
            m[0, 0, 0, 0] = 0.0
            inputs["mask"] = m
        elif mk == "shared":
            m = rand(gen, T, S, lo=-1.0, hi=1.0)
            m[:, 5] = float("-inf")
            inputs["mask"] = m
        params = {"heads": H, "kv_heads": Hkv, "causal": causal, "sliding_window": window,
                  "scale": scale, "mask": mk}
        if "mask" in inputs:
            fn = lambda q, k, v, mask: attention(q, k, v, mask, causal, window, sc)
        else:
            fn = lambda q, k, v: attention(q, k, v, None, causal, window, sc)
        save_case("attention", name, inputs, fn, params, ["q", "k", "v"], gen)


# ---------------------------------------------------------------- conv2d and upsampling

def conv_cases(gen):
    reset("conv2d")
    cases = [
        # name, N, C, H, W, O, k, stride, padding, bias
        ("k3_pad1_bias", 2, 3, 9, 11, 5, 3, 1, 1, True),
        ("k1_bias", 1, 7, 5, 6, 4, 1, 1, 0, True),
        ("k3_stride2_pad1", 1, 4, 10, 9, 6, 3, 2, 1, False),
        ("clip_patch14", 1, 3, 28, 42, 8, 14, 14, 0, False),
    ]
    for name, N, C, H, W, O, k, s, p, bias in cases:
        inputs = {"x": rand(gen, N, C, H, W), "weight": rand(gen, O, C, k, k, lo=-0.5, hi=0.5)}
        if bias:
            inputs["bias"] = rand(gen, O)
            fn = lambda x, weight, bias: F.conv2d(x, weight, bias, stride=s, padding=p)
        else:
            fn = lambda x, weight: F.conv2d(x, weight, None, stride=s, padding=p)
        save_case("conv2d", name, inputs, fn, {"stride": s, "padding": p}, list(inputs), gen)

    reset("upsample")
    for name, shape in [("nearest2x_tail", (2, 3, 5, 21)), ("nearest2x_small", (1, 2, 3, 8))]:
        save_case("upsample", name, {"x": rand(gen, *shape)},
                  lambda x: F.interpolate(x, scale_factor=2.0, mode="nearest"), {"scale_factor": 2}, ["x"], gen)


if __name__ == "__main__":
    gen = torch.Generator().manual_seed(20261122)
    rope_cases(gen)
    attention_cases(gen)
    conv_cases(gen)
    print("wrote", ROOT)
