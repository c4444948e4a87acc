using MedVL.Vision.Codecs;
using MedVL.Vision.Preprocessing;

namespace MedVL.Tests.Vision;

public class ClipPreprocessingTests
{
    public static IEnumerable<object[]> ClipCases() => TestNpy.Manifest().GetProperty("clip").EnumerateArray()
        .Where(e => e.TryGetProperty("key", out _))
        .Select(e => new object[] { e.GetProperty("file").GetString()!, e.GetProperty("pad").GetBoolean(), e.GetProperty("key").GetString()! });

    public static IEnumerable<object[]> ResizeCases() => TestNpy.Manifest().GetProperty("clip").EnumerateArray()
        .Where(e => e.TryGetProperty("resize", out _))
        .Select(e => new object[] { e.GetProperty("resize")[0].GetInt32(), e.GetProperty("resize")[1].GetInt32(), e.GetProperty("filter").GetString()! });

    [Theory]
    [MemberData(nameof(ResizeCases))]
    public void ResampleIsBitExactWithPillow(int w, int h, string filter)
    {
        var src = ImageConversion.ToRgb8(ImageLoader.Load(TestNpy.FilePath("jpeg_source.png")));
        var f = filter == "bicubic" ? PilResample.Filter.Bicubic : PilResample.Filter.Bilinear;
        var outImg = PilResample.Resize(src, w, h, f);
        var (shape, expected) = TestNpy.Load($"resize_{w}x{h}_{filter}");
        Assert.Equal((shape[0], shape[1]), (outImg.Height, outImg.Width));
        TestNpy.AssertClose(expected, outImg.Pixels.Select(b => (double)b).ToArray(), 0, $"resize {w}x{h} {filter}");
    }

    [Theory]
    [MemberData(nameof(ClipCases))]
    public void PipelineMatchesPillowAndHfSteps(string file, bool pad, string key)
    {
        var proc = new ClipImageProcessor { PadToSquare = pad };
        var rgb = ImageConversion.ToRgb8(ImageLoader.Load(TestNpy.FilePath(file)));
        var cropped = proc.ResizeAndCrop(rgb);
        var (shape, expected) = TestNpy.Load(key + ".uint8");
        Assert.Equal((336, 336, 3), (shape[0], shape[1], shape[2]));
        TestNpy.AssertClose(expected, cropped.Pixels.Select(b => (double)b).ToArray(), 0, key + " uint8");
        if (File.Exists(TestNpy.ExpectedPath(key + ".pixel_values")))
        {
            var (_, pv) = TestNpy.Load(key + ".pixel_values");
            var mine = proc.Preprocess(rgb);
            // Same float32 operation order as transformers' rescale()+normalize(): bit-exact.
            TestNpy.AssertClose(pv, mine.Select(x => (double)x).ToArray(), 0, key + " pixel_values");
        }
    }

    [Fact]
    public void PadColorIsLlavaTruncatedMean()
        => Assert.Equal(((byte)122, (byte)116, (byte)104), new ClipImageProcessor().PadColor);

    [Fact]
    public void ResizeOutputSizeFollowsHf()
    {
        var p = new ClipImageProcessor();
        Assert.Equal((336, 510), p.ResizeOutputSize(121, 184)); // int(336*184/121) = int(510.94)
        Assert.Equal((506, 336), p.ResizeOutputSize(193, 128)); // int(336*193/128) = int(506.6)
    }
}
