using System.Text.Json;
using MedVL.Vision.Codecs;
using MedVL.Vision.Preprocessing;

namespace MedVL.Tests.Vision;

public class DicomTests
{
    public static IEnumerable<object[]> Decodable() => TestNpy.Manifest().GetProperty("dicom").EnumerateArray()
        .Where(e => e.TryGetProperty("frames", out _)).Select(e => new object[] { e.GetProperty("file").GetString()! });

    private static JsonElement Entry(string file) => TestNpy.Manifest().GetProperty("dicom").EnumerateArray().First(e => e.GetProperty("file").GetString() == file);

    [Theory]
    [MemberData(nameof(Decodable))]
    public void StoredRescaledAndWindowedMatchPydicom(string file)
    {
        var entry = Entry(file);
        int frames = entry.GetProperty("frames").GetInt32();
        foreach (int fi in new[] { 0, frames - 1 }.Distinct())
        {
            var img = ImageLoader.Load(TestNpy.FilePath(file), new ImageLoadOptions { Frame = fi });
            Assert.Equal(ImageFormat.Dicom, img.Format);
            Assert.Equal(frames, img.Metadata.NumberOfFrames);
            var (shape, stored) = TestNpy.Load($"{file}.frame{fi}.stored");
            Assert.Equal((shape[0], shape[1], shape[2]), (img.Height, img.Width, img.Channels));
            TestNpy.AssertClose(stored, img.StoredValues, 0, $"{file} frame {fi} stored");
            if (entry.TryGetProperty("palette", out _))
            {
                Assert.Equal("PALETTE COLOR", img.Metadata.PhotometricInterpretation);
                var (_, rgb) = TestNpy.Load($"{file}.palette_rgb");
                TestNpy.AssertClose(rgb, ImageConversion.ApplyPalette(img), 0, $"{file} palette");
                var rgb8 = ImageConversion.ToRgb8(img);
                int shift = img.Metadata.Palette!.BitsPerEntry > 8 ? 8 : 0;
                TestNpy.AssertClose(rgb.Select(v => (double)((int)v >> shift)).ToArray(), rgb8.Pixels.Select(b => (double)b).ToArray(), 0, $"{file} palette 8-bit");
            }
            else if (img.Channels == 1)
            {
                var (_, rescaled) = TestNpy.Load($"{file}.frame{fi}.rescaled");
                TestNpy.AssertClose(rescaled, img.RescaledValues, 1e-9, $"{file} rescaled");
                if (entry.TryGetProperty("wc", out var wc))
                {
                    Assert.Equal(wc.GetDouble(), img.Metadata.WindowCenter);
                    Assert.Equal(entry.GetProperty("ww").GetDouble(), img.Metadata.WindowWidth);
                    var (_, windowed) = TestNpy.Load($"{file}.frame{fi}.windowed");
                    var mine = new double[img.RescaledValues.Length];
                    VoiLut.ApplyLinear(img.RescaledValues, mine, wc.GetDouble(), entry.GetProperty("ww").GetDouble(),
                        entry.GetProperty("ymin").GetDouble(), entry.GetProperty("ymax").GetDouble());
                    TestNpy.AssertClose(windowed, mine, 1e-6, $"{file} windowed");
                }
            }
        }
    }

    [Fact]
    public void CtSmallMetadata()
    {
        var img = ImageLoader.Load(TestNpy.FilePath("CT_small.dcm"));
        Assert.Equal("CT", img.Metadata.Modality);
        Assert.Equal(-1024, img.Metadata.RescaleIntercept);
        Assert.Equal(1, img.Metadata.RescaleSlope);
        Assert.Equal("MONOCHROME2", img.Metadata.PhotometricInterpretation);
        Assert.True(img.Metadata.IsSigned);
        var ds = DicomDataset.Read(File.ReadAllBytes(TestNpy.FilePath("CT_small.dcm")), "CT_small.dcm");
        Assert.True(ds.HasPreamble);
        Assert.Equal(128, ds.GetInt(0x00280010));
        Assert.Equal("1.2.840.10008.1.2.1", ds.TransferSyntaxUid);
    }

    [Theory]
    [InlineData("MR_small_jpeg_ls_lossless.dcm", "1.2.840.10008.1.2.4.80", "JPEG-LS Lossless")]
    [InlineData("JPEG2000.dcm", "1.2.840.10008.1.2.4.91", "JPEG 2000")]
    public void UnsupportedTransferSyntaxNamesIt(string file, string uid, string name)
    {
        var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load(TestNpy.FilePath(file)));
        Assert.Contains(uid, e.Message);
        Assert.Contains(name, e.Message);
        Assert.Contains(file, e.Message);
    }

    [Fact]
    public void TruncatedPixelDataIsReported()
    {
        var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load(TestNpy.FilePath("MR_truncated.dcm")));
        Assert.Contains("MR_truncated.dcm", e.Message);
    }

    [Theory]
    [InlineData("nested_priv_SQ.dcm")]
    [InlineData("priv_SQ.dcm")]
    [InlineData("UN_sequence.dcm")]
    public void DatasetsWithSequencesParse(string file)
    {
        var ds = DicomDataset.Read(File.ReadAllBytes(TestNpy.FilePath(file)), file);
        Assert.NotEmpty(ds.Elements);
    }

    [Theory]
    [InlineData("ExplVR_BigEndNoMeta.dcm", "1.2.840.10008.1.2.2")]
    [InlineData("ExplVR_LitEndNoMeta.dcm", "1.2.840.10008.1.2.1")]
    public void NoPreambleNoMetaTransferSyntaxIsInferred(string file, string expectedTs)
    {
        var bytes = File.ReadAllBytes(TestNpy.FilePath(file));
        Assert.Equal(ImageFormat.Dicom, ImageLoader.Sniff(bytes, file));
        var ds = DicomDataset.Read(bytes, file);
        Assert.False(ds.HasPreamble);
        Assert.Equal(expectedTs, ds.TransferSyntaxUid);
        Assert.Equal(24, ds.Elements.Count); // same element count as pydicom
        Assert.Equal("1.2.840.10008.5.1.4.1.1.481.8", ds.GetString(0x00080016)); // SOP Class UID as pydicom reads it
    }

    [Fact]
    public void ElementLongerThanFileIsReported()
    {
        // pydicom's no_meta.dcm starts one byte off, so its first "element" claims 173 MB: must be a clean error.
        var e = Assert.Throws<InvalidImageException>(() => DicomDataset.Read(File.ReadAllBytes(TestNpy.FilePath("no_meta.dcm")), "no_meta.dcm"));
        Assert.Contains("(0820,0500)", e.Message);
        Assert.Contains("no_meta.dcm", e.Message);
    }

    [Fact]
    public void VoiLinearMatchesStandardFormula()
    {
        // PS3.3 C.11.2.1.2.1 worked example: c=2048, w=4096 -> 0..255.
        Assert.Equal(0, VoiLut.Linear(-10, 2048, 4096, 0, 255));
        Assert.Equal(255, VoiLut.Linear(5000, 2048, 4096, 0, 255));
        Assert.Equal(((2048 - 2047.5) / 4095 + 0.5) * 255, VoiLut.Linear(2048, 2048, 4096, 0, 255), 12);
    }

    [Theory]
    [InlineData("MR_small.dcm")]
    [InlineData("MR_small_RLE.dcm")]
    public void WindowTo8BitMatchesPydicomVoiRescaledTo255(string file)
    {
        // pydicom's apply_voi_lut output spans [ymin, ymax]; the LINEAR function is affine in its output range,
        // so mapping it to [0, 255] must give our 8-bit display values up to rounding (<= 1 level).
        var entry = TestNpy.Manifest().GetProperty("dicom").EnumerateArray().First(e => e.GetProperty("file").GetString() == file);
        double ymin = entry.GetProperty("ymin").GetDouble(), ymax = entry.GetProperty("ymax").GetDouble();
        var img = ImageLoader.Load(TestNpy.FilePath(file));
        var rgb = ImageConversion.ToRgb8(img);
        var (_, windowed) = TestNpy.Load($"{file}.frame0.windowed");
        for (int i = 0; i < windowed.Length; i++)
        {
            double expected = (windowed[i] - ymin) / (ymax - ymin) * 255;
            Assert.True(Math.Abs(expected - rgb.Pixels[3 * i]) <= 1.0, $"pixel {i}: {rgb.Pixels[3 * i]} vs {expected}");
            Assert.Equal(rgb.Pixels[3 * i], rgb.Pixels[3 * i + 2]);
        }
    }

    [Fact]
    public void LoadFromStreamMatchesFile()
    {
        using var fs = File.OpenRead(TestNpy.FilePath("CT_small.dcm"));
        var a = ImageLoader.Load(fs, "CT_small.dcm");
        var b = ImageLoader.Load(TestNpy.FilePath("CT_small.dcm"));
        Assert.Equal(b.StoredValues, a.StoredValues);
    }

    [Fact]
    public void Monochrome1IsInvertedForDisplay()
    {
        var img = new DecodedImage(2, 1, 1, 8, ImageFormat.Dicom, [0, 255], metadata: new ImageMetadata { PhotometricInterpretation = "MONOCHROME1", WindowCenter = 128, WindowWidth = 256 });
        var rgb = ImageConversion.ToRgb8(img);
        Assert.Equal(255, rgb.Pixels[0]);
        Assert.Equal(0, rgb.Pixels[3]);
    }
}
