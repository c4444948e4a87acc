using System.Numerics.Tensors;

namespace MedVL.Kernels;

/// <summary>
/// RMSNorm, LayerNorm and GroupNorm over contiguous float32 rows, with the per-row statistics saved for backward
/// (llm.c layernorm_forward/backward). All statistics are float32, as HF's LlamaRMSNorm/Phi3RMSNorm compute in
/// float32 and torch's CPU layer_norm/group_norm do for float input. Twin: <see cref="Scalar.NormsScalar"/>.
/// </summary>
public static class Norms
{
    /// <summary>y = w ⊙ (x · rsqrt(mean(x²) + eps)); rstd[r] saved for backward. w may be empty (no weight).</summary>
    public static void RmsNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, Span<float> rstd, int rows, int d, float eps)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * d, d);
            var yr = y.Slice(r * d, d);
            float ms = TensorPrimitives.SumOfSquares(xr) / d;
            float s = 1f / MathF.Sqrt(ms + eps);
            rstd[r] = s;
            TensorPrimitives.Multiply(xr, s, yr);
            if (!w.IsEmpty) TensorPrimitives.Multiply(yr, w, yr);
        }
    }

    /// <summary>
    /// With u = w ⊙ gy: gx = s·u − x · s³/d · ⟨u, x⟩; gw += gy ⊙ x · s (gw may be empty). gx must not alias gy.
    /// </summary>
    public static void RmsNormBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd, ReadOnlySpan<float> gy,
        Span<float> gx, Span<float> gw, int rows, int d)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * d, d);
            var gyr = gy.Slice(r * d, d);
            var gxr = gx.Slice(r * d, d);
            float s = rstd[r];
            if (!gw.IsEmpty)
                for (int i = 0; i < d; i++) gw[i] += gyr[i] * xr[i] * s;
            if (gx.IsEmpty) continue;
            if (w.IsEmpty) gyr.CopyTo(gxr);
            else TensorPrimitives.Multiply(gyr, w, gxr);      // u
            float dot = TensorPrimitives.Dot(gxr, xr);
            float c = s * s * s * dot / d;
            for (int i = 0; i < d; i++) gxr[i] = s * gxr[i] - c * xr[i];
        }
    }

    /// <summary>y = (x − mean)·rstd ⊙ w + b over rows (biased variance); w or b may be empty.</summary>
    public static void LayerNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y,
        Span<float> mean, Span<float> rstd, int rows, int d, float eps)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * d, d);
            var yr = y.Slice(r * d, d);
            float m = TensorPrimitives.Sum(xr) / d;
            TensorPrimitives.Subtract(xr, m, yr);
            float v = TensorPrimitives.SumOfSquares(yr) / d; // two-pass variance
            float s = 1f / MathF.Sqrt(v + eps);
            mean[r] = m;
            rstd[r] = s;
            TensorPrimitives.Multiply(yr, s, yr);
            if (!w.IsEmpty) TensorPrimitives.Multiply(yr, w, yr);
            if (!b.IsEmpty) TensorPrimitives.Add(yr, b, yr);
        }
    }

    /// <summary>
    /// x̂ = (x − mean)·rstd, u = gy ⊙ w: gx = rstd (u − mean(u) − x̂ mean(u ⊙ x̂)); gw += gy ⊙ x̂; gb += gy.
    /// gw/gb/gx may be empty when not needed.
    /// </summary>
    public static void LayerNormBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> gy, Span<float> gx, Span<float> gw, Span<float> gb, int rows, int d)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * d, d);
            var gyr = gy.Slice(r * d, d);
            float m = mean[r], s = rstd[r];
            float sumU = 0, sumUX = 0;
            for (int i = 0; i < d; i++)
            {
                float xh = (xr[i] - m) * s;
                float u = w.IsEmpty ? gyr[i] : gyr[i] * w[i];
                sumU += u;
                sumUX += u * xh;
                if (!gw.IsEmpty) gw[i] += gyr[i] * xh;
                if (!gb.IsEmpty) gb[i] += gyr[i];
            }
            if (gx.IsEmpty) continue;
            var gxr = gx.Slice(r * d, d);
            float mu = sumU / d, mux = sumUX / d;
            for (int i = 0; i < d; i++)
            {
                float xh = (xr[i] - m) * s;
                float u = w.IsEmpty ? gyr[i] : gyr[i] * w[i];
                gxr[i] = s * (u - mu - xh * mux);
            }
        }
    }

    /// <summary>
    /// GroupNorm on x [n, c, spatial] (NCHW flattened): statistics over each group of c/groups channels × spatial,
    /// then per-channel affine (torch.nn.GroupNorm). mean/rstd have n·groups entries. w, b may be empty.
    /// </summary>
    public static void GroupNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y,
        Span<float> mean, Span<float> rstd, int n, int c, int spatial, int groups, float eps)
    {
        int cg = c / groups;
        int len = cg * spatial;
        for (int i = 0; i < n * groups; i++)
        {
            var xr = x.Slice(i * len, len);
            var yr = y.Slice(i * len, len);
            float m = TensorPrimitives.Sum(xr) / len;
            TensorPrimitives.Subtract(xr, m, yr);
            float v = TensorPrimitives.SumOfSquares(yr) / len;
            float s = 1f / MathF.Sqrt(v + eps);
            mean[i] = m;
            rstd[i] = s;
            TensorPrimitives.Multiply(yr, s, yr);
            int c0 = (i % groups) * cg;
            for (int ch = 0; ch < cg; ch++)
            {
                var seg = yr.Slice(ch * spatial, spatial);
                if (!w.IsEmpty) TensorPrimitives.Multiply(seg, w[c0 + ch], seg);
                if (!b.IsEmpty) TensorPrimitives.Add(seg, b[c0 + ch], seg);
            }
        }
    }

    /// <summary>As <see cref="LayerNormBackward"/> per group, with the weight indexed by channel.</summary>
    public static void GroupNormBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> gy, Span<float> gx, Span<float> gw, Span<float> gb, int n, int c, int spatial, int groups)
    {
        int cg = c / groups;
        int len = cg * spatial;
        for (int i = 0; i < n * groups; i++)
        {
            var xr = x.Slice(i * len, len);
            var gyr = gy.Slice(i * len, len);
            float m = mean[i], s = rstd[i];
            int c0 = (i % groups) * cg;
            float sumU = 0, sumUX = 0;
            for (int ch = 0; ch < cg; ch++)
            {
                float wc = w.IsEmpty ? 1f : w[c0 + ch];
                float sgw = 0, sgb = 0;
                for (int k = 0; k < spatial; k++)
                {
                    int e = ch * spatial + k;
                    float xh = (xr[e] - m) * s;
                    float u = gyr[e] * wc;
                    sumU += u;
                    sumUX += u * xh;
                    sgw += gyr[e] * xh;
                    sgb += gyr[e];
                }
                if (!gw.IsEmpty) gw[c0 + ch] += sgw;
                if (!gb.IsEmpty) gb[c0 + ch] += sgb;
            }
            if (gx.IsEmpty) continue;
            var gxr = gx.Slice(i * len, len);
            float mu = sumU / len, mux = sumUX / len;
            for (int ch = 0; ch < cg; ch++)
            {
                float wc = w.IsEmpty ? 1f : w[c0 + ch];
                for (int k = 0; k < spatial; k++)
                {
                    int e = ch * spatial + k;
                    float xh = (xr[e] - m) * s;
                    gxr[e] = s * (gyr[e] * wc - mu - xh * mux);
                }
            }
        }
    }
}
