using MedVL.Vision.Codecs;

namespace MedVL.Tests.Vision;

public class JpegTests
{
    public static IEnumerable<object[]> Files() => TestNpy.ManifestStrings("jpeg");

    /// <summary>
    /// Our decoder mirrors libjpeg-turbo's islow IDCT, fancy upsampling and colour tables, so Pillow's pixels
    /// match exactly (max |diff| = 0) on every fixture: baseline, progressive, 4:4:4/4:2:2/4:2:0, gray,
    /// restart intervals, Adobe RGB, optimised tables, a real camera JPEG and JPEG-in-DICOM.
    /// </summary>
    public const double MaxAbsDiff = 0;

    [Theory]
    [MemberData(nameof(Files))]
    public void DecodesLikePillow(string name)
    {
        var img = ImageLoader.Load(TestNpy.FilePath(name));
        var (shape, expected) = TestNpy.Load(name);
        Assert.Equal(ImageFormat.Jpeg, img.Format);
        Assert.Equal((shape[0], shape[1], shape[2]), (img.Height, img.Width, img.Channels));
        TestNpy.AssertClose(expected, img.StoredValues, MaxAbsDiff, name);
    }

    [Fact]
    public void TruncatedJpegIsReported()
    {
        var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load(TestNpy.FilePath("skimage_truncated.jpg")));
        Assert.Contains("skimage_truncated.jpg", e.Message);
        Assert.Contains("JPEG", e.Message);
    }
}
