using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>Plain-loop twins of <see cref="Softmax"/>; backward written as the full Jacobian-vector product.</summary>
public static class SoftmaxScalar
{
    public static void SoftmaxForward<T>(ReadOnlySpan<T> x, Span<T> y, int rows, int n) where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            T max = x[r * n];
            for (int i = 1; i < n; i++) max = T.Max(max, x[r * n + i]);
            T sum = T.Zero;
            for (int i = 0; i < n; i++) sum += T.Exp(x[r * n + i] - max);
            for (int i = 0; i < n; i++) y[r * n + i] = T.Exp(x[r * n + i] - max) / sum;
        }
    }

    public static void LogSoftmaxForward<T>(ReadOnlySpan<T> x, Span<T> y, int rows, int n) where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            T max = x[r * n];
            for (int i = 1; i < n; i++) max = T.Max(max, x[r * n + i]);
            T sum = T.Zero;
            for (int i = 0; i < n; i++) sum += T.Exp(x[r * n + i] - max);
            T lse = max + T.Log(sum);
            for (int i = 0; i < n; i++) y[r * n + i] = x[r * n + i] - lse;
        }
    }

    /// <summary>gx_j = Σ_i gy_i y_i (δ_ij − y_j).</summary>
    public static void SoftmaxBackward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> gy, Span<T> gx, int rows, int n) where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
            {
                T s = T.Zero;
                for (int i = 0; i < n; i++)
                {
                    T jac = (i == j ? y[r * n + i] : T.Zero) - y[r * n + i] * y[r * n + j];
                    s += gy[r * n + i] * jac;
                }
                gx[r * n + j] = s;
            }
    }

    /// <summary>gx_j = Σ_i gy_i (δ_ij − softmax_j), softmax_j = exp(y_j).</summary>
    public static void LogSoftmaxBackward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> gy, Span<T> gx, int rows, int n) where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
            {
                T s = T.Zero;
                for (int i = 0; i < n; i++) s += gy[r * n + i] * ((i == j ? T.One : T.Zero) - T.Exp(y[r * n + j]));
                gx[r * n + j] = s;
            }
    }
}
