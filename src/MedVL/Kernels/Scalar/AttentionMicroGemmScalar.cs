using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>Plain-loop twin of <see cref="MicroGemm"/>: C[M,N] (+)= A[M,K]·B[K,N], row-major with leading dimensions.</summary>
public static class MicroGemmScalar
{
    public static void Multiply<T>(ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, int m, int n, int k, bool accumulate)
        where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                T s = accumulate ? c[i * ldc + j] : T.Zero;
                for (int p = 0; p < k; p++) s += a[i * lda + p] * b[p * ldb + j];
                c[i * ldc + j] = s;
            }
    }
}
