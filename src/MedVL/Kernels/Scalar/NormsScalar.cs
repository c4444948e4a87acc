using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>
/// Plain-loop twins of <see cref="Norms"/>. GroupNorm is expressed through the generic "normalize blocks, then
/// per-channel affine" form; LayerNorm is GroupNorm with one block per row and the affine over the row.
/// </summary>
public static class NormsScalar
{
    public static void RmsNormForward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> y, int rows, int d, T eps) where T : IFloatingPointIeee754<T>
    {
        T dd = T.CreateChecked(d);
        for (int r = 0; r < rows; r++)
        {
            T ss = T.Zero;
            for (int i = 0; i < d; i++) ss += x[r * d + i] * x[r * d + i];
            T s = T.One / T.Sqrt(ss / dd + eps);
            for (int i = 0; i < d; i++) y[r * d + i] = x[r * d + i] * s * (w.IsEmpty ? T.One : w[i]);
        }
    }

    /// <summary>gx_j = Σ_i gy_i w_i ∂(x_i s)/∂x_j with ∂s/∂x_j = −s³ x_j / d; gw_i += Σ_rows gy_i x_i s.</summary>
    public static void RmsNormBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> gy, Span<T> gx, Span<T> gw, int rows, int d, T eps)
        where T : IFloatingPointIeee754<T>
    {
        T dd = T.CreateChecked(d);
        for (int r = 0; r < rows; r++)
        {
            T ss = T.Zero;
            for (int i = 0; i < d; i++) ss += x[r * d + i] * x[r * d + i];
            T s = T.One / T.Sqrt(ss / dd + eps);
            for (int j = 0; j < d; j++)
            {
                T acc = T.Zero;
                for (int i = 0; i < d; i++)
                {
                    T dij = (i == j ? s : T.Zero) - x[r * d + i] * s * s * s * x[r * d + j] / dd;
                    acc += gy[r * d + i] * (w.IsEmpty ? T.One : w[i]) * dij;
                }
                gx[r * d + j] = acc;
                if (!gw.IsEmpty) gw[j] += gy[r * d + j] * x[r * d + j] * s;
            }
        }
    }

    /// <summary>
    /// Normalize each of <paramref name="blocks"/> contiguous blocks of length len, then y = x̂·w[ch] + b[ch] where
    /// ch = (block % chanPerBlockCycle)·cg + (e / spatial) within the block. For LayerNorm: blocks = rows, cg = d, spatial = 1.
    /// </summary>
    public static void BlockNormForward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y, int blocks, int groups, int cg, int spatial, T eps)
        where T : IFloatingPointIeee754<T>
    {
        int len = cg * spatial;
        T n = T.CreateChecked(len);
        for (int blk = 0; blk < blocks; blk++)
        {
            T m = T.Zero;
            for (int e = 0; e < len; e++) m += x[blk * len + e];
            m /= n;
            T v = T.Zero;
            for (int e = 0; e < len; e++) v += (x[blk * len + e] - m) * (x[blk * len + e] - m);
            T s = T.One / T.Sqrt(v / n + eps);
            for (int e = 0; e < len; e++)
            {
                int ch = (blk % groups) * cg + e / spatial;
                T val = (x[blk * len + e] - m) * s;
                if (!w.IsEmpty) val *= w[ch];
                if (!b.IsEmpty) val += b[ch];
                y[blk * len + e] = val;
            }
        }
    }

    /// <summary>Backward of <see cref="BlockNormForward{T}"/> through the full per-block Jacobian (O(len²)).</summary>
    public static void BlockNormBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> gy, Span<T> gx, Span<T> gw, Span<T> gb,
        int blocks, int groups, int cg, int spatial, T eps) where T : IFloatingPointIeee754<T>
    {
        int len = cg * spatial;
        T n = T.CreateChecked(len);
        for (int blk = 0; blk < blocks; blk++)
        {
            int o = blk * len;
            T m = T.Zero;
            for (int e = 0; e < len; e++) m += x[o + e];
            m /= n;
            T v = T.Zero;
            for (int e = 0; e < len; e++) v += (x[o + e] - m) * (x[o + e] - m);
            T s = T.One / T.Sqrt(v / n + eps);
            for (int j = 0; j < len; j++)
            {
                T acc = T.Zero;
                T xhj = (x[o + j] - m) * s;
                for (int i = 0; i < len; i++)
                {
                    // ∂x̂_i/∂x_j = s (δ_ij − 1/n − x̂_i x̂_j / n)
                    T xhi = (x[o + i] - m) * s;
                    T jac = s * ((i == j ? T.One : T.Zero) - T.One / n - xhi * xhj / n);
                    int chi = (blk % groups) * cg + i / spatial;
                    acc += gy[o + i] * (w.IsEmpty ? T.One : w[chi]) * jac;
                }
                gx[o + j] = acc;
                int ch = (blk % groups) * cg + j / spatial;
                if (!gw.IsEmpty) gw[ch] += gy[o + j] * xhj;
                if (!gb.IsEmpty) gb[ch] += gy[o + j];
            }
        }
    }
}
