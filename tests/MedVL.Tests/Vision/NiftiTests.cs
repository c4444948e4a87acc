using MedVL.Vision.Codecs;

namespace MedVL.Tests.Vision;

public class NiftiTests
{
    public static IEnumerable<object[]> Cases() => TestNpy.Manifest().GetProperty("nifti").EnumerateArray()
        .Select(e => new object[] { e.GetProperty("file").GetString()!, e.GetProperty("axis").GetInt32(), e.GetProperty("index").GetInt32(), e.GetProperty("volume").GetInt32(), e.GetProperty("key").GetString()! });

    [Theory]
    [MemberData(nameof(Cases))]
    public void SliceMatchesNibabel(string file, int axis, int index, int volume, string key)
    {
        var img = ImageLoader.Load(TestNpy.FilePath(file), new ImageLoadOptions { SliceAxis = axis, SliceIndex = index, Volume = volume });
        Assert.Equal(ImageFormat.Nifti, img.Format);
        var (shape, stored) = TestNpy.Load(key + ".stored");
        Assert.Equal((shape[0], shape[1]), (img.Height, img.Width));
        TestNpy.AssertClose(stored, img.StoredValues, 0, key + " stored");
        var (_, fdata) = TestNpy.Load(key + ".fdata");
        // nibabel scales in float32 when slope/inter are float32; allow float32 rounding on the rescaled values.
        for (int i = 0; i < fdata.Length; i++)
            Assert.True(Math.Abs(fdata[i] - img.RescaledValues[i]) <= 1e-6 * Math.Max(1, Math.Abs(fdata[i])), $"{key} fdata[{i}] {img.RescaledValues[i]} vs {fdata[i]}");
    }

    [Fact]
    public void ZeroSlopeMeansNoScaling()
    {
        var bytes = File.ReadAllBytes(TestNpy.FilePath("synthetic_int32_le.nii"));
        var h = NiftiDecoder.ReadHeader(bytes, "x.nii");
        Assert.False(h.HasScaling && h.SclSlope == 0);
        var img = NiftiDecoder.Decode(bytes, "x.nii");
        Assert.Same(img.StoredValues, img.RescaledValues);
    }

    [Fact]
    public void BadSliceIndexIsReported()
    {
        var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load(TestNpy.FilePath("anatomical.nii"), new ImageLoadOptions { SliceIndex = 10000 }));
        Assert.Contains("slice index", e.Message);
    }
}
