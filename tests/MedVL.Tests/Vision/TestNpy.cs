using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace MedVL.Tests.Vision;

/// <summary>Test-only reader for the (optionally gzipped) .npy fixtures written by tools/vision/make_image_fixtures.py.</summary>
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

    public static (int[] Shape, double[] Data) Parse(byte[] b)
    {
        if (b.Length < 10 || b[0] != 0x93 || Encoding.ASCII.GetString(b, 1, 5) != "NUMPY") throw new InvalidDataException("not an npy file");
        int major = b[6];
        int hlen = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(8)) : (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(8));
        int start = major == 1 ? 10 : 12;
        string header = Encoding.ASCII.GetString(b, start, hlen);
        string descr = Regex.Match(header, "'descr':\\s*'([^']+)'").Groups[1].Value;
        if (header.Contains("'fortran_order': True")) throw new NotSupportedException("fortran order");
        var shapeText = Regex.Match(header, "'shape':\\s*\\(([^)]*)\\)").Groups[1].Value;
        int[] shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        long n = shape.Aggregate(1L, (a, x) => a * x);
        var data = new double[n];
        var p = b.AsSpan(start + hlen);
        bool be = descr[0] == '>';
        string t = descr[1..];
        for (long i = 0; i < n; i++)
        {
            data[i] = t switch
            {
                "u1" => p[(int)i],
                "i1" => (sbyte)p[(int)i],
                "u2" => be ? BinaryPrimitives.ReadUInt16BigEndian(p[(int)(2 * i)..]) : BinaryPrimitives.ReadUInt16LittleEndian(p[(int)(2 * i)..]),
                "i2" => be ? BinaryPrimitives.ReadInt16BigEndian(p[(int)(2 * i)..]) : BinaryPrimitives.ReadInt16LittleEndian(p[(int)(2 * i)..]),
                "i4" => be ? BinaryPrimitives.ReadInt32BigEndian(p[(int)(4 * i)..]) : BinaryPrimitives.ReadInt32LittleEndian(p[(int)(4 * i)..]),
                "u4" => BinaryPrimitives.ReadUInt32LittleEndian(p[(int)(4 * i)..]),
                "i8" => BinaryPrimitives.ReadInt64LittleEndian(p[(int)(8 * i)..]),
                "f4" => BinaryPrimitives.ReadSingleLittleEndian(p[(int)(4 * i)..]),
                "f8" => BinaryPrimitives.ReadDoubleLittleEndian(p[(int)(8 * i)..]),
                _ => throw new NotSupportedException(descr),
            };
        }
        return (shape, data);
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
