using System.Numerics.Tensors;

namespace MedVL.Kernels;

/// <summary>
/// Softmax and log-softmax over contiguous rows of length n, max-subtracted so exp never overflows
/// (torch's host_softmax). Twin: <see cref="Scalar.SoftmaxScalar"/>.
/// </summary>
public static class Softmax
{
    public static void SoftmaxForward(ReadOnlySpan<float> x, Span<float> y, int rows, int n)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * n, n);
            var yr = y.Slice(r * n, n);
            float max = TensorPrimitives.Max(xr);
            TensorPrimitives.Subtract(xr, max, yr);
            TensorPrimitives.Exp(yr, yr);
            float sum = TensorPrimitives.Sum(yr);
            TensorPrimitives.Divide(yr, sum, yr);
        }
    }

    /// <summary>gx = y ⊙ (gy − ⟨gy, y⟩) per row.</summary>
    public static void SoftmaxBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> gy, Span<float> gx, int rows, int n)
    {
        for (int r = 0; r < rows; r++)
        {
            var yr = y.Slice(r * n, n);
            var gyr = gy.Slice(r * n, n);
            var gxr = gx.Slice(r * n, n);
            float dot = TensorPrimitives.Dot(gyr, yr);
            TensorPrimitives.Subtract(gyr, dot, gxr);
            TensorPrimitives.Multiply(gxr, yr, gxr);
        }
    }

    /// <summary>y = x − max − log Σ exp(x − max) per row.</summary>
    public static void LogSoftmaxForward(ReadOnlySpan<float> x, Span<float> y, int rows, int n)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * n, n);
            var yr = y.Slice(r * n, n);
            float max = TensorPrimitives.Max(xr);
            TensorPrimitives.Subtract(xr, max, yr);
            TensorPrimitives.Exp(yr, yr);
            float lse = max + MathF.Log(TensorPrimitives.Sum(yr));
            TensorPrimitives.Subtract(xr, lse, yr);
        }
    }

    /// <summary>gx = gy − exp(y) Σ gy per row.</summary>
    public static void LogSoftmaxBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> gy, Span<float> gx, int rows, int n)
    {
        for (int r = 0; r < rows; r++)
        {
            var yr = y.Slice(r * n, n);
            var gyr = gy.Slice(r * n, n);
            var gxr = gx.Slice(r * n, n);
            float sum = TensorPrimitives.Sum(gyr);
            if (gxr.Overlaps(gyr))
            {
                for (int i = 0; i < n; i++) gxr[i] = gyr[i] - MathF.Exp(yr[i]) * sum;
                continue;
            }
            TensorPrimitives.Exp(yr, gxr);
            TensorPrimitives.Multiply(gxr, -sum, gxr);
            TensorPrimitives.Add(gxr, gyr, gxr);
        }
    }
}
