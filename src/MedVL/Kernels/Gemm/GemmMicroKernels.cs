using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MedVL.Kernels.Gemm;

/// <summary>Which micro-kernel family a GEMM uses. Tests force each one to compare it with the scalar reference.</summary>
internal enum GemmIsa
{
    Scalar,
    Avx2,
    Avx512,
}

/// <summary>
/// Register-blocked micro-kernels (the innermost loop of the BLIS/GotoBLAS algorithm, Goto &amp; van de Geijn 2008,
/// "Anatomy of high-performance matrix multiplication" §6). Each computes one MR×NR tile of C from a packed A
/// micro-panel (kc × MR, k-major) and a packed B micro-panel (kc × NR, k-major):
/// <c>C = alpha * (Ã·B̃) + beta * C</c>; beta == 0 means C is not read (BLAS semantics: NaNs in C are overwritten).
/// </summary>
internal static unsafe class GemmMicroKernels
{
    public const int MR = 6;

    /// <summary>Best ISA on this machine.</summary>
    public static GemmIsa BestIsa =>
        Avx512F.IsSupported ? GemmIsa.Avx512 : (Fma.IsSupported && Avx2.IsSupported ? GemmIsa.Avx2 : GemmIsa.Scalar);

    public static int NR(GemmIsa isa) => isa switch { GemmIsa.Avx512 => 64, _ => 16 };

    /// <summary>Full MR×NR tile of the given ISA.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run(GemmIsa isa, int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta)
    {
        switch (isa)
        {
            case GemmIsa.Avx512: Kernel6x64Avx512(kc, pa, pb, c, ldc, alpha, beta); break;
            case GemmIsa.Avx2: Kernel6x16Avx2(kc, pa, pb, c, ldc, alpha, beta); break;
            default: Kernel6xNScalar(kc, pa, pb, c, ldc, alpha, beta, 16); break;
        }
    }

    /// <summary>
    /// Partial tile (mr ≤ MR rows, nr ≤ NR columns valid): the full tile is computed into a stack buffer
    /// (packed panels are zero-padded), then the valid part is merged into C.
    /// </summary>
    public static void RunEdge(GemmIsa isa, int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta, int mr, int nr)
    {
        int nrFull = NR(isa);
        float* tile = stackalloc float[MR * 64 + 16];
        float* t = (float*)(((nint)tile + 63) & ~(nint)63);
        Run(isa, kc, pa, pb, t, nrFull, 1f, 0f);
        for (int i = 0; i < mr; i++)
        {
            float* crow = c + i * ldc;
            float* trow = t + i * nrFull;
            if (beta == 0f) for (int j = 0; j < nr; j++) crow[j] = alpha * trow[j];
            else for (int j = 0; j < nr; j++) crow[j] = alpha * trow[j] + beta * crow[j];
        }
    }

    /// <summary>6×64 tile: 24 zmm accumulators, 4 B loads and 6 broadcasts per k (Zen 4/5, Ice Lake+: 2 FMA/cycle).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel6x64Avx512(int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c43 = default;
        Vector512<float> c50 = default, c51 = default, c52 = default, c53 = default;

        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(pb);
            var b1 = Vector512.Load(pb + 16);
            var b2 = Vector512.Load(pb + 32);
            var b3 = Vector512.Load(pb + 48);
            var a = Vector512.Create(pa[0]);
            c00 = Avx512F.FusedMultiplyAdd(a, b0, c00); c01 = Avx512F.FusedMultiplyAdd(a, b1, c01);
            c02 = Avx512F.FusedMultiplyAdd(a, b2, c02); c03 = Avx512F.FusedMultiplyAdd(a, b3, c03);
            a = Vector512.Create(pa[1]);
            c10 = Avx512F.FusedMultiplyAdd(a, b0, c10); c11 = Avx512F.FusedMultiplyAdd(a, b1, c11);
            c12 = Avx512F.FusedMultiplyAdd(a, b2, c12); c13 = Avx512F.FusedMultiplyAdd(a, b3, c13);
            a = Vector512.Create(pa[2]);
            c20 = Avx512F.FusedMultiplyAdd(a, b0, c20); c21 = Avx512F.FusedMultiplyAdd(a, b1, c21);
            c22 = Avx512F.FusedMultiplyAdd(a, b2, c22); c23 = Avx512F.FusedMultiplyAdd(a, b3, c23);
            a = Vector512.Create(pa[3]);
            c30 = Avx512F.FusedMultiplyAdd(a, b0, c30); c31 = Avx512F.FusedMultiplyAdd(a, b1, c31);
            c32 = Avx512F.FusedMultiplyAdd(a, b2, c32); c33 = Avx512F.FusedMultiplyAdd(a, b3, c33);
            a = Vector512.Create(pa[4]);
            c40 = Avx512F.FusedMultiplyAdd(a, b0, c40); c41 = Avx512F.FusedMultiplyAdd(a, b1, c41);
            c42 = Avx512F.FusedMultiplyAdd(a, b2, c42); c43 = Avx512F.FusedMultiplyAdd(a, b3, c43);
            a = Vector512.Create(pa[5]);
            c50 = Avx512F.FusedMultiplyAdd(a, b0, c50); c51 = Avx512F.FusedMultiplyAdd(a, b1, c51);
            c52 = Avx512F.FusedMultiplyAdd(a, b2, c52); c53 = Avx512F.FusedMultiplyAdd(a, b3, c53);
            pa += MR;
            pb += 64;
        }

        var va = Vector512.Create(alpha);
        if (beta == 0f)
        {
            Store0(c, va, c00, c01, c02, c03); c += ldc;
            Store0(c, va, c10, c11, c12, c13); c += ldc;
            Store0(c, va, c20, c21, c22, c23); c += ldc;
            Store0(c, va, c30, c31, c32, c33); c += ldc;
            Store0(c, va, c40, c41, c42, c43); c += ldc;
            Store0(c, va, c50, c51, c52, c53);
        }
        else
        {
            var vb = Vector512.Create(beta);
            StoreB(c, va, vb, c00, c01, c02, c03); c += ldc;
            StoreB(c, va, vb, c10, c11, c12, c13); c += ldc;
            StoreB(c, va, vb, c20, c21, c22, c23); c += ldc;
            StoreB(c, va, vb, c30, c31, c32, c33); c += ldc;
            StoreB(c, va, vb, c40, c41, c42, c43); c += ldc;
            StoreB(c, va, vb, c50, c51, c52, c53);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store0(float* c, Vector512<float> va, Vector512<float> x0, Vector512<float> x1, Vector512<float> x2, Vector512<float> x3)
    {
        (va * x0).Store(c);
        (va * x1).Store(c + 16);
        (va * x2).Store(c + 32);
        (va * x3).Store(c + 48);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreB(float* c, Vector512<float> va, Vector512<float> vb, Vector512<float> x0, Vector512<float> x1, Vector512<float> x2, Vector512<float> x3)
    {
        Avx512F.FusedMultiplyAdd(va, x0, vb * Vector512.Load(c)).Store(c);
        Avx512F.FusedMultiplyAdd(va, x1, vb * Vector512.Load(c + 16)).Store(c + 16);
        Avx512F.FusedMultiplyAdd(va, x2, vb * Vector512.Load(c + 32)).Store(c + 32);
        Avx512F.FusedMultiplyAdd(va, x3, vb * Vector512.Load(c + 48)).Store(c + 48);
    }

    /// <summary>6×16 tile for AVX2+FMA machines: 12 ymm accumulators (16 ymm registers in total).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel6x16Avx2(int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(pb);
            var b1 = Vector256.Load(pb + 8);
            var a = Vector256.Create(pa[0]);
            c00 = Fma.MultiplyAdd(a, b0, c00); c01 = Fma.MultiplyAdd(a, b1, c01);
            a = Vector256.Create(pa[1]);
            c10 = Fma.MultiplyAdd(a, b0, c10); c11 = Fma.MultiplyAdd(a, b1, c11);
            a = Vector256.Create(pa[2]);
            c20 = Fma.MultiplyAdd(a, b0, c20); c21 = Fma.MultiplyAdd(a, b1, c21);
            a = Vector256.Create(pa[3]);
            c30 = Fma.MultiplyAdd(a, b0, c30); c31 = Fma.MultiplyAdd(a, b1, c31);
            a = Vector256.Create(pa[4]);
            c40 = Fma.MultiplyAdd(a, b0, c40); c41 = Fma.MultiplyAdd(a, b1, c41);
            a = Vector256.Create(pa[5]);
            c50 = Fma.MultiplyAdd(a, b0, c50); c51 = Fma.MultiplyAdd(a, b1, c51);
            pa += MR;
            pb += 16;
        }
        var va = Vector256.Create(alpha);
        var vb = Vector256.Create(beta);
        bool readC = beta != 0f;
        Store256(c, va, vb, readC, c00, c01); c += ldc;
        Store256(c, va, vb, readC, c10, c11); c += ldc;
        Store256(c, va, vb, readC, c20, c21); c += ldc;
        Store256(c, va, vb, readC, c30, c31); c += ldc;
        Store256(c, va, vb, readC, c40, c41); c += ldc;
        Store256(c, va, vb, readC, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* c, Vector256<float> va, Vector256<float> vb, bool readC, Vector256<float> x0, Vector256<float> x1)
    {
        if (readC)
        {
            Fma.MultiplyAdd(va, x0, vb * Vector256.Load(c)).Store(c);
            Fma.MultiplyAdd(va, x1, vb * Vector256.Load(c + 8)).Store(c + 8);
        }
        else
        {
            (va * x0).Store(c);
            (va * x1).Store(c + 8);
        }
    }

    /// <summary>Portable 6×nr tile (machines without AVX2/FMA; also the twin the SIMD tiles are tested against).</summary>
    public static void Kernel6xNScalar(int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta, int nr)
    {
        float* acc = stackalloc float[MR * 64];
        new Span<float>(acc, MR * nr).Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int i = 0; i < MR; i++)
            {
                float a = pa[i];
                float* row = acc + i * nr;
                for (int j = 0; j < nr; j++) row[j] = MathF.FusedMultiplyAdd(a, pb[j], row[j]);
            }
            pa += MR;
            pb += nr;
        }
        for (int i = 0; i < MR; i++)
        {
            float* crow = c + i * ldc;
            float* row = acc + i * nr;
            if (beta == 0f) for (int j = 0; j < nr; j++) crow[j] = alpha * row[j];
            else for (int j = 0; j < nr; j++) crow[j] = alpha * row[j] + beta * crow[j];
        }
    }
}
