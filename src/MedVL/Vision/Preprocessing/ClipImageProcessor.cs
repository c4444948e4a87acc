using MedVL.Vision.Codecs;

namespace MedVL.Vision.Preprocessing;

/// <summary>
/// Hugging Face <c>CLIPImageProcessor</c> as configured for openai/clip-vit-large-patch14-336
/// (preprocessor_config.json: shortest_edge 336, crop 336x336, BICUBIC, rescale 1/255, OpenAI CLIP mean/std),
/// optionally preceded by LLaVA's <c>expand2square</c> (pad to a square with the mean colour, image centred).
/// </summary>
public sealed record ClipImageProcessor
{
    public static readonly float[] OpenAIClipMean = [0.48145466f, 0.4578275f, 0.40821073f];
    public static readonly float[] OpenAIClipStd = [0.26862954f, 0.26130258f, 0.27577711f];

    public int ShortestEdge { get; init; } = 336;
    public int CropHeight { get; init; } = 336;
    public int CropWidth { get; init; } = 336;
    public double RescaleFactor { get; init; } = 1.0 / 255.0;
    public float[] ImageMean { get; init; } = OpenAIClipMean;
    public float[] ImageStd { get; init; } = OpenAIClipStd;
    /// <summary>LLaVA <c>image_aspect_ratio == "pad"</c>: apply expand2square before the processor.</summary>
    public bool PadToSquare { get; init; } = true;
    public PilResample.Filter Resample { get; init; } = PilResample.Filter.Bicubic;

    /// <summary>LLaVA's background: <c>tuple(int(x*255) for x in image_mean)</c> (truncation, i.e. 122,116,104).</summary>
    public (byte R, byte G, byte B) PadColor =>
        ((byte)(int)(ImageMean[0] * 255.0), (byte)(int)(ImageMean[1] * 255.0), (byte)(int)(ImageMean[2] * 255.0));

    /// <summary>LLaVA expand2square: pastes the image centred ((big-small)//2 offset) on a mean-colour square.</summary>
    public Rgb8Image ExpandToSquare(Rgb8Image img)
    {
        if (img.Width == img.Height) return img;
        int s = Math.Max(img.Width, img.Height);
        var o = new Rgb8Image(s, s);
        var (r, g, b) = PadColor;
        for (int p = 0; p < s * s; p++) { o.Pixels[3 * p] = r; o.Pixels[3 * p + 1] = g; o.Pixels[3 * p + 2] = b; }
        int ox = img.Width < s ? (s - img.Width) / 2 : 0, oy = img.Height < s ? (s - img.Height) / 2 : 0;
        for (int y = 0; y < img.Height; y++)
            img.Pixels.AsSpan(y * img.Width * 3, img.Width * 3).CopyTo(o.Pixels.AsSpan(((y + oy) * s + ox) * 3));
        return o;
    }

    /// <summary>
    /// HF <c>get_resize_output_image_size(default_to_square=False)</c>: the short side becomes ShortestEdge and
    /// the long side <c>int(ShortestEdge * long / short)</c>.
    /// </summary>
    public (int Width, int Height) ResizeOutputSize(int width, int height)
    {
        bool wShort = width <= height;
        int shortSide = wShort ? width : height, longSide = wShort ? height : width;
        int newLong = (int)((double)ShortestEdge * longSide / shortSide);
        return wShort ? (ShortestEdge, newLong) : (newLong, ShortestEdge);
    }

    /// <summary>Pad (optional), resize shortest edge with Pillow's resampler, then HF centre crop; uint8 RGB.</summary>
    public Rgb8Image ResizeAndCrop(Rgb8Image img)
    {
        if (PadToSquare) img = ExpandToSquare(img);
        var (rw, rh) = ResizeOutputSize(img.Width, img.Height);
        var resized = PilResample.Resize(img, rw, rh, Resample);
        return CenterCrop(resized, CropWidth, CropHeight);
    }

    /// <summary>HF <c>center_crop</c>: top = (h - ch) // 2, left = (w - cw) // 2, zero-padding if the image is smaller.</summary>
    public static Rgb8Image CenterCrop(Rgb8Image img, int cw, int ch)
    {
        if (img.Width == cw && img.Height == ch) return img;
        var o = new Rgb8Image(cw, ch);
        // Python floor division; for a smaller image this equals HF's pad-then-crop placement.
        int top = FloorDiv(img.Height - ch, 2), left = FloorDiv(img.Width - cw, 2);
        for (int y = 0; y < ch; y++)
        {
            int sy = y + top;
            if (sy < 0 || sy >= img.Height) continue;
            for (int x = 0; x < cw; x++)
            {
                int sx = x + left;
                if (sx < 0 || sx >= img.Width) continue;
                int si = (sy * img.Width + sx) * 3, di = (y * cw + x) * 3;
                o.Pixels[di] = img.Pixels[si]; o.Pixels[di + 1] = img.Pixels[si + 1]; o.Pixels[di + 2] = img.Pixels[si + 2];
            }
        }
        return o;
    }

    private static int FloorDiv(int a, int b) => (int)Math.Floor((double)a / b);

    /// <summary>
    /// Rescale and normalise into <paramref name="chw"/> (3 x H x W, channel-first), computed in float32 exactly
    /// as HF does: <c>float32(x * 1/255 in float64)</c>, then <c>(x - mean) / std</c> in float32.
    /// </summary>
    public void Normalize(Rgb8Image img, Span<float> chw)
    {
        int n = img.Width * img.Height;
        if (chw.Length < 3 * n) throw new ArgumentException($"destination needs {3 * n} floats");
        for (int c = 0; c < 3; c++)
        {
            float mean = ImageMean[c], std = ImageStd[c];
            var plane = chw.Slice(c * n, n);
            for (int p = 0; p < n; p++)
            {
                float x = (float)(img.Pixels[3 * p + c] * RescaleFactor);
                plane[p] = (x - mean) / std;
            }
        }
    }

    /// <summary>The full pipeline on an 8-bit RGB image: float[3 * CropHeight * CropWidth], channel-first.</summary>
    public float[] Preprocess(Rgb8Image img)
    {
        var cropped = ResizeAndCrop(img);
        var outp = new float[3 * cropped.Width * cropped.Height];
        Normalize(cropped, outp);
        return outp;
    }

    /// <summary>The full pipeline on any decoded image (converted to 8-bit RGB per <paramref name="conversion"/>).</summary>
    public float[] Preprocess(DecodedImage image, Rgb8Conversion conversion = Rgb8Conversion.Auto)
        => Preprocess(ImageConversion.ToRgb8(image, conversion));
}
