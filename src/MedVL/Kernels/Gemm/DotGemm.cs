using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MedVL.Tensors;

namespace MedVL.Kernels.Gemm;

/// <summary>
/// y[m, n] = Σ_k x[m, k]·W[n, k] (+ bias[n]) for prefill-sized M (a prompt chunk: 17 … a few hundred rows), W in nn.Linear
/// layout [N, K] of f32, bf16 or f16, with no packing: both operands are read along K, which is contiguous in both, so
/// each register tile of 4 rows of x × 6 rows of W keeps 24 accumulators of 16 K-lanes and reduces them horizontally
/// once at the end (the scheme of llamafile's tinyBLAS sgemm). The packed GEMM instead transposes W into K-major
/// panels first, which for M ≈ 128 cost about a quarter of the prefill time (perf, 168M Llama, f32). Each task owns a
/// band of W rows (read from DRAM once) and sweeps all of x over it (x stays in L2: M·K·4 bytes).
/// </summary>
internal static unsafe class DotGemm
{
    private const int RowsX = 4, RowsW = 6;

    public static void Run(DType wType, float* x, int m, int k, void* w, int n, float* bias, float* y, int maxThreads)
    {
        switch (wType)
        {
            case DType.F32: Run<F32VecLoader>(x, m, k, w, n, bias, y, maxThreads); break;
            case DType.BF16: Run<BF16VecLoader>(x, m, k, w, n, bias, y, maxThreads); break;
            case DType.F16: Run<F16VecLoader>(x, m, k, w, n, bias, y, maxThreads); break;
            default: throw new NotSupportedException($"Linear weight dtype {wType} is not supported (expected F32, BF16 or F16).");
        }
    }

    private static void Run<TLoad>(float* x, int m, int k, void* w, int n, float* bias, float* y, int maxThreads)
        where TLoad : struct, IVectorWeightLoader
    {
        int threads = ParallelRuntime.InParallelRegion ? 1 : ParallelRuntime.ResolveThreads(maxThreads);
        // Several bands per thread for dynamic balancing; a band is a whole number of 6-row groups.
        int rowsPerTask = ParallelRuntime.ChunkSize(n, threads * 8, RowsW);
        var job = new Job<TLoad> { X = x, M = m, K = k, W = w, N = n, Bias = bias, Y = y, RowsPerTask = rowsPerTask };
        ParallelRuntime.For((n + rowsPerTask - 1) / rowsPerTask, ref job, threads);
    }

    private struct Job<TLoad> : IParallelJob where TLoad : struct, IVectorWeightLoader
    {
        public float* X; public int M, K;
        public void* W; public int N;
        public float* Bias, Y;
        public int RowsPerTask;

        public void Execute(int index)
        {
            int r0 = index * RowsPerTask, r1 = Math.Min(r0 + RowsPerTask, N);
            float* sums = stackalloc float[RowsX * RowsW];
            for (int j0 = r0; j0 < r1; j0 += RowsW)
            {
                int nb = Math.Min(RowsW, r1 - j0);
                for (int i0 = 0; i0 < M; i0 += RowsX)
                {
                    int mb = Math.Min(RowsX, M - i0);
                    Tile<TLoad>(X + (nint)i0 * K, mb, W, j0, nb, K, sums);
                    for (int i = 0; i < mb; i++)
                        for (int j = 0; j < nb; j++)
                            Y[(nint)(i0 + i) * N + j0 + j] = sums[i * RowsW + j] + (Bias != null ? Bias[j0 + j] : 0f);
                }
            }
        }
    }

    /// <summary>
    /// sums[i·6 + j] = x[i]·W[j0 + j] for i &lt; mb, j &lt; nb. Rows beyond mb / nb alias the first row (computed, never
    /// stored), so the loop body has no branches.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TLoad>(float* x, int mb, void* w, int j0, int nb, int k, float* sums) where TLoad : struct, IVectorWeightLoader
    {
        float* x0 = x, x1 = mb > 1 ? x + k : x, x2 = mb > 2 ? x + 2 * k : x, x3 = mb > 3 ? x + 3 * k : x;
        nint o0 = (nint)j0 * k;
        nint o1 = nb > 1 ? o0 + k : o0, o2 = nb > 2 ? o0 + 2 * k : o0, o3 = nb > 3 ? o0 + 3 * k : o0;
        nint o4 = nb > 4 ? o0 + 4 * k : o0, o5 = nb > 5 ? o0 + 5 * k : o0;
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default, c24 = default, c25 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default, c34 = default, c35 = default;
        int p = 0;
        for (; p <= k - 16; p += 16)
        {
            var b0 = TLoad.Load16(w, o0 + p);
            var b1 = TLoad.Load16(w, o1 + p);
            var b2 = TLoad.Load16(w, o2 + p);
            var b3 = TLoad.Load16(w, o3 + p);
            var b4 = TLoad.Load16(w, o4 + p);
            var b5 = TLoad.Load16(w, o5 + p);
            var a = Vector512.Load(x0 + p);
            c00 = Avx512F.FusedMultiplyAdd(a, b0, c00); c01 = Avx512F.FusedMultiplyAdd(a, b1, c01); c02 = Avx512F.FusedMultiplyAdd(a, b2, c02);
            c03 = Avx512F.FusedMultiplyAdd(a, b3, c03); c04 = Avx512F.FusedMultiplyAdd(a, b4, c04); c05 = Avx512F.FusedMultiplyAdd(a, b5, c05);
            a = Vector512.Load(x1 + p);
            c10 = Avx512F.FusedMultiplyAdd(a, b0, c10); c11 = Avx512F.FusedMultiplyAdd(a, b1, c11); c12 = Avx512F.FusedMultiplyAdd(a, b2, c12);
            c13 = Avx512F.FusedMultiplyAdd(a, b3, c13); c14 = Avx512F.FusedMultiplyAdd(a, b4, c14); c15 = Avx512F.FusedMultiplyAdd(a, b5, c15);
            a = Vector512.Load(x2 + p);
            c20 = Avx512F.FusedMultiplyAdd(a, b0, c20); c21 = Avx512F.FusedMultiplyAdd(a, b1, c21); c22 = Avx512F.FusedMultiplyAdd(a, b2, c22);
            c23 = Avx512F.FusedMultiplyAdd(a, b3, c23); c24 = Avx512F.FusedMultiplyAdd(a, b4, c24); c25 = Avx512F.FusedMultiplyAdd(a, b5, c25);
            a = Vector512.Load(x3 + p);
            c30 = Avx512F.FusedMultiplyAdd(a, b0, c30); c31 = Avx512F.FusedMultiplyAdd(a, b1, c31); c32 = Avx512F.FusedMultiplyAdd(a, b2, c32);
            c33 = Avx512F.FusedMultiplyAdd(a, b3, c33); c34 = Avx512F.FusedMultiplyAdd(a, b4, c34); c35 = Avx512F.FusedMultiplyAdd(a, b5, c35);
        }
        sums[0] = Vector512.Sum(c00); sums[1] = Vector512.Sum(c01); sums[2] = Vector512.Sum(c02);
        sums[3] = Vector512.Sum(c03); sums[4] = Vector512.Sum(c04); sums[5] = Vector512.Sum(c05);
        sums[6] = Vector512.Sum(c10); sums[7] = Vector512.Sum(c11); sums[8] = Vector512.Sum(c12);
        sums[9] = Vector512.Sum(c13); sums[10] = Vector512.Sum(c14); sums[11] = Vector512.Sum(c15);
        sums[12] = Vector512.Sum(c20); sums[13] = Vector512.Sum(c21); sums[14] = Vector512.Sum(c22);
        sums[15] = Vector512.Sum(c23); sums[16] = Vector512.Sum(c24); sums[17] = Vector512.Sum(c25);
        sums[18] = Vector512.Sum(c30); sums[19] = Vector512.Sum(c31); sums[20] = Vector512.Sum(c32);
        sums[21] = Vector512.Sum(c33); sums[22] = Vector512.Sum(c34); sums[23] = Vector512.Sum(c35);
        if (p < k)
        {
            float** xs = stackalloc float*[RowsX] { x0, x1, x2, x3 };
            nint* os = stackalloc nint[RowsW] { o0, o1, o2, o3, o4, o5 };
            for (int i = 0; i < RowsX; i++)
                for (int j = 0; j < RowsW; j++)
                {
                    float s = sums[i * RowsW + j];
                    for (int q = p; q < k; q++) s = MathF.FusedMultiplyAdd(xs[i][q], TLoad.Read(w, os[j] + q), s);
                    sums[i * RowsW + j] = s;
                }
        }
    }
}
