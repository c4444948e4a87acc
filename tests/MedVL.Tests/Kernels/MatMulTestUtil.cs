namespace MedVL.Tests.Kernels;

internal static class MatMulTestUtil
{
    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return a;
    }

    /// <summary>Max |x - ref| relative to max |ref| over the compared elements, and the NMSE.</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double relTol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxRef = 0, maxErr = 0, se = 0, sr = 0;
        int worst = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (double.IsNaN(a) != double.IsNaN(e)) Assert.Fail($"{what}: NaN mismatch at {i}: expected {e}, got {a}");
            if (double.IsNaN(e)) continue;
            maxRef = Math.Max(maxRef, Math.Abs(e));
            double d = Math.Abs(a - e);
            if (d > maxErr) { maxErr = d; worst = i; }
            se += d * d; sr += e * e;
        }
        double rel = maxErr / Math.Max(maxRef, 1e-30);
        double nmse = se / Math.Max(sr, 1e-30);
        Assert.True(rel <= relTol && nmse <= 1e-9,
            $"{what}: max rel err {rel:E3} (tol {relTol:E1}), NMSE {nmse:E3}, worst at {worst}: expected {(worst >= 0 ? expected[worst] : 0)}, got {(worst >= 0 ? actual[worst] : 0)}");
    }
}
