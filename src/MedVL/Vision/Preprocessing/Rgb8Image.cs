namespace MedVL.Vision.Preprocessing;

/// <summary>An 8-bit interleaved RGB image (row-major, 3 bytes per pixel) - the equivalent of a PIL "RGB" image.</summary>
public sealed class Rgb8Image
{
    public int Width { get; }
    public int Height { get; }
    /// <summary>R,G,B bytes, row-major; length Width*Height*3.</summary>
    public byte[] Pixels { get; }

    public Rgb8Image(int width, int height, byte[] pixels)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (pixels.Length != (long)width * height * 3)
            throw new ArgumentException($"pixels has {pixels.Length} bytes, expected {width}x{height}x3");
        Width = width; Height = height; Pixels = pixels;
    }

    public Rgb8Image(int width, int height) : this(width, height, new byte[(long)width * height * 3]) { }
}
