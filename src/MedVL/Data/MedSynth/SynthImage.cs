using MedVL.Tensors;
namespace MedVL.Data.MedSynth;

/// <summary>A rendered image: Height×Width×Channels interleaved, display values in [0, 1]; CT also keeps Hounsfield units.</summary>
public sealed class SynthImage
{
    public SynthImage(int width, int height, int channels, float[] pixels, float[]? hounsfield = null)
    {
        if (pixels.Length != checked(width * height * channels))
            throw new ArgumentException($"{pixels.Length} values for {width}x{height}x{channels}");
        Width = width; Height = height; Channels = channels; Pixels = pixels; Hounsfield = hounsfield;
    }

    public int Width { get; }
    public int Height { get; }
    public int Channels { get; }
    public float[] Pixels { get; }
    /// <summary>CT attenuation before windowing (Height×Width), null for other modalities.</summary>
    public float[]? Hounsfield { get; }

    /// <summary>Box-filter downsampling by an integer factor (the low-resolution half of a super-resolution pair).</summary>
    public SynthImage Downsample(int factor)
    {
        if (factor < 1 || Width % factor != 0 || Height % factor != 0)
            throw new ArgumentException($"cannot downsample {Width}x{Height} by {factor}");
        int w = Width / factor, h = Height / factor;
        var dst = new float[w * h * Channels];
        float inv = 1f / (factor * factor);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < Channels; c++)
                {
                    float sum = 0;
                    for (int dy = 0; dy < factor; dy++)
                        for (int dx = 0; dx < factor; dx++)
                            sum += Pixels[((y * factor + dy) * Width + x * factor + dx) * Channels + c];
                    dst[(y * w + x) * Channels + c] = sum * inv;
                }
        return new SynthImage(w, h, Channels, dst);
    }

    /// <summary>Quantise to 8 bits per sample (round half up), the PNG a data set stores.</summary>
    public byte[] ToBytes()
    {
        var b = new byte[Pixels.Length];
        for (int i = 0; i < b.Length; i++) b[i] = (byte)Math.Clamp((int)(Pixels[i] * 255f + 0.5f), 0, 255);
        return b;
    }
}

/// <summary>Renders a phantom in one modality: painter's algorithm over the structures with one-pixel soft edges, then noise.</summary>
public static class PhantomRenderer
{
    public static SynthImage Render(Phantom p, Modality m, int size, DeterministicRandom rng)
    {
        if (size < 8) throw new ArgumentOutOfRangeException(nameof(size), "image size must be at least 8");
        if (m == Modality.Pathology) return RenderPathology(p, size, rng);
        if (p.Anatomy == Anatomy.Tissue) throw new ArgumentException("a tissue phantom renders only as pathology");
        var signal = new float[size * size];
        double px = 2.0 / size;
        double background = TissueTable.Value(Tissue.Air, m);
        for (int y = 0; y < size; y++)
        {
            double ny = -1 + (y + 0.5) * px;
            for (int x = 0; x < size; x++)
            {
                double nx = -1 + (x + 0.5) * px, v = background;
                foreach (var s in p.Structures)
                {
                    double r = s.Radial(nx, ny);
                    if (r > 1.5) continue;
                    double dist = (1 - r) * Math.Min(s.Rx, s.Ry); // ≈ distance to the edge, normalised units
                    double alpha = Math.Clamp(dist / px + 0.5, 0, 1);
                    if (alpha > 0) v += alpha * (TissueTable.Value(s.Tissue, m) - v);
                }
                signal[y * size + x] = (float)v;
            }
        }
        var img = new float[size * size];
        float[]? hu = null;
        switch (m)
        {
            case Modality.CT:
            {
                hu = new float[size * size];
                var (c, w) = TissueTable.CtWindow(p.Anatomy);
                for (int i = 0; i < img.Length; i++)
                {
                    hu[i] = (float)(signal[i] + 10 * rng.Normal());
                    img[i] = (float)Math.Clamp((hu[i] - (c - w / 2)) / w, 0, 1); // linear VOI window
                }
                break;
            }
            case Modality.MriT1:
            case Modality.MriT2:
            {
                // smooth receive-coil bias field plus noise, as real MR magnitude images have
                double bx = rng.Uniform(-0.15, 0.15), by = rng.Uniform(-0.15, 0.15);
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++)
                    {
                        int i = y * size + x;
                        double bias = 1 + bx * (2.0 * x / size - 1) + by * (2.0 * y / size - 1);
                        img[i] = (float)Math.Clamp(Math.Abs(signal[i] * bias + 0.02 * rng.Normal()), 0, 1);
                    }
                break;
            }
            case Modality.XRay:
            {
                // a projection radiograph: blurred attenuation, ribs across the thorax, bright where attenuating
                var blurred = BoxBlur(signal, size, Math.Max(1, size / 64));
                double ribPeriod = rng.Uniform(0.16, 0.2);
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++)
                    {
                        int i = y * size + x;
                        double nx = -1 + (x + 0.5) * px, ny = -1 + (y + 0.5) * px;
                        double rib = Math.Abs(nx) > 0.12 && Math.Abs(ny) < 0.62
                            ? 0.12 * Math.Pow(Math.Max(0, Math.Cos(2 * Math.PI * (ny + 0.25 * nx * nx) / ribPeriod)), 8) : 0;
                        img[i] = (float)Math.Clamp(blurred[i] + rib + 0.015 * rng.Normal(), 0, 1);
                    }
                break;
            }
        }
        return new SynthImage(size, size, 1, img, hu);
    }

    /// <summary>H&amp;E-like tissue: pink stroma with purple nuclei; tumour regions have dense, large, dark nuclei.</summary>
    private static SynthImage RenderPathology(Phantom p, int size, DeterministicRandom rng)
    {
        var rgb = new float[size * size * 3];
        for (int i = 0; i < size * size; i++)
        {
            double n = 0.03 * rng.Normal();
            rgb[i * 3] = (float)Math.Clamp(0.93 + n, 0, 1);
            rgb[i * 3 + 1] = (float)Math.Clamp(0.72 + n, 0, 1);
            rgb[i * 3 + 2] = (float)Math.Clamp(0.82 + n, 0, 1);
        }
        double px = 2.0 / size;
        int baseNuclei = size * size / 90;
        for (int k = 0; k < baseNuclei; k++)
            PaintNucleus(rgb, size, rng.Uniform(-1, 1), rng.Uniform(-1, 1), 0.9 * px * Math.Max(1.5, size / 64.0), 0.55, px);
        foreach (var l in p.Lesions)
        {
            var g = l.Geometry;
            int n = (int)(size * size * g.Rx * g.Ry / 8);
            for (int k = 0; k < n; k++)
            {
                double x = g.Cx + rng.Uniform(-1, 1) * g.Rx * 1.3, y = g.Cy + rng.Uniform(-1, 1) * g.Ry * 1.3;
                if (g.Radial(x, y) > 1) continue;
                PaintNucleus(rgb, size, x, y, 1.6 * px * Math.Max(1.5, size / 64.0), 0.3, px);
            }
        }
        return new SynthImage(size, size, 3, rgb);
    }

    private static void PaintNucleus(float[] rgb, int size, double cx, double cy, double r, double darkness, double px)
    {
        int x0 = Math.Max(0, (int)((cx - r + 1) / px)), x1 = Math.Min(size - 1, (int)((cx + r + 1) / px));
        int y0 = Math.Max(0, (int)((cy - r + 1) / px)), y1 = Math.Min(size - 1, (int)((cy + r + 1) / px));
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++)
            {
                double dx = -1 + (x + 0.5) * px - cx, dy = -1 + (y + 0.5) * px - cy;
                double a = Math.Clamp((r - Math.Sqrt(dx * dx + dy * dy)) / px + 0.5, 0, 1);
                if (a <= 0) continue;
                int i = (y * size + x) * 3;
                rgb[i] += (float)(a * (0.30 * darkness + 0.12 - rgb[i]));         // haematoxylin: blue-purple
                rgb[i + 1] += (float)(a * (0.15 * darkness + 0.05 - rgb[i + 1]));
                rgb[i + 2] += (float)(a * (0.45 + 0.2 * darkness - rgb[i + 2]));
            }
    }

    private static float[] BoxBlur(float[] src, int size, int radius)
    {
        var tmp = new float[src.Length];
        var dst = new float[src.Length];
        for (int pass = 0; pass < 2; pass++)
        {
            var from = pass == 0 ? src : tmp;
            var to = pass == 0 ? tmp : dst;
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    double sum = 0;
                    int n = 0;
                    for (int d = -radius; d <= radius; d++)
                    {
                        int xx = pass == 0 ? x + d : x, yy = pass == 0 ? y : y + d;
                        if ((uint)xx >= (uint)size || (uint)yy >= (uint)size) continue;
                        sum += from[yy * size + xx];
                        n++;
                    }
                    to[y * size + x] = (float)(sum / n);
                }
        }
        return dst;
    }
}
