using System.Numerics.Tensors;

namespace MedVL.Kernels;

/// <summary>
/// Reductions on spans. <see cref="SumInto"/> is the adjoint of broadcasting: it adds a tensor of the full shape
/// into a smaller one read through broadcast strides (0 on reduced dims), which is how Sum/Mean over any set of
/// dims and every broadcasting backward reduce. Twin: <see cref="Scalar.ReduceScalar"/>.
/// </summary>
public static class Reduce
{
    /// <summary>dst[offset(i)] += src[i] for every index i of <paramref name="shape"/> (src contiguous).</summary>
    public static void SumInto(ReadOnlySpan<float> src, ReadOnlySpan<int> shape, Span<float> dst, ReadOnlySpan<long> dstStrides)
    {
        int rank = shape.Length;
        if (src.Length == 0) return;
        if (rank == 0) { dst[0] += src[0]; return; }
        int n = shape[rank - 1];
        long sd = dstStrides[rank - 1];
        int rows = src.Length / n;
        Span<int> idx = stackalloc int[rank];
        long od = 0;
        for (int r = 0; r < rows; r++)
        {
            var row = src.Slice(r * n, n);
            if (n == 1) dst[(int)od] += row[0];
            else if (sd == 1)
            {
                var d = dst.Slice((int)od, n);
                TensorPrimitives.Add(d, row, d);
            }
            else if (sd == 0) dst[(int)od] += TensorPrimitives.Sum(row);
            else
                for (int i = 0; i < n; i++) dst[(int)(od + i * sd)] += row[i];
            for (int k = rank - 2; k >= 0; k--)
            {
                od += dstStrides[k];
                if (++idx[k] < shape[k]) break;
                od -= dstStrides[k] * shape[k];
                idx[k] = 0;
            }
        }
    }

    /// <summary>
    /// Max over the middle axis of x viewed as [outer, n, inner]: values and the index of the first maximum
    /// (torch.max(dim) returns the first on CPU; NaN counts as the maximum, as in torch).
    /// </summary>
    public static void MaxForward(ReadOnlySpan<float> x, int outer, int n, int inner, Span<float> values, Span<long> indices)
    {
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < inner; j++)
            {
                int baseIdx = o * n * inner + j;
                float best = x[baseIdx];
                int bi = 0;
                if (!float.IsNaN(best))
                    for (int i = 1; i < n; i++)
                    {
                        float v = x[baseIdx + i * inner];
                        if (v > best || float.IsNaN(v)) { best = v; bi = i; if (float.IsNaN(v)) break; }
                    }
                values[o * inner + j] = best;
                indices[o * inner + j] = bi;
            }
    }

    /// <summary>gx[o, idx, j] += gy[o, j]; gx must be zeroed by the caller.</summary>
    public static void MaxBackward(ReadOnlySpan<long> indices, ReadOnlySpan<float> gy, int outer, int n, int inner, Span<float> gx)
    {
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < inner; j++)
                gx[(int)(o * n * inner + indices[o * inner + j] * inner + j)] += gy[o * inner + j];
    }

    /// <summary>Σ x² (e.g. the global gradient norm for clipping).</summary>
    public static float SumOfSquares(ReadOnlySpan<float> x) => TensorPrimitives.SumOfSquares(x);
}
