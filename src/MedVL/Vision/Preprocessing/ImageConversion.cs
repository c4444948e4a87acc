using MedVL.Vision.Codecs;

namespace MedVL.Vision.Preprocessing;

/// <summary>How a decoded image becomes 8-bit RGB for a vision encoder.</summary>
public enum Rgb8Conversion
{
    /// <summary>PNG/JPEG: <see cref="PilConvert"/>; DICOM/NIfTI: <see cref="Window"/>.</summary>
    Auto,
    /// <summary>
    /// Exactly what PIL's <c>Image.open(p).convert('RGB')</c> gives, as used by HealthGPT/LLaVA data loaders:
    /// 1/2/4-bit gray scaled to 0..255; 16-bit gray opens as mode "I" and is CLIPPED to 0..255 (not scaled!);
    /// 16-bit RGB/RGBA/LA keep the most significant byte; alpha is dropped (not composited); gray is replicated.
    /// </summary>
    PilConvert,
    /// <summary>
    /// Medical display: rescaled values go through the LINEAR VOI LUT (PS3.3 C.11.2.1.2.1) with the file's first
    /// Window Center/Width, or the min..max of the image when there is none, to 0..255 (rounded half away from
    /// zero); MONOCHROME1 is inverted; gray is replicated to RGB.
    /// </summary>
    Window,
}

public static class ImageConversion
{
    /// <summary>Converts a decoded image to 8-bit RGB (see <see cref="Rgb8Conversion"/>).</summary>
    public static Rgb8Image ToRgb8(DecodedImage image, Rgb8Conversion mode = Rgb8Conversion.Auto,
        double? windowCenter = null, double? windowWidth = null)
    {
        if (mode == Rgb8Conversion.Auto)
            mode = image.Format is ImageFormat.Png or ImageFormat.Jpeg ? Rgb8Conversion.PilConvert : Rgb8Conversion.Window;
        int n = image.Width * image.Height, ch = image.Channels;
        var outPx = new byte[(long)n * 3];
        var v = image.StoredValues;
        string pi = image.Metadata.PhotometricInterpretation ?? "";
        bool color = ch >= 3;

        if (mode == Rgb8Conversion.PilConvert || (color && image.BitDepth <= 8 && !pi.StartsWith("YBR", StringComparison.Ordinal)))
        {
            Func<double, byte> map;
            if (image.BitDepth < 8) { double s = 255.0 / ((1 << image.BitDepth) - 1); map = x => (byte)Math.Clamp((int)Math.Round(x * s), 0, 255); }
            else if (image.BitDepth == 8) map = x => (byte)Math.Clamp((int)x, 0, 255);
            else if (!color && ch == 1) map = x => (byte)Math.Clamp((int)x, 0, 255); // PIL mode "I" -> "RGB" clips
            else map = x => (byte)((int)Math.Clamp(x, 0, 65535) >> 8);                // PIL "RGB;16B" keeps the MSB
            for (int p = 0; p < n; p++)
            {
                if (color) { outPx[3 * p] = map(v[p * ch]); outPx[3 * p + 1] = map(v[p * ch + 1]); outPx[3 * p + 2] = map(v[p * ch + 2]); }
                else { byte g = map(v[p * ch]); outPx[3 * p] = g; outPx[3 * p + 1] = g; outPx[3 * p + 2] = g; }
            }
            return new Rgb8Image(image.Width, image.Height, outPx);
        }

        if (color)
        {
            // YBR_FULL / YBR_FULL_422 stored values (PS3.3 C.7.6.3.1.2): convert with the JFIF equations.
            double max = (1 << Math.Min(image.BitDepth, 16)) - 1, half = (max + 1) / 2;
            for (int p = 0; p < n; p++)
            {
                double y = v[p * ch], cb = v[p * ch + 1] - half, cr = v[p * ch + 2] - half;
                double r = y + 1.402 * cr, g = y - 0.344136 * cb - 0.714136 * cr, b = y + 1.772 * cb;
                double k = 255.0 / max;
                outPx[3 * p] = ClampRound(r * k); outPx[3 * p + 1] = ClampRound(g * k); outPx[3 * p + 2] = ClampRound(b * k);
            }
            return new Rgb8Image(image.Width, image.Height, outPx);
        }

        var rv = image.RescaledValues;
        double c, w;
        if ((windowCenter ?? image.Metadata.WindowCenter) is double wc && (windowWidth ?? image.Metadata.WindowWidth) is double ww && ww >= 1)
        { c = wc; w = ww; }
        else
        {
            double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
            for (int p = 0; p < n; p++) { double x = rv[p * ch]; if (double.IsFinite(x)) { lo = Math.Min(lo, x); hi = Math.Max(hi, x); } }
            if (!double.IsFinite(lo)) { lo = 0; hi = 1; }
            // A window whose LINEAR function maps lo -> 0 and hi -> 255.
            w = Math.Max(1, hi - lo + 1); c = lo + 0.5 + (w - 1) / 2;
        }
        bool invert = pi == "MONOCHROME1";
        for (int p = 0; p < n; p++)
        {
            double x = rv[p * ch];
            byte g = double.IsFinite(x) ? ClampRound(VoiLut.Linear(x, c, w, 0, 255)) : (byte)0;
            if (invert) g = (byte)(255 - g);
            outPx[3 * p] = g; outPx[3 * p + 1] = g; outPx[3 * p + 2] = g;
        }
        return new Rgb8Image(image.Width, image.Height, outPx);
    }

    private static byte ClampRound(double x) => (byte)Math.Clamp(Math.Round(x, MidpointRounding.AwayFromZero), 0, 255);
}
