using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MedVL.Kernels;

/// <summary>
/// Register-blocked C[M,N] (+)= A[M,K]·B[K,N] for the small blocks inside flash attention (QKᵀ against a
/// pre-transposed key block, P·V, and the backward products) and, until the shared GEMM lands, convolution's im2col
/// product. Row-major with leading dimensions. Tile: 4 rows × 32 columns = 8 Vector512 accumulators, each B row
/// loaded once per k and each A element broadcast once per k (the BLIS micro-kernel shape), Vector256 fallback,
/// scalar column tail. Scalar twin: <see cref="Scalar.MicroGemmScalar"/>.
/// </summary>
internal static unsafe class MicroGemm
{
    public static void Multiply(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, bool accumulate)
    {
        if (m <= 0 || n <= 0) return;
        if (k <= 0)
        {
            if (!accumulate)
                for (int i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
            return;
        }
        if (Vector512.IsHardwareAccelerated) Multiply512(a, lda, b, ldb, c, ldc, m, n, k, accumulate);
        else if (Vector256.IsHardwareAccelerated) Multiply256(a, lda, b, ldb, c, ldc, m, n, k, accumulate);
        else MultiplyScalarCols(a, lda, b, ldb, c, ldc, 0, m, 0, n, k, accumulate);
    }

    private static void Multiply512(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, bool acc)
    {
        int n32 = n & ~31, n16 = n & ~15;
        int i = 0;
        for (; i + 4 <= m; i += 4)
        {
            float* a0 = a + (long)i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
            float* c0 = c + (long)i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
            int j = 0;
            for (; j < n32; j += 32)
            {
                Vector512<float> x00, x01, x10, x11, x20, x21, x30, x31;
                if (acc)
                {
                    x00 = Vector512.Load(c0 + j); x01 = Vector512.Load(c0 + j + 16);
                    x10 = Vector512.Load(c1 + j); x11 = Vector512.Load(c1 + j + 16);
                    x20 = Vector512.Load(c2 + j); x21 = Vector512.Load(c2 + j + 16);
                    x30 = Vector512.Load(c3 + j); x31 = Vector512.Load(c3 + j + 16);
                }
                else
                {
                    x00 = x01 = x10 = x11 = x20 = x21 = x30 = x31 = Vector512<float>.Zero;
                }
                float* bp = b + j;
                for (int p = 0; p < k; p++, bp += ldb)
                {
                    var b0 = Vector512.Load(bp);
                    var b1 = Vector512.Load(bp + 16);
                    var v = Vector512.Create(a0[p]);
                    x00 = Vector512.FusedMultiplyAdd(v, b0, x00); x01 = Vector512.FusedMultiplyAdd(v, b1, x01);
                    v = Vector512.Create(a1[p]);
                    x10 = Vector512.FusedMultiplyAdd(v, b0, x10); x11 = Vector512.FusedMultiplyAdd(v, b1, x11);
                    v = Vector512.Create(a2[p]);
                    x20 = Vector512.FusedMultiplyAdd(v, b0, x20); x21 = Vector512.FusedMultiplyAdd(v, b1, x21);
                    v = Vector512.Create(a3[p]);
                    x30 = Vector512.FusedMultiplyAdd(v, b0, x30); x31 = Vector512.FusedMultiplyAdd(v, b1, x31);
                }
                x00.Store(c0 + j); x01.Store(c0 + j + 16);
                x10.Store(c1 + j); x11.Store(c1 + j + 16);
                x20.Store(c2 + j); x21.Store(c2 + j + 16);
                x30.Store(c3 + j); x31.Store(c3 + j + 16);
            }
            for (; j < n16; j += 16)
            {
                Vector512<float> x0, x1, x2, x3;
                if (acc) { x0 = Vector512.Load(c0 + j); x1 = Vector512.Load(c1 + j); x2 = Vector512.Load(c2 + j); x3 = Vector512.Load(c3 + j); }
                else x0 = x1 = x2 = x3 = Vector512<float>.Zero;
                float* bp = b + j;
                for (int p = 0; p < k; p++, bp += ldb)
                {
                    var b0 = Vector512.Load(bp);
                    x0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[p]), b0, x0);
                    x1 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[p]), b0, x1);
                    x2 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[p]), b0, x2);
                    x3 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[p]), b0, x3);
                }
                x0.Store(c0 + j); x1.Store(c1 + j); x2.Store(c2 + j); x3.Store(c3 + j);
            }
            if (j < n) MultiplyScalarCols(a, lda, b, ldb, c, ldc, i, i + 4, j, n, k, acc);
        }
        for (; i < m; i++)
        {
            float* a0 = a + (long)i * lda;
            float* c0 = c + (long)i * ldc;
            int j = 0;
            for (; j < n32; j += 32)
            {
                Vector512<float> x0, x1;
                if (acc) { x0 = Vector512.Load(c0 + j); x1 = Vector512.Load(c0 + j + 16); }
                else x0 = x1 = Vector512<float>.Zero;
                float* bp = b + j;
                for (int p = 0; p < k; p++, bp += ldb)
                {
                    var v = Vector512.Create(a0[p]);
                    x0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(bp), x0);
                    x1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(bp + 16), x1);
                }
                x0.Store(c0 + j); x1.Store(c0 + j + 16);
            }
            for (; j < n16; j += 16)
            {
                var x0 = acc ? Vector512.Load(c0 + j) : Vector512<float>.Zero;
                float* bp = b + j;
                for (int p = 0; p < k; p++, bp += ldb)
                    x0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[p]), Vector512.Load(bp), x0);
                x0.Store(c0 + j);
            }
            if (j < n) MultiplyScalarCols(a, lda, b, ldb, c, ldc, i, i + 1, j, n, k, acc);
        }
    }

    private static void Multiply256(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, bool acc)
    {
        int n16 = n & ~15;
        int i = 0;
        for (; i + 4 <= m; i += 4)
        {
            float* a0 = a + (long)i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
            float* c0 = c + (long)i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
            int j = 0;
            for (; j < n16; j += 16)
            {
                Vector256<float> x00, x01, x10, x11, x20, x21, x30, x31;
                if (acc)
                {
                    x00 = Vector256.Load(c0 + j); x01 = Vector256.Load(c0 + j + 8);
                    x10 = Vector256.Load(c1 + j); x11 = Vector256.Load(c1 + j + 8);
                    x20 = Vector256.Load(c2 + j); x21 = Vector256.Load(c2 + j + 8);
                    x30 = Vector256.Load(c3 + j); x31 = Vector256.Load(c3 + j + 8);
                }
                else x00 = x01 = x10 = x11 = x20 = x21 = x30 = x31 = Vector256<float>.Zero;
                float* bp = b + j;
                for (int p = 0; p < k; p++, bp += ldb)
                {
                    var b0 = Vector256.Load(bp);
                    var b1 = Vector256.Load(bp + 8);
                    var v = Vector256.Create(a0[p]);
                    x00 = Vector256.FusedMultiplyAdd(v, b0, x00); x01 = Vector256.FusedMultiplyAdd(v, b1, x01);
                    v = Vector256.Create(a1[p]);
                    x10 = Vector256.FusedMultiplyAdd(v, b0, x10); x11 = Vector256.FusedMultiplyAdd(v, b1, x11);
                    v = Vector256.Create(a2[p]);
                    x20 = Vector256.FusedMultiplyAdd(v, b0, x20); x21 = Vector256.FusedMultiplyAdd(v, b1, x21);
                    v = Vector256.Create(a3[p]);
                    x30 = Vector256.FusedMultiplyAdd(v, b0, x30); x31 = Vector256.FusedMultiplyAdd(v, b1, x31);
                }
                x00.Store(c0 + j); x01.Store(c0 + j + 8);
                x10.Store(c1 + j); x11.Store(c1 + j + 8);
                x20.Store(c2 + j); x21.Store(c2 + j + 8);
                x30.Store(c3 + j); x31.Store(c3 + j + 8);
            }
            if (j < n) MultiplyScalarCols(a, lda, b, ldb, c, ldc, i, i + 4, j, n, k, acc);
        }
        for (; i < m; i++)
        {
            float* a0 = a + (long)i * lda;
            float* c0 = c + (long)i * ldc;
            int j = 0;
            for (; j < n16; j += 16)
            {
                Vector256<float> x0, x1;
                if (acc) { x0 = Vector256.Load(c0 + j); x1 = Vector256.Load(c0 + j + 8); }
                else x0 = x1 = Vector256<float>.Zero;
                float* bp = b + j;
                for (int p = 0; p < k; p++, bp += ldb)
                {
                    var v = Vector256.Create(a0[p]);
                    x0 = Vector256.FusedMultiplyAdd(v, Vector256.Load(bp), x0);
                    x1 = Vector256.FusedMultiplyAdd(v, Vector256.Load(bp + 8), x1);
                }
                x0.Store(c0 + j); x1.Store(c0 + j + 8);
            }
            if (j < n) MultiplyScalarCols(a, lda, b, ldb, c, ldc, i, i + 1, j, n, k, acc);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void MultiplyScalarCols(float* a, int lda, float* b, int ldb, float* c, int ldc, int i0, int i1, int j0, int j1, int k, bool acc)
    {
        for (int i = i0; i < i1; i++)
        {
            float* ai = a + (long)i * lda;
            float* ci = c + (long)i * ldc;
            for (int j = j0; j < j1; j++)
            {
                float s = acc ? ci[j] : 0f;
                float* bp = b + j;
                for (int p = 0; p < k; p++, bp += ldb) s = MathF.FusedMultiplyAdd(ai[p], *bp, s);
                ci[j] = s;
            }
        }
    }

    /// <summary>dst[cols, rows] = src[rows, cols]ᵀ (small blocks; leading dimensions given).</summary>
    public static void Transpose(float* src, int lds, float* dst, int ldd, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            float* s = src + (long)r * lds;
            for (int c = 0; c < cols; c++) dst[(long)c * ldd + r] = s[c];
        }
    }
}
