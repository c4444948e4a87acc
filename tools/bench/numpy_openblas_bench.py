#!/usr/bin/env python3
"""Side-by-side baseline for `medvl bench kernels`: the same cases through NumPy + OpenBLAS.

Setup (Debian): apt-get install python3-numpy libopenblas0-pthread   (update-alternatives then points
libblas.so.3 at openblas-pthread; this script refuses to run on the reference BLAS).
Run with Debian's interpreter:  /usr/bin/python3 tools/bench/numpy_openblas_bench.py [--threads T] [--runs R]
Thread count: OPENBLAS_NUM_THREADS is set from --threads before NumPy is imported.
Prints JSON lines {"case", "value", "unit", "sd", "runs", "threads"} like `medvl bench kernels --json`.
"""
import argparse, json, os, statistics, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--runs", type=int, default=7)
ap.add_argument("--filter", default="")
args = ap.parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

import numpy as np  # noqa: E402

blas = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
if "openblas" not in blas:
    sys.exit(f"numpy's libblas.so.3 resolves to {blas}, not OpenBLAS: apt-get install libopenblas0-pthread")


def measure(fn, runs):
    t0 = time.perf_counter(); warm = 0
    while warm < 2 or time.perf_counter() - t0 < 0.2:
        fn(); warm += 1
    per = (time.perf_counter() - t0) / warm
    reps = max(1, int(0.02 / per + 0.999))
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        out.append((time.perf_counter() - t) / reps)
    return out


def report(case, work, scale, unit, times):
    vals = sorted(work / t / scale for t in times)
    print(json.dumps({"case": case, "value": round(vals[len(vals) // 2], 3), "unit": unit,
                      "sd": round(statistics.stdev(vals), 3) if len(vals) > 1 else 0.0,
                      "runs": len(vals), "threads": args.threads, "impl": "numpy+openblas " + blas}), flush=True)


rng = np.random.default_rng(1)
for n in (512, 1024, 2048, 4096):
    case = f"matmul_f32_{n}"
    if args.filter not in case: continue
    a = rng.standard_normal((n, n), dtype=np.float32); b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    report(case, 2.0 * n ** 3, 1e9, "GFLOP/s", measure(lambda: np.matmul(a, b, out=c), args.runs))

K, N = 3072, 9216
case = f"matvec_f32_1x{K}x{N}"
if args.filter in case:
    w = rng.standard_normal((N, K), dtype=np.float32); x = rng.standard_normal((1, K), dtype=np.float32)
    y = np.empty((1, N), np.float32)
    t = measure(lambda: np.matmul(x, w.T, out=y), args.runs)  # sgemv on the [N,K] weight, as nn.Linear
    report(case, N * K * 4.0, 1e9, "GB/s", t)
    report(case, 2.0 * N * K, 1e9, "GFLOP/s", t)

case = "memcpy_256MiB"
if args.filter in case:
    src = np.ones(256 << 20, np.uint8); dst = np.empty_like(src)
    report(case, float(256 << 20), 1e9, "GB/s", measure(lambda: np.copyto(dst, src), args.runs))  # single-threaded copy
