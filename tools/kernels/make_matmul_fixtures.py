#!/usr/bin/env python3
"""Reference fixtures for MedVL.Kernels.MatMul, computed by PyTorch (run with Debian's /usr/bin/python3 + python3-torch).

Writes tests/fixtures/kernels/matmul_*.npy. Inputs are float32 (weights also as raw bf16/f16 bits, uint16);
outputs are computed in float64 from exactly those float32/bf16/f16 values, then stored as float32, so the test
compares MedVL's float32 kernels against an independent, more accurate result.
Usage: /usr/bin/python3 tools/kernels/make_matmul_fixtures.py
"""
import os
import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "kernels")
os.makedirs(OUT, exist_ok=True)
g = torch.Generator().manual_seed(20261122)


def rnd(*shape):
    return torch.randn(*shape, generator=g, dtype=torch.float32)


def save(name, t):
    arr = t.numpy() if isinstance(t, torch.Tensor) else t
    np.save(os.path.join(OUT, f"matmul_{name}.npy"), np.ascontiguousarray(arr))


def bits16(t):  # raw bits of a bf16/f16 tensor as uint16
    return t.contiguous().view(torch.int16).numpy().view(np.uint16)


# 1. addmm with transposed operands: C = alpha * op(A) @ op(B) + beta * C, M=37 N=70 K=300 (K crosses a 256 block)
M, N, K = 37, 70, 300
A_t = rnd(K, M)          # stored transposed (transA)
B = rnd(K, N)            # stored as is
C0 = rnd(M, N)
alpha, beta = 0.75, -0.5
C = (alpha * (A_t.double().t() @ B.double()) + beta * C0.double()).float()
save("addmm_at", A_t); save("addmm_b", B); save("addmm_c0", C0); save("addmm_out", C)

# 2. batched matmul (torch.bmm) with B transposed: out[i] = A[i] @ B[i]^T
Bt, M2, N2, K2 = 3, 17, 33, 65
A2 = rnd(Bt, M2, K2); B2 = rnd(Bt, N2, K2)
save("bmm_a", A2); save("bmm_bt", B2); save("bmm_out", torch.bmm(A2.double(), B2.double().transpose(1, 2)).float())

# 3. nn.Linear with f32 / bf16 / f16 weights, decode (M=1), small batch (M=5) and prefill (M=40)
K3, N3 = 129, 67
W = rnd(N3, K3) * 0.1
bias = rnd(N3)
save("linear_w_f32", W); save("linear_bias", bias)
w_bf16 = W.to(torch.bfloat16); w_f16 = W.to(torch.float16)
save("linear_w_bf16", bits16(w_bf16)); save("linear_w_f16", bits16(w_f16))
for m in (1, 5, 40):
    x = rnd(m, K3)
    save(f"linear_x_m{m}", x)
    save(f"linear_out_f32_m{m}", F.linear(x.double(), W.double(), bias.double()).float())
    save(f"linear_out_bf16_m{m}", F.linear(x.double(), w_bf16.double(), bias.double()).float())
    save(f"linear_out_f16_m{m}", F.linear(x.double(), w_f16.double(), None).float())  # f16 case without bias
print("wrote", sorted(f for f in os.listdir(OUT) if f.startswith("matmul_")))
