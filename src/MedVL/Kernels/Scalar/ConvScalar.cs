using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>Direct (seven-loop) convolution: the twin of <see cref="ConvKernels"/>, generic for float64 finite differences.</summary>
public static class ConvScalar
{
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> bias, Span<T> y, in Conv2dGeometry g)
        where T : IFloatingPointIeee754<T>
    {
        g.Validate();
        int C = g.InChannels, H = g.Height, W = g.Width, O = g.OutChannels, KH = g.KernelH, KW = g.KernelW, OH = g.OutH, OW = g.OutW;
        for (int n = 0; n < g.Batch; n++)
            for (int o = 0; o < O; o++)
                for (int oy = 0; oy < OH; oy++)
                    for (int ox = 0; ox < OW; ox++)
                    {
                        T s = bias.IsEmpty ? T.Zero : bias[o];
                        for (int c = 0; c < C; c++)
                            for (int ky = 0; ky < KH; ky++)
                            {
                                int iy = oy * g.StrideH - g.PadH + ky;
                                if (iy < 0 || iy >= H) continue;
                                for (int kx = 0; kx < KW; kx++)
                                {
                                    int ix = ox * g.StrideW - g.PadW + kx;
                                    if (ix < 0 || ix >= W) continue;
                                    s += x[((n * C + c) * H + iy) * W + ix] * w[((o * C + c) * KH + ky) * KW + kx];
                                }
                            }
                        y[((n * O + o) * OH + oy) * OW + ox] = s;
                    }
    }

    public static void Backward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> dy, Span<T> dx, Span<T> dw, Span<T> dbias, in Conv2dGeometry g)
        where T : IFloatingPointIeee754<T>
    {
        g.Validate();
        int C = g.InChannels, H = g.Height, W = g.Width, O = g.OutChannels, KH = g.KernelH, KW = g.KernelW, OH = g.OutH, OW = g.OutW;
        dx.Clear(); dw.Clear(); dbias.Clear();
        for (int n = 0; n < g.Batch; n++)
            for (int o = 0; o < O; o++)
                for (int oy = 0; oy < OH; oy++)
                    for (int ox = 0; ox < OW; ox++)
                    {
                        T gy = dy[((n * O + o) * OH + oy) * OW + ox];
                        if (!dbias.IsEmpty) dbias[o] += gy;
                        for (int c = 0; c < C; c++)
                            for (int ky = 0; ky < KH; ky++)
                            {
                                int iy = oy * g.StrideH - g.PadH + ky;
                                if (iy < 0 || iy >= H) continue;
                                for (int kx = 0; kx < KW; kx++)
                                {
                                    int ix = ox * g.StrideW - g.PadW + kx;
                                    if (ix < 0 || ix >= W) continue;
                                    int xi = ((n * C + c) * H + iy) * W + ix, wi = ((o * C + c) * KH + ky) * KW + kx;
                                    if (!dx.IsEmpty) dx[xi] += gy * w[wi];
                                    if (!dw.IsEmpty) dw[wi] += gy * x[xi];
                                }
                            }
                    }
    }
}
