using System.IO.Compression;

namespace MedVL.Tests.Vision;

/// <summary>Paths and loading for the gzipped .npy fixtures written by tools/vision/make_image_fixtures.py.</summary>
internal static class TestNpy
{
    public static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures", "vision");
    public static string FilePath(string name) => Path.Combine(Fixtures, "files", name);
    public static string ExpectedPath(string name) => Path.Combine(Fixtures, "expected", name + ".npy.gz");

    public static (int[] Shape, double[] Data) Load(string name)
    {
        using var fs = File.OpenRead(ExpectedPath(name));
        using var gz = new GZipStream(fs, CompressionMode.Decompress);
        var ms = new MemoryStream();
        gz.CopyTo(ms);
        return Parse(ms.ToArray());
    }

    /// <summary>Parsed by the library's own reader (MedVL.Formats.Npy, itself checked against numpy-written files).</summary>
    public static (int[] Shape, double[] Data) Parse(byte[] b)
    {
        var a = MedVL.Formats.Npy.Read(new MemoryStream(b), "vision fixture");
        return (a.Shape, a.ToFloat64());
    }

    /// <summary>Fails with the first differing index when arrays differ by more than tol.</summary>
    public static void AssertClose(double[] expected, double[] actual, double tol, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(expected[i] - actual[i]);
            if (!(d <= tol) && !(double.IsNaN(expected[i]) && double.IsNaN(actual[i])))
                Assert.Fail($"{what}: index {i}: got {actual[i]}, expected {expected[i]} (tol {tol})");
        }
    }

    public static System.Text.Json.JsonElement Manifest()
        => System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "expected", "manifest.json"))).RootElement;

    public static IEnumerable<object[]> ManifestStrings(string section)
        => Manifest().GetProperty(section).EnumerateArray().Select(e => new object[] { e.GetString()! });
}
