using System.Runtime.Intrinsics;

namespace MedVL.Kernels;

/// <summary>
/// Nearest-neighbour upsampling by integer factors over [planes = N·C, H, W], as F.interpolate(mode="nearest",
/// scale_factor=s): output pixel (y, x) reads input (⌊y/sh⌋, ⌊x/sw⌋) (exact for integer factors). Backward sums each
/// sh×sw block of output gradients. The ×2 case (VQGAN decoder Upsample) has Vector512 lane-duplication paths.
/// Scalar twin: <see cref="Scalar.UpsampleScalar"/>.
/// </summary>
public static unsafe class UpsampleKernels
{
    private static void Check(int xLen, int yLen, int planes, int h, int w, int sh, int sw)
    {
        if (planes <= 0 || h <= 0 || w <= 0 || sh <= 0 || sw <= 0)
            throw new ArgumentException($"upsample nearest: sizes and factors must be positive (planes={planes}, H={h}, W={w}, factors {sh}x{sw})");
        long nx = (long)planes * h * w, ny = nx * sh * sw;
        if (xLen != nx) throw new ArgumentException($"upsample nearest: input has {xLen} elements, expected {nx}");
        if (yLen != ny) throw new ArgumentException($"upsample nearest: output has {yLen} elements, expected {ny}");
    }

    public static void NearestForward(ReadOnlySpan<float> x, Span<float> y, int planes, int height, int width, int scaleH, int scaleW)
    {
        Check(x.Length, y.Length, planes, height, width, scaleH, scaleW);
        int ow = width * scaleW;
        fixed (float* xp = x, yp = y)
        {
            for (long r = 0; r < (long)planes * height; r++)
            {
                float* src = xp + r * width;
                float* dst = yp + r * scaleH * ow;
                int j = 0;
                if (scaleW == 2 && Vector512.IsHardwareAccelerated)
                {
                    var lo = Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
                    var hi = Vector512.Create(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
                    for (; j + 16 <= width; j += 16)
                    {
                        var v = Vector512.Load(src + j);
                        Vector512.Shuffle(v, lo).Store(dst + 2 * j);
                        Vector512.Shuffle(v, hi).Store(dst + 2 * j + 16);
                    }
                }
                for (; j < width; j++)
                {
                    float v = src[j];
                    for (int k = 0; k < scaleW; k++) dst[j * scaleW + k] = v;
                }
                for (int k = 1; k < scaleH; k++) Buffer.MemoryCopy(dst, dst + (long)k * ow, ow * 4L, ow * 4L);
            }
        }
    }

    /// <summary>dx[y, x] = Σ of the sh×sw output gradients it was copied to (dx overwritten).</summary>
    public static void NearestBackward(ReadOnlySpan<float> dy, Span<float> dx, int planes, int height, int width, int scaleH, int scaleW)
    {
        Check(dx.Length, dy.Length, planes, height, width, scaleH, scaleW);
        int ow = width * scaleW;
        fixed (float* gp = dy, dp = dx)
        {
            for (long r = 0; r < (long)planes * height; r++)
            {
                float* g0 = gp + r * scaleH * ow;
                float* d = dp + r * width;
                int j = 0;
                if (scaleW == 2 && scaleH == 2 && Vector512.IsHardwareAccelerated)
                {
                    float* g1 = g0 + ow;
                    var swap = Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
                    var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
                    for (; j + 8 <= width; j += 8)
                    {
                        var a = Vector512.Load(g0 + 2 * j) + Vector512.Load(g1 + 2 * j);
                        var s = a + Vector512.Shuffle(a, swap);
                        Vector512.Shuffle(s, even).GetLower().Store(d + j);
                    }
                }
                for (; j < width; j++)
                {
                    float s = 0;
                    for (int k = 0; k < scaleH; k++)
                        for (int l = 0; l < scaleW; l++) s += g0[(long)k * ow + j * scaleW + l];
                    d[j] = s;
                }
            }
        }
    }
}
