using MedVL.Vision.Preprocessing;

namespace MedVL.Evaluation;

/// <summary>
/// The image-generation scores HealthGPT and its re-evaluations report (PSNR, SSIM), computed as scikit-image's
/// peak_signal_noise_ratio and structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
/// data_range=255, channel_axis=-1) on 8-bit RGB images: the SSIM map from Gaussian-filtered moments (scipy
/// gaussian_filter, truncate 3.5 → 11 taps, mode 'reflect'), its border of 5 pixels cropped, averaged over pixels and
/// channels.
/// </summary>
public static class ImageMetrics
{
    private const double Sigma = 1.5;
    private const int Radius = 5; // int(3.5 · 1.5 + 0.5)

    public static double Psnr(Rgb8Image reference, Rgb8Image test)
    {
        SameShape(reference, test);
        double se = 0;
        for (int i = 0; i < reference.Pixels.Length; i++)
        {
            double d = reference.Pixels[i] - test.Pixels[i];
            se += d * d;
        }
        double mse = se / reference.Pixels.Length;
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mse);
    }

    public static double Ssim(Rgb8Image reference, Rgb8Image test)
    {
        SameShape(reference, test);
        int w = reference.Width, h = reference.Height;
        if (w < 2 * Radius + 1 || h < 2 * Radius + 1) throw new ArgumentException($"SSIM needs images of at least {2 * Radius + 1}×{2 * Radius + 1} pixels; got {w}×{h}");
        const double c1 = 0.01 * 255 * 0.01 * 255, c2 = 0.03 * 255 * 0.03 * 255;
        var kernel = new double[2 * Radius + 1];
        for (int i = -Radius; i <= Radius; i++) kernel[i + Radius] = Math.Exp(-0.5 * i * i / (Sigma * Sigma));
        double ks = kernel.Sum();
        for (int i = 0; i < kernel.Length; i++) kernel[i] /= ks;
        int n = w * h;
        var x = new double[n]; var y = new double[n];
        var xx = new double[n]; var yy = new double[n]; var xy = new double[n];
        double total = 0;
        for (int c = 0; c < 3; c++)
        {
            for (int i = 0; i < n; i++)
            {
                double a = reference.Pixels[i * 3 + c], b = test.Pixels[i * 3 + c];
                x[i] = a; y[i] = b; xx[i] = a * a; yy[i] = b * b; xy[i] = a * b;
            }
            var ux = Gaussian(x, w, h, kernel); var uy = Gaussian(y, w, h, kernel);
            var uxx = Gaussian(xx, w, h, kernel); var uyy = Gaussian(yy, w, h, kernel); var uxy = Gaussian(xy, w, h, kernel);
            double sum = 0;
            for (int r = Radius; r < h - Radius; r++)
                for (int q = Radius; q < w - Radius; q++)
                {
                    int i = r * w + q;
                    double vx = uxx[i] - ux[i] * ux[i], vy = uyy[i] - uy[i] * uy[i], cxy = uxy[i] - ux[i] * uy[i];
                    sum += (2 * ux[i] * uy[i] + c1) * (2 * cxy + c2) / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2));
                }
            total += sum / ((h - 2 * Radius) * (w - 2 * Radius));
        }
        return total / 3;
    }

    /// <summary>Separable Gaussian filter with scipy's 'reflect' boundary (d c b a | a b c d).</summary>
    private static double[] Gaussian(double[] src, int w, int h, double[] k)
    {
        var tmp = new double[src.Length];
        var dst = new double[src.Length];
        for (int r = 0; r < h; r++)
            for (int q = 0; q < w; q++)
            {
                double s = 0;
                for (int j = -Radius; j <= Radius; j++) s += k[j + Radius] * src[r * w + Reflect(q + j, w)];
                tmp[r * w + q] = s;
            }
        for (int r = 0; r < h; r++)
            for (int q = 0; q < w; q++)
            {
                double s = 0;
                for (int j = -Radius; j <= Radius; j++) s += k[j + Radius] * tmp[Reflect(r + j, h) * w + q];
                dst[r * w + q] = s;
            }
        return dst;
    }

    private static int Reflect(int i, int n)
    {
        while (i < 0 || i >= n) i = i < 0 ? -i - 1 : 2 * n - i - 1;
        return i;
    }

    private static void SameShape(Rgb8Image a, Rgb8Image b)
    {
        if (a.Width != b.Width || a.Height != b.Height)
            throw new ArgumentException($"images differ in size: {a.Width}×{a.Height} vs {b.Width}×{b.Height}");
    }
}
