using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>
/// Plain-loop twin of <see cref="AttentionKernels"/>: materialises the full score matrix per (batch, head), the
/// textbook softmax(QKᵀ·scale + mask)·V and its backward (dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O)), dQ = dS·K·scale,
/// dK = dSᵀ·Q·scale, dV = Pᵀ·dO). Generic so that float64 runs are the finite-difference reference.
/// </summary>
public static class AttentionScalar
{
    public static void Forward<T>(ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v, ReadOnlySpan<T> mask,
        Span<T> o, Span<T> lse, in AttentionGeometry g) where T : IFloatingPointIeee754<T>
    {
        g.Validate();
        int T_ = g.QueryLength, S = g.KeyLength, D = g.HeadDim;
        var p = new T[S];
        T scale = T.CreateChecked(g.Scale);
        for (int b = 0; b < g.Batch; b++)
            for (int h = 0; h < g.Heads; h++)
            {
                int kvh = h / g.GroupSize;
                for (int i = 0; i < T_; i++)
                {
                    T max = T.NegativeInfinity;
                    for (int j = 0; j < S; j++)
                    {
                        p[j] = Score(q, k, mask, g, b, h, kvh, i, j, scale);
                        if (p[j] > max) max = p[j];
                    }
                    long orow = (((long)b * g.Heads + h) * T_ + i) * D;
                    if (T.IsNegativeInfinity(max))
                    {
                        for (int d = 0; d < D; d++) o[(int)(orow + d)] = T.Zero;
                        lse[(int)(((long)b * g.Heads + h) * T_ + i)] = T.NegativeInfinity;
                        continue;
                    }
                    T sum = T.Zero;
                    for (int j = 0; j < S; j++) { p[j] = T.Exp(p[j] - max); sum += p[j]; }
                    for (int d = 0; d < D; d++)
                    {
                        T acc = T.Zero;
                        for (int j = 0; j < S; j++) acc += p[j] * v[(int)((((long)b * g.KvHeads + kvh) * S + j) * D + d)];
                        o[(int)(orow + d)] = acc / sum;
                    }
                    lse[(int)(((long)b * g.Heads + h) * T_ + i)] = max + T.Log(sum);
                }
            }
    }

    private static T Score<T>(ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> mask, in AttentionGeometry g,
        int b, int h, int kvh, int i, int j, T scale) where T : IFloatingPointIeee754<T>
    {
        if (j < g.KeyStart(i) || j >= g.KeyEnd(i)) return T.NegativeInfinity;
        int D = g.HeadDim;
        long qrow = (((long)b * g.Heads + h) * g.QueryLength + i) * D;
        long krow = (((long)b * g.KvHeads + kvh) * g.KeyLength + j) * D;
        T s = T.Zero;
        for (int d = 0; d < D; d++) s += q[(int)(qrow + d)] * k[(int)(krow + d)];
        s *= scale;
        if (g.HasMask) s += mask[(int)(((g.MaskPerBatch ? (long)b * g.QueryLength : 0) + i) * g.KeyLength + j)];
        return s;
    }

    public static void Backward<T>(ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v, ReadOnlySpan<T> mask,
        ReadOnlySpan<T> dO, Span<T> dq, Span<T> dk, Span<T> dv, in AttentionGeometry g) where T : IFloatingPointIeee754<T>
    {
        g.Validate();
        int T_ = g.QueryLength, S = g.KeyLength, D = g.HeadDim;
        T scale = T.CreateChecked(g.Scale);
        dq.Clear(); dk.Clear(); dv.Clear();
        var p = new T[S];
        var dp = new T[S];
        for (int b = 0; b < g.Batch; b++)
            for (int h = 0; h < g.Heads; h++)
            {
                int kvh = h / g.GroupSize;
                for (int i = 0; i < T_; i++)
                {
                    T max = T.NegativeInfinity;
                    for (int j = 0; j < S; j++)
                    {
                        p[j] = Score(q, k, mask, g, b, h, kvh, i, j, scale);
                        if (p[j] > max) max = p[j];
                    }
                    if (T.IsNegativeInfinity(max)) continue;
                    T sum = T.Zero;
                    for (int j = 0; j < S; j++) { p[j] = T.Exp(p[j] - max); sum += p[j]; }
                    for (int j = 0; j < S; j++) p[j] /= sum;
                    long qrow = (((long)b * g.Heads + h) * T_ + i) * D;
                    long kvBase = ((long)b * g.KvHeads + kvh) * S * D;
                    // dP_j = dO·v_j ; delta = Σ_j P_j dP_j (= rowsum(dO ⊙ O)) ; dS_j = P_j (dP_j − delta)
                    T delta = T.Zero;
                    for (int j = 0; j < S; j++)
                    {
                        T s = T.Zero;
                        for (int d = 0; d < D; d++) s += dO[(int)(qrow + d)] * v[(int)(kvBase + (long)j * D + d)];
                        dp[j] = s;
                        delta += p[j] * s;
                    }
                    for (int j = 0; j < S; j++)
                    {
                        if (p[j] == T.Zero) continue;
                        T ds = p[j] * (dp[j] - delta) * scale;
                        for (int d = 0; d < D; d++)
                        {
                            int kd = (int)(kvBase + (long)j * D + d);
                            dq[(int)(qrow + d)] += ds * k[kd];
                            dk[kd] += ds * q[(int)(qrow + d)];
                            dv[kd] += p[j] * dO[(int)(qrow + d)];
                        }
                    }
                }
            }
    }
}
