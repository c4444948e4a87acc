using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>Plain-loop twin of <see cref="UpsampleKernels"/>: y[p, i, j] = x[p, i / sh, j / sw] and its adjoint.</summary>
public static class UpsampleScalar
{
    public static void NearestForward<T>(ReadOnlySpan<T> x, Span<T> y, int planes, int h, int w, int sh, int sw) where T : IFloatingPointIeee754<T>
    {
        int oh = h * sh, ow = w * sw;
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                    y[(p * oh + i) * ow + j] = x[(p * h + i / sh) * w + j / sw];
    }

    public static void NearestBackward<T>(ReadOnlySpan<T> dy, Span<T> dx, int planes, int h, int w, int sh, int sw) where T : IFloatingPointIeee754<T>
    {
        int oh = h * sh, ow = w * sw;
        dx.Clear();
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                    dx[(p * h + i / sh) * w + j / sw] += dy[(p * oh + i) * ow + j];
    }
}
