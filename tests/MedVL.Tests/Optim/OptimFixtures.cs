using MedVL.Formats;

namespace MedVL.Tests.Optim;

/// <summary>
/// Loads the .npy fixtures written by tools/reference/optim.py (through MedVL.Formats.Npy) as float64.
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
        var npy = Npy.Read(path);
        return new Array(npy.Shape, npy.ToFloat64());
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
