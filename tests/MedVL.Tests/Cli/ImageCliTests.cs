using System.IO.Compression;
using MedVL.Formats;

namespace MedVL.Tests.Cli;

/// <summary>`medvl image to-npy` against pydicom's pixels (fixtures written by tools/vision/make_image_fixtures.py).</summary>
public class ImageCliTests
{
    private static float[] ReadGzNpy(string path)
    {
        var tmp = Path.GetTempFileName();
        using (var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress))
        using (var o = File.Create(tmp)) gz.CopyTo(o);
        var a = Npy.Read(tmp).ToFloat32();
        File.Delete(tmp);
        return a;
    }

    [Theory]
    [InlineData("CT_small.dcm", "rescaled", false)]
    [InlineData("CT_small.dcm", "stored", true)]
    [InlineData("MR_small_RLE.dcm", "rescaled", false)]
    [InlineData("MR_small_bigendian.dcm", "stored", true)]
    public void DicomToNpyMatchesPydicom(string file, string kind, bool raw)
    {
        var outPath = Path.Combine(Path.GetTempPath(), $"medvl-{Guid.NewGuid():N}.npy");
        var args = new List<string> { "image", "to-npy", TestPaths.Fixture("vision", "files", file), outPath };
        if (raw) args.Add("--raw");
        var (code, _, err) = CliRunner.Run(args.ToArray());
        Assert.True(code == 0, err);
        var got = Npy.Read(outPath);
        Assert.Equal(2, got.Shape.Length);
        Assert.Equal(ReadGzNpy(TestPaths.Fixture("vision", "expected", $"{file}.frame0.{kind}.npy.gz")), got.ToFloat32());
        File.Delete(outPath);
    }

    [Fact]
    public void UnsupportedTransferSyntaxIsAClearError()
    {
        var (code, _, err) = CliRunner.Run("image", "to-npy", TestPaths.Fixture("vision", "files", "JPEG2000.dcm"), Path.Combine(Path.GetTempPath(), "x.npy"));
        Assert.Equal(1, code);
        Assert.Contains("JPEG2000.dcm", err);
        Assert.Contains("1.2.840.10008.1.2.4.9", err); // the JPEG 2000 transfer syntax UID is named
    }
}
