using MedVL.Vision.Codecs;

namespace MedVL.Tests.Vision;

public class PngTests
{
    public static IEnumerable<object[]> Files() => TestNpy.ManifestStrings("png");

    [Theory]
    [MemberData(nameof(Files))]
    public void DecodesLikeReference(string name)
    {
        var img = ImageLoader.Load(TestNpy.FilePath(name));
        var (shape, expected) = TestNpy.Load(name);
        Assert.Equal(ImageFormat.Png, img.Format);
        Assert.Equal(shape[0], img.Height);
        Assert.Equal(shape[1], img.Width);
        Assert.Equal(shape[2], img.Channels);
        TestNpy.AssertClose(expected, img.StoredValues, 0, name);
    }

    [Theory]
    [InlineData(1, 8)] [InlineData(2, 8)] [InlineData(3, 8)] [InlineData(4, 8)]
    [InlineData(1, 16)] [InlineData(2, 16)] [InlineData(3, 16)] [InlineData(4, 16)]
    public void EncoderRoundTrips(int channels, int depth)
    {
        var rng = new Random(42 + channels * depth);
        int w = 23, h = 17;
        byte[] png;
        var values = new double[w * h * channels];
        if (depth == 8)
        {
            var px = new byte[values.Length];
            for (int i = 0; i < px.Length; i++) { px[i] = (byte)((i % 7 == 0) ? rng.Next(256) : (i * 3) & 0xFF); values[i] = px[i]; }
            png = PngEncoder.Encode(px, w, h, channels);
        }
        else
        {
            var px = new ushort[values.Length];
            for (int i = 0; i < px.Length; i++) { px[i] = (ushort)rng.Next(65536); values[i] = px[i]; }
            png = PngEncoder.Encode16(px, w, h, channels);
        }
        var img = PngDecoder.Decode(png, "roundtrip");
        Assert.Equal((w, h, channels, depth), (img.Width, img.Height, img.Channels, img.BitDepth));
        TestNpy.AssertClose(values, img.StoredValues, 0, "roundtrip");
    }

    [Fact]
    public void EncoderOutputDecodesWithReferenceFileValues()
    {
        // Re-encode a real decoded file and decode again.
        var img = ImageLoader.Load(TestNpy.FilePath("png_rgba_16bit_adam7_37x23.png"));
        var again = PngDecoder.Decode(PngEncoder.Encode(img), "re-encoded");
        TestNpy.AssertClose(img.StoredValues, again.StoredValues, 0, "re-encoded");
    }

    [Fact]
    public void CrcMismatchIsReported()
    {
        var data = File.ReadAllBytes(TestNpy.FilePath("png_gray_8bit_plain_37x23.png"));
        data[20] ^= 0x01; // inside IHDR
        var e = Assert.Throws<InvalidImageException>(() => PngDecoder.Decode(data, "bad.png"));
        Assert.Contains("CRC mismatch", e.Message);
        Assert.Contains("bad.png", e.Message);
        Assert.Contains("IHDR", e.Message);
    }
}
