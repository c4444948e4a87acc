using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>Plain-loop twin of <see cref="RopeKernels.Apply"/> (rotate_half layout, pass-through tail).</summary>
public static class RopeScalar
{
    public static void Apply<T>(ReadOnlySpan<T> x, Span<T> y, ReadOnlySpan<T> cos, ReadOnlySpan<T> sin,
        int rows, int headDim, int rotaryDim, bool inverse) where T : IFloatingPointIeee754<T>
    {
        int half = rotaryDim / 2;
        for (int r = 0; r < rows; r++)
        {
            int o = r * headDim;
            for (int i = 0; i < half; i++)
            {
                T c = cos[i], s = inverse ? -sin[i] : sin[i];
                T x1 = x[o + i], x2 = x[o + half + i];
                y[o + i] = x1 * c - x2 * s;
                y[o + half + i] = x2 * c + x1 * s;
            }
            for (int d = rotaryDim; d < headDim; d++) y[o + d] = x[o + d];
        }
    }
}
