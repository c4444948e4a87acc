using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MedVL.Tensors;

namespace MedVL.Kernels.Gemm;

/// <summary>Loads 16 consecutive weights widened to float32 in one zmm register.</summary>
internal unsafe interface IVectorWeightLoader : IElementReader
{
    static abstract Vector512<float> Load16(void* p, nint i);
    /// <summary>Bytes per stored element (for prefetch addresses).</summary>
    static abstract int ElementBytes { get; }
}

internal unsafe struct F32VecLoader : IVectorWeightLoader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Read(void* p, nint i) => ((float*)p)[i];
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(void* p, nint i) => Vector512.Load((float*)p + i);
    public static int ElementBytes => 4;
}

internal unsafe struct BF16VecLoader : IVectorWeightLoader
{
    public static int ElementBytes => 2;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Read(void* p, nint i) => BitConverter.Int32BitsToSingle(((ushort*)p)[i] << 16);
    // Zero-extend 16×u16 to 16×u32 (vpmovzxwd) and shift into the high half: exactly bf16 → f32.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(void* p, nint i) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)p + i)), 16).AsSingle();
}

internal unsafe struct F16VecLoader : IVectorWeightLoader
{
    public static int ElementBytes => 2;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Read(void* p, nint i) => (float)BitConverter.UInt16BitsToHalf(((ushort*)p)[i]);

    /// <summary>
    /// IEEE half → single without F16C intrinsics: shift exponent+mantissa into place and multiply by 2^112 to rebias
    /// (this also normalises subnormals exactly); Inf/NaN (exponent 31) get the all-ones float exponent.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(void* p, nint i)
    {
        var h = Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)p + i));
        var em = h & Vector512.Create(0x7FFFu);
        var sign = (h & Vector512.Create(0x8000u)) << 16;
        var shifted = em << 13;
        var scaled = (shifted.AsSingle() * Vector512.Create(0x77800000u).AsSingle() /* 2^112 */).AsUInt32();
        var infNan = shifted | Vector512.Create(0x7F800000u);
        var isInfNan = Vector512.GreaterThanOrEqual(em, Vector512.Create(0x7C00u));
        return (Vector512.ConditionalSelect(isInfNan, infNan, scaled) | sign).AsSingle();
    }
}

/// <summary>
/// y[m, n] = Σ_k x[m, k]·W[n, k] (+ bias[n]) for small M (decode, M = 1; speculative/batched decode, M ≤ 16),
/// W in nn.Linear layout [N, K] of f32, bf16 or f16. Memory-bound: every weight is read exactly once from DRAM
/// (rows are split over threads; for M &gt; 1 the few x rows are re-applied to a 4-row W block that is still in cache).
/// </summary>
internal static unsafe class GemvKernels
{
    private const int RowsPerBlock = 4;

    /// <summary>One row at a time: the rows of a task form one sequential stream (what hardware prefetchers like best).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot1Stream<TLoad>(float* x, void* w, nint rowOff, int k) where TLoad : struct, IVectorWeightLoader
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        // Software prefetch 2 KB ahead in the stream (it runs on into the next row, which this task reads next).
        byte* pf = (byte*)w + rowOff * TLoad.ElementBytes + 2048;
        int p = 0;
        for (; p <= k - 64; p += 64)
        {
            byte* q = pf + (nint)p * TLoad.ElementBytes;
            Sse.Prefetch0(q); Sse.Prefetch0(q + 64);
            if (TLoad.ElementBytes == 4) { Sse.Prefetch0(q + 128); Sse.Prefetch0(q + 192); }
            a0 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, rowOff + p), Vector512.Load(x + p), a0);
            a1 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, rowOff + p + 16), Vector512.Load(x + p + 16), a1);
            a2 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, rowOff + p + 32), Vector512.Load(x + p + 32), a2);
            a3 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, rowOff + p + 48), Vector512.Load(x + p + 48), a3);
        }
        for (; p <= k - 16; p += 16) a0 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, rowOff + p), Vector512.Load(x + p), a0);
        float s = Vector512.Sum((a0 + a1) + (a2 + a3));
        for (; p < k; p++) s = MathF.FusedMultiplyAdd(TLoad.Read(w, rowOff + p), x[p], s);
        return s;
    }

    public static void Run(DType wType, float* x, nint ldx, int m, void* w, nint ldw, int n, int k, float* bias, float* y, nint ldy, int maxThreads)
    {
        switch (wType)
        {
            case DType.F32: Run<F32VecLoader>(x, ldx, m, w, ldw, n, k, bias, y, ldy, maxThreads); break;
            case DType.BF16: Run<BF16VecLoader>(x, ldx, m, w, ldw, n, k, bias, y, ldy, maxThreads); break;
            case DType.F16: Run<F16VecLoader>(x, ldx, m, w, ldw, n, k, bias, y, ldy, maxThreads); break;
            default: throw new NotSupportedException($"Linear weight dtype {wType} is not supported (expected F32, BF16 or F16).");
        }
    }

    private static void Run<TLoad>(float* x, nint ldx, int m, void* w, nint ldw, int n, int k, float* bias, float* y, nint ldy, int maxThreads)
        where TLoad : struct, IVectorWeightLoader
    {
        int threads = ParallelRuntime.InParallelRegion ? 1 : ParallelRuntime.ResolveThreads(maxThreads);
        // Enough tasks for dynamic balancing, each a whole number of 4-row blocks and at least ~64 KB of weights.
        long bytesPerRow = (long)k * (typeof(TLoad) == typeof(F32VecLoader) ? 4 : 2);
        int minRows = (int)Math.Clamp(65536 / Math.Max(bytesPerRow, 1), RowsPerBlock, 4096);
        int rowsPerTask = ParallelRuntime.ChunkSize(n, threads * 8, RowsPerBlock);
        rowsPerTask = Math.Max(rowsPerTask, (minRows + RowsPerBlock - 1) / RowsPerBlock * RowsPerBlock);
        var job = new GemvJob<TLoad> { X = x, Ldx = ldx, M = m, W = w, Ldw = ldw, N = n, K = k, Bias = bias, Y = y, Ldy = ldy, RowsPerTask = rowsPerTask };
        ParallelRuntime.For((n + rowsPerTask - 1) / rowsPerTask, ref job, threads);
    }

    private struct GemvJob<TLoad> : IParallelJob where TLoad : struct, IVectorWeightLoader
    {
        public float* X; public nint Ldx; public int M;
        public void* W; public nint Ldw; public int N, K;
        public float* Bias, Y; public nint Ldy;
        public int RowsPerTask;

        public void Execute(int index)
        {
            int r0 = index * RowsPerTask, r1 = Math.Min(r0 + RowsPerTask, N);
            RowRange<TLoad>(X, Ldx, M, W, Ldw, K, Bias, Y, Ldy, r0, r1);
        }
    }

    /// <summary>Rows [r0, r1) of y for all M inputs (single-threaded; the unit of parallel work).</summary>
    internal static void RowRange<TLoad>(float* x, nint ldx, int m, void* w, nint ldw, int k, float* bias, float* y, nint ldy, int r0, int r1)
        where TLoad : struct, IVectorWeightLoader
    {
        float* sums = stackalloc float[RowsPerBlock * 4];
        int r = r0;
        if (m == 1)
        {
            // Decode: one row at a time, so a task's rows are read as one sequential stream (measured 10–20% more
            // bandwidth than interleaving 4 rows, which splits the stream in four).
            for (; r < r1; r++) y[r] = Dot1Stream<TLoad>(x, w, r * ldw, k) + (bias != null ? bias[r] : 0f);
            return;
        }
        for (; r + RowsPerBlock <= r1; r += RowsPerBlock)
        {
            for (int m0 = 0; m0 < m; m0 += 4)
            {
                int mb = Math.Min(4, m - m0);
                if (mb == 1) Dot4x1<TLoad>(x + m0 * ldx, w, ldw, r, k, sums);
                else Dot4xM<TLoad>(x + m0 * ldx, ldx, mb, w, ldw, r, k, sums);
                for (int i = 0; i < mb; i++)
                    for (int j = 0; j < RowsPerBlock; j++)
                        y[(m0 + i) * ldy + r + j] = sums[i * RowsPerBlock + j] + (bias != null ? bias[r + j] : 0f);
            }
        }
        for (; r < r1; r++)
        {
            for (int i = 0; i < m; i++)
            {
                float s = Dot1<TLoad>(x + i * ldx, w, r * ldw, k);
                y[i * ldy + r] = s + (bias != null ? bias[r] : 0f);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot1<TLoad>(float* x, void* w, nint rowOff, int k) where TLoad : struct, IVectorWeightLoader
    {
        var acc0 = Vector512<float>.Zero; var acc1 = Vector512<float>.Zero;
        int p = 0;
        for (; p <= k - 32; p += 32)
        {
            acc0 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, rowOff + p), Vector512.Load(x + p), acc0);
            acc1 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, rowOff + p + 16), Vector512.Load(x + p + 16), acc1);
        }
        for (; p <= k - 16; p += 16) acc0 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, rowOff + p), Vector512.Load(x + p), acc0);
        float s = Vector512.Sum(acc0 + acc1);
        for (; p < k; p++) s = MathF.FusedMultiplyAdd(TLoad.Read(w, rowOff + p), x[p], s);
        return s;
    }

    /// <summary>4 weight rows × 1 input: 8 independent FMA chains (2 per row) hide the FMA latency.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4x1<TLoad>(float* x, void* w, nint ldw, int r, int k, float* sums) where TLoad : struct, IVectorWeightLoader
    {
        nint o0 = r * ldw, o1 = o0 + ldw, o2 = o1 + ldw, o3 = o2 + ldw;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        // Prefetch the same depths of the next 4-row block (one block ahead ≈ a DRAM latency at full bandwidth): the
        // rows are short streams (K elements) on which the hardware prefetcher alone leaves bandwidth unused.
        byte* pf = (byte*)w + (o0 + 4 * ldw) * TLoad.ElementBytes;
        nint pfRow = ldw * TLoad.ElementBytes;
        int pfStep = 64 / TLoad.ElementBytes; // elements per cache line
        int p = 0;
        for (; p <= k - 32; p += 32)
        {
            byte* q = pf + (nint)p * TLoad.ElementBytes;
            Sse.Prefetch0(q); Sse.Prefetch0(q + pfRow); Sse.Prefetch0(q + 2 * pfRow); Sse.Prefetch0(q + 3 * pfRow);
            if (pfStep == 16) // f32: 32 elements span two lines per row
            {
                q += 64;
                Sse.Prefetch0(q); Sse.Prefetch0(q + pfRow); Sse.Prefetch0(q + 2 * pfRow); Sse.Prefetch0(q + 3 * pfRow);
            }
            var x0 = Vector512.Load(x + p);
            var x1 = Vector512.Load(x + p + 16);
            a0 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, o0 + p), x0, a0);
            a1 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, o1 + p), x0, a1);
            a2 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, o2 + p), x0, a2);
            a3 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, o3 + p), x0, a3);
            b0 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, o0 + p + 16), x1, b0);
            b1 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, o1 + p + 16), x1, b1);
            b2 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, o2 + p + 16), x1, b2);
            b3 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, o3 + p + 16), x1, b3);
        }
        for (; p <= k - 16; p += 16)
        {
            var x0 = Vector512.Load(x + p);
            a0 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, o0 + p), x0, a0);
            a1 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, o1 + p), x0, a1);
            a2 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, o2 + p), x0, a2);
            a3 = Avx512F.FusedMultiplyAdd(TLoad.Load16(w, o3 + p), x0, a3);
        }
        float s0 = Vector512.Sum(a0 + b0), s1 = Vector512.Sum(a1 + b1), s2 = Vector512.Sum(a2 + b2), s3 = Vector512.Sum(a3 + b3);
        for (; p < k; p++)
        {
            float xv = x[p];
            s0 = MathF.FusedMultiplyAdd(TLoad.Read(w, o0 + p), xv, s0);
            s1 = MathF.FusedMultiplyAdd(TLoad.Read(w, o1 + p), xv, s1);
            s2 = MathF.FusedMultiplyAdd(TLoad.Read(w, o2 + p), xv, s2);
            s3 = MathF.FusedMultiplyAdd(TLoad.Read(w, o3 + p), xv, s3);
        }
        sums[0] = s0; sums[1] = s1; sums[2] = s2; sums[3] = s3;
    }

    /// <summary>4 weight rows × mb (2..4) inputs: each weight vector is widened once and used mb times.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4xM<TLoad>(float* x, nint ldx, int mb, void* w, nint ldw, int r, int k, float* sums) where TLoad : struct, IVectorWeightLoader
    {
        nint o0 = r * ldw, o1 = o0 + ldw, o2 = o1 + ldw, o3 = o2 + ldw;
        // Rows of x beyond mb alias row 0 (computed and discarded) so the loop body has no branches.
        float* x0 = x, x1 = mb > 1 ? x + ldx : x, x2 = mb > 2 ? x + 2 * ldx : x, x3 = mb > 3 ? x + 3 * ldx : x;
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        int p = 0;
        for (; p <= k - 16; p += 16)
        {
            var w0 = TLoad.Load16(w, o0 + p); var w1 = TLoad.Load16(w, o1 + p);
            var w2 = TLoad.Load16(w, o2 + p); var w3 = TLoad.Load16(w, o3 + p);
            var xv = Vector512.Load(x0 + p);
            c00 = Avx512F.FusedMultiplyAdd(w0, xv, c00); c01 = Avx512F.FusedMultiplyAdd(w1, xv, c01);
            c02 = Avx512F.FusedMultiplyAdd(w2, xv, c02); c03 = Avx512F.FusedMultiplyAdd(w3, xv, c03);
            xv = Vector512.Load(x1 + p);
            c10 = Avx512F.FusedMultiplyAdd(w0, xv, c10); c11 = Avx512F.FusedMultiplyAdd(w1, xv, c11);
            c12 = Avx512F.FusedMultiplyAdd(w2, xv, c12); c13 = Avx512F.FusedMultiplyAdd(w3, xv, c13);
            xv = Vector512.Load(x2 + p);
            c20 = Avx512F.FusedMultiplyAdd(w0, xv, c20); c21 = Avx512F.FusedMultiplyAdd(w1, xv, c21);
            c22 = Avx512F.FusedMultiplyAdd(w2, xv, c22); c23 = Avx512F.FusedMultiplyAdd(w3, xv, c23);
            xv = Vector512.Load(x3 + p);
            c30 = Avx512F.FusedMultiplyAdd(w0, xv, c30); c31 = Avx512F.FusedMultiplyAdd(w1, xv, c31);
            c32 = Avx512F.FusedMultiplyAdd(w2, xv, c32); c33 = Avx512F.FusedMultiplyAdd(w3, xv, c33);
        }
        sums[0] = Vector512.Sum(c00); sums[1] = Vector512.Sum(c01); sums[2] = Vector512.Sum(c02); sums[3] = Vector512.Sum(c03);
        sums[4] = Vector512.Sum(c10); sums[5] = Vector512.Sum(c11); sums[6] = Vector512.Sum(c12); sums[7] = Vector512.Sum(c13);
        sums[8] = Vector512.Sum(c20); sums[9] = Vector512.Sum(c21); sums[10] = Vector512.Sum(c22); sums[11] = Vector512.Sum(c23);
        sums[12] = Vector512.Sum(c30); sums[13] = Vector512.Sum(c31); sums[14] = Vector512.Sum(c32); sums[15] = Vector512.Sum(c33);
        for (; p < k; p++)
        {
            float v0 = TLoad.Read(w, o0 + p), v1 = TLoad.Read(w, o1 + p), v2 = TLoad.Read(w, o2 + p), v3 = TLoad.Read(w, o3 + p);
            for (int i = 0; i < 4; i++)
            {
                float xv = (i == 0 ? x0 : i == 1 ? x1 : i == 2 ? x2 : x3)[p];
                sums[i * 4 + 0] = MathF.FusedMultiplyAdd(v0, xv, sums[i * 4 + 0]);
                sums[i * 4 + 1] = MathF.FusedMultiplyAdd(v1, xv, sums[i * 4 + 1]);
                sums[i * 4 + 2] = MathF.FusedMultiplyAdd(v2, xv, sums[i * 4 + 2]);
                sums[i * 4 + 3] = MathF.FusedMultiplyAdd(v3, xv, sums[i * 4 + 3]);
            }
        }
    }
}
