namespace MedVL.Vision.Preprocessing;

/// <summary>
/// A re-implementation of Pillow's separable convolution resampler (libImaging/Resample.c, ImagingResample)
/// for 8-bit images, bit-exact with Pillow 9.x: per-output-pixel kernels whose support is scaled by the
/// downscale factor (antialiasing), coefficients normalised to sum 1 then quantised to 22-bit fixed point
/// (PRECISION_BITS = 32 - 8 - 2), accumulation starting at 1 &lt;&lt; 21 (round half up), clip to 0..255,
/// horizontal pass first over only the rows the vertical pass needs, then the vertical pass.
/// </summary>
public static class PilResample
{
    private const int PrecisionBits = 32 - 8 - 2;

    public enum Filter { Bilinear, Bicubic }

    private static double FilterSupport(Filter f) => f == Filter.Bicubic ? 2.0 : 1.0;

    private static double Kernel(Filter f, double x)
    {
        x = Math.Abs(x);
        if (f == Filter.Bilinear) return x < 1.0 ? 1.0 - x : 0.0;
        // Keys cubic with a = -0.5, as Pillow's bicubic_filter.
        const double a = -0.5;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    /// <summary>Fixed-point kernels for one axis: bounds (xmin, count) per output pixel and ksize ints each.</summary>
    internal static (int[] Bounds, int[] Coeffs, int KSize) PrecomputeCoeffs(int inSize, double in0, double in1, int outSize, Filter f)
    {
        double scale = (in1 - in0) / outSize;
        double filterscale = scale < 1.0 ? 1.0 : scale;
        double support = FilterSupport(f) * filterscale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var coeffs = new int[outSize * ksize];
        var k = new double[ksize];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = in0 + (xx + 0.5) * scale;
            double ww = 0.0, ss = 1.0 / filterscale;
            // Pillow truncates toward zero with (int) casts here; center - support + 0.5 may be negative.
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            for (int x = 0; x < xmax; x++)
            {
                double w = Kernel(f, (x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (int x = 0; x < xmax; x++)
            {
                double w = ww != 0.0 ? k[x] / ww : k[x];
                // normalize_coeffs_8bpc: round half away from zero to 22-bit fixed point.
                coeffs[xx * ksize + x] = w < 0 ? (int)(-0.5 + w * (1 << PrecisionBits)) : (int)(0.5 + w * (1 << PrecisionBits));
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        return (bounds, coeffs, ksize);
    }

    private static byte Clip8(long ss)
    {
        long v = ss >> PrecisionBits;
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }

    /// <summary>
    /// Resizes interleaved 8-bit samples (<paramref name="channels"/> per pixel) like Pillow's
    /// <c>Image.resize((outW, outH), filter)</c> with the default box and no reducing_gap.
    /// </summary>
    public static byte[] Resize(ReadOnlySpan<byte> src, int width, int height, int channels, int outW, int outH, Filter filter = Filter.Bicubic)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outW);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outH);
        if (src.Length != (long)width * height * channels) throw new ArgumentException("source buffer size mismatch");
        if (outW == width && outH == height) return src.ToArray();

        bool needH = outW != width, needV = outH != height;
        var (bv, cv, kv) = PrecomputeCoeffs(height, 0, height, outH, filter);
        int yFirst = bv[0], yLast = bv[outH * 2 - 2] + bv[outH * 2 - 1];

        byte[] tmp;
        int tmpH;
        if (needH)
        {
            var (bh, ch, kh) = PrecomputeCoeffs(width, 0, width, outW, filter);
            // Only rows yFirst..yLast feed the vertical pass (Pillow's ImagingResampleInner).
            if (!needV) { yFirst = 0; yLast = height; }
            tmpH = yLast - yFirst;
            tmp = new byte[(long)tmpH * outW * channels];
            for (int yy = 0; yy < tmpH; yy++)
            {
                int rowIn = (yy + yFirst) * width * channels, rowOut = yy * outW * channels;
                for (int xx = 0; xx < outW; xx++)
                {
                    int xmin = bh[xx * 2], xmax = bh[xx * 2 + 1], kOff = xx * kh;
                    for (int c = 0; c < channels; c++)
                    {
                        long ss = 1L << (PrecisionBits - 1);
                        for (int x = 0; x < xmax; x++) ss += src[rowIn + (x + xmin) * channels + c] * (long)ch[kOff + x];
                        tmp[rowOut + xx * channels + c] = Clip8(ss);
                    }
                }
            }
            if (!needV) return tmp;
            for (int i = 0; i < outH; i++) bv[i * 2] -= yFirst;
        }
        else
        {
            tmp = src.ToArray();
            tmpH = height;
        }

        int w2 = needH ? outW : width;
        var dst = new byte[(long)outH * w2 * channels];
        for (int yy = 0; yy < outH; yy++)
        {
            int ymin = bv[yy * 2], ymax = bv[yy * 2 + 1], kOff = yy * kv;
            for (int xx = 0; xx < w2 * channels; xx++)
            {
                long ss = 1L << (PrecisionBits - 1);
                for (int y = 0; y < ymax; y++) ss += tmp[(y + ymin) * w2 * channels + xx] * (long)cv[kOff + y];
                dst[yy * w2 * channels + xx] = Clip8(ss);
            }
        }
        return dst;
    }

    public static Rgb8Image Resize(Rgb8Image img, int outW, int outH, Filter filter = Filter.Bicubic)
        => new(outW, outH, Resize(img.Pixels, img.Width, img.Height, 3, outW, outH, filter));
}
