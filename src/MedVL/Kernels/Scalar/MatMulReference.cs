using MedVL.Tensors;

namespace MedVL.Kernels.Scalar;

/// <summary>
/// Scalar twins of <see cref="MatMul"/>: the obvious triple loops with float64 accumulation, used by tests as the
/// independent reference the blocked/SIMD kernels are compared with. Not for production use (no blocking, no threads).
/// </summary>
public static class MatMulReference
{
    /// <summary>Same contract as <see cref="MatMul.Gemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int, int)"/>.</summary>
    public static void Gemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[p * lda + i] : a[i * lda + p];
                    float bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                    s += (double)av * bv;
                }
                float prev = beta == 0f ? 0f : beta * c[i * ldc + j];
                c[i * ldc + j] = (float)(alpha * s) + prev;
            }
        }
    }

    /// <summary>Same contract as the strided-batched GEMM: problem i at offsets i·stride.</summary>
    public static void GemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, long strideA, ReadOnlySpan<float> b, int ldb, long strideB, float beta,
        Span<float> c, int ldc, long strideC, int batchCount)
    {
        for (int i = 0; i < batchCount; i++)
            Gemm(transA, transB, m, n, k, alpha, a[(int)(i * strideA)..], lda, b[(int)(i * strideB)..], ldb, beta, c[(int)(i * strideC)..], ldc);
    }

    /// <summary>y = x·Wᵀ + bias for W[N,K] in F32 (as float bits in <paramref name="weightBits"/>: use the float overload) or BF16/F16.</summary>
    public static void Linear(ReadOnlySpan<float> x, int m, int k, ReadOnlySpan<ushort> weightBits, DType weightType, int n, ReadOnlySpan<float> bias, Span<float> y)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = bias.IsEmpty ? 0 : bias[j];
                for (int p = 0; p < k; p++)
                {
                    ushort bits = weightBits[j * k + p];
                    float w = weightType switch
                    {
                        DType.BF16 => FloatConvert.BF16ToF32(bits),
                        DType.F16 => FloatConvert.F16ToF32(bits),
                        _ => throw new ArgumentException($"weightType must be BF16 or F16, got {weightType}", nameof(weightType)),
                    };
                    s += (double)x[i * k + p] * w;
                }
                y[i * n + j] = (float)s;
            }
    }

    public static void Linear(ReadOnlySpan<float> x, int m, int k, ReadOnlySpan<float> weight, int n, ReadOnlySpan<float> bias, Span<float> y)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = bias.IsEmpty ? 0 : bias[j];
                for (int p = 0; p < k; p++) s += (double)x[i * k + p] * weight[j * k + p];
                y[i * n + j] = (float)s;
            }
    }
}
