namespace MedVL.Vision.Codecs;

public static partial class JpegDecoder
{
    public static bool IsJpeg(ReadOnlySpan<byte> d) => d.Length >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF;
    public static DecodedImage Decode(byte[] data, string source = "<stream>", ImageLoadOptions? options = null)
        => throw new InvalidImageException(source, "JPEG: not implemented yet");
}
