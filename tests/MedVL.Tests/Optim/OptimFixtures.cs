using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;

namespace MedVL.Tests.Optim;

/// <summary>
/// Loads the .npy fixtures written by tools/reference/optim.py. A minimal reader (little-endian f4/f8/i8, C order)
/// kept local to these tests until MedVL.Formats.Npy is merged; then this can call Npy.Read instead.
/// </summary>
internal static class OptimFixtures
{
    public static string Dir(params string[] parts) => TestPaths.Fixture(["optim", .. parts]);

    public sealed record Array(int[] Shape, double[] Data)
    {
        public float[] F32 => Data.Select(d => (float)d).ToArray();
        /// <summary>Row <paramref name="i"/> of the leading dimension.</summary>
        public double[] Row(int i)
        {
            int n = Data.Length / Shape[0];
            return Data.AsSpan(i * n, n).ToArray();
        }
        public int[] RowShape => Shape[1..];
    }

    public static Array Load(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw new InvalidDataException($"{path}: not an .npy file");
        int major = bytes[6];
        int headerLen = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)) : (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        int dataStart = (major == 1 ? 10 : 12) + headerLen;
        string header = Encoding.ASCII.GetString(bytes, major == 1 ? 10 : 12, headerLen);
        string descr = Regex.Match(header, @"'descr':\s*'([^']+)'").Groups[1].Value;
        if (Regex.IsMatch(header, @"'fortran_order':\s*True")) throw new InvalidDataException($"{path}: Fortran order");
        var shapeText = Regex.Match(header, @"'shape':\s*\(([^)]*)\)").Groups[1].Value;
        int[] shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var data = new double[n];
        var span = bytes.AsSpan(dataStart);
        for (int i = 0; i < n; i++)
        {
            data[i] = descr switch
            {
                "<f4" => BinaryPrimitives.ReadSingleLittleEndian(span[(4 * i)..]),
                "<f8" => BinaryPrimitives.ReadDoubleLittleEndian(span[(8 * i)..]),
                "<i8" => BinaryPrimitives.ReadInt64LittleEndian(span[(8 * i)..]),
                _ => throw new InvalidDataException($"{path}: unsupported dtype {descr}"),
            };
        }
        return new Array(shape, data);
    }

    public static Array Load(string caseName, string name) => Load(Path.Combine(Dir(caseName), name + ".npy"));

    public static bool Exists(string caseName, string name) => File.Exists(Path.Combine(Dir(caseName), name + ".npy"));

    /// <summary>Max over elements of |a-b| / max(|b|, floor); the assertion is that it is at most tol.</summary>
    public static double MaxRelError(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double floor)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double e = Math.Abs(actual[i] - expected[i]) / Math.Max(Math.Abs(expected[i]), floor);
            if (double.IsNaN(e)) return double.NaN;
            worst = Math.Max(worst, e);
        }
        return worst;
    }
}
