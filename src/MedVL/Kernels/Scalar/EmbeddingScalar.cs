using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>Plain-loop twins of <see cref="Embedding"/>.</summary>
public static class EmbeddingScalar
{
    public static void GatherForward<T>(ReadOnlySpan<long> ids, ReadOnlySpan<T> weight, int d, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < ids.Length; i++)
            for (int j = 0; j < d; j++) y[i * d + j] = weight[(int)ids[i] * d + j];
    }

    public static void GatherBackward<T>(ReadOnlySpan<long> ids, ReadOnlySpan<T> gy, int d, Span<T> gw, long paddingIdx = -1) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] == paddingIdx) continue;
            for (int j = 0; j < d; j++) gw[(int)ids[i] * d + j] += gy[i * d + j];
        }
    }
}
