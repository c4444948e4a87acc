using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>Plain-loop twins of <see cref="Reduce"/>.</summary>
public static class ReduceScalar
{
    public static void SumInto<T>(ReadOnlySpan<T> src, ReadOnlySpan<int> shape, Span<T> dst, ReadOnlySpan<long> dstStrides)
        where T : IFloatingPointIeee754<T>
    {
        for (int e = 0; e < src.Length; e++)
        {
            long od = 0;
            int rem = e;
            for (int k = shape.Length - 1; k >= 0; k--)
            {
                od += (rem % shape[k]) * dstStrides[k];
                rem /= shape[k];
            }
            dst[(int)od] += src[e];
        }
    }

    public static void MaxForward<T>(ReadOnlySpan<T> x, int outer, int n, int inner, Span<T> values, Span<long> indices)
        where T : IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < inner; j++)
            {
                int bi = 0;
                for (int i = 0; i < n; i++)
                {
                    T v = x[(o * n + i) * inner + j], b = x[(o * n + bi) * inner + j];
                    if (T.IsNaN(b)) break;
                    if (T.IsNaN(v) || v > b) bi = i;
                }
                values[o * inner + j] = x[(o * n + bi) * inner + j];
                indices[o * inner + j] = bi;
            }
    }

    public static T SumOfSquares<T>(ReadOnlySpan<T> x) where T : IFloatingPointIeee754<T>
    {
        T s = T.Zero;
        foreach (var v in x) s += v * v;
        return s;
    }
}
