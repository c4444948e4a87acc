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
            if (img.Channels == 1)
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

    [Fact]
    public void Monochrome1IsInvertedForDisplay()
    {
        var img = new DecodedImage(2, 1, 1, 8, ImageFormat.Dicom, [0, 255], metadata: new ImageMetadata { PhotometricInterpretation = "MONOCHROME1", WindowCenter = 128, WindowWidth = 256 });
        var rgb = ImageConversion.ToRgb8(img);
        Assert.Equal(255, rgb.Pixels[0]);
        Assert.Equal(0, rgb.Pixels[3]);
    }
}
