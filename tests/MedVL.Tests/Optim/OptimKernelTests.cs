using MedVL.Kernels;
using MedVL.Kernels.Scalar;

namespace MedVL.Tests.Optim;

/// <summary>SIMD optimizer kernels against their scalar twins (odd sizes and SIMD tails), and float32 against float64.</summary>
public class OptimKernelTests
{
    public static TheoryData<int> Sizes => new() { 1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 65, 127, 129, 1000 };

    private static float[] Random(Random rng, int n, double scale, bool positive = false) =>
        Enumerable.Range(0, n).Select(_ => (float)((positive ? rng.NextDouble() : rng.NextDouble() * 2 - 1) * scale)).ToArray();

    [Theory]
    [MemberData(nameof(Sizes))]
    public void AdamStepMatchesScalarTwinBitForBit(int n)
    {
        foreach (var (decoupled, ams, wd) in new[] { (true, false, 0.1), (true, true, 0.0), (false, false, 0.05), (false, true, 0.05) })
        {
            var rng = new Random(n * 31 + (ams ? 1 : 0) + (decoupled ? 2 : 0));
            var p = Random(rng, n, 1); var m = Random(rng, n, 0.1); var v = Random(rng, n, 0.01, positive: true);
            var vmax = v.Select(x => x * 1.5f).ToArray();
            var (p2, m2, v2, vmax2) = ((float[])p.Clone(), (float[])m.Clone(), (float[])v.Clone(), (float[])vmax.Clone());
            for (int step = 1; step <= 3; step++)
            {
                var g = Random(rng, n, 0.5);
                var c = AdamCoefficients.For(2e-3, 0.9, 0.999, 1e-8, wd, decoupled, step);
                OptimKernels.AdamStep(p, g, m, v, ams ? vmax : Span<float>.Empty, c);
                OptimKernelsScalar.AdamStep<float>(p2, g, m2, v2, ams ? vmax2 : Span<float>.Empty, 2e-3, 0.9, 0.999, 1e-8, wd, decoupled, step);
            }
            Assert.Equal(p2, p);
            Assert.Equal(m2, m);
            Assert.Equal(v2, v);
            Assert.Equal(vmax2, vmax);
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void SgdStepMatchesScalarTwinBitForBit(int n)
    {
        foreach (var (momentum, dampening, wd, nesterov) in new[] { (0.0, 0.0, 0.0, false), (0.9, 0.0, 1e-2, true), (0.9, 0.3, 1e-3, false) })
        {
            var rng = new Random(n * 17 + (nesterov ? 1 : 0));
            var p = Random(rng, n, 1);
            var p2 = (float[])p.Clone();
            var buf = new float[momentum != 0 ? n : 0];
            var buf2 = new float[buf.Length];
            for (int step = 0; step < 3; step++)
            {
                var g = Random(rng, n, 0.5);
                OptimKernels.SgdStep(p, g, buf, step == 0, (float)wd, (float)momentum, (float)(1 - dampening), nesterov, -0.05f);
                OptimKernelsScalar.SgdStep<float>(p2, g, buf2, step == 0, 0.05, momentum, dampening, wd, nesterov);
            }
            Assert.Equal(p2, p);
            Assert.Equal(buf2, buf);
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void SumOfSquaresMatchesScalarTwin(int n)
    {
        var x = Random(new Random(n), n, 3);
        double simd = OptimKernels.SumOfSquares(x), scalar = OptimKernelsScalar.SumOfSquares<float>(x);
        Assert.True(Math.Abs(simd - scalar) <= 1e-12 * scalar, $"{simd} vs {scalar}");
    }

    /// <summary>Ten float32 AdamW steps stay within float32 rounding of the same steps in float64.</summary>
    [Fact]
    public void AdamFloat32TracksFloat64()
    {
        const int n = 257;
        var rng = new Random(5);
        var p = Random(rng, n, 1); var m = new float[n]; var v = new float[n]; var vmax = new float[n];
        var pd = p.Select(x => (double)x).ToArray(); var md = new double[n]; var vd = new double[n]; var vmaxd = new double[n];
        for (int step = 1; step <= 10; step++)
        {
            var g = Random(rng, n, 0.3);
            var gd = g.Select(x => (double)x).ToArray();
            OptimKernels.AdamStep(p, g, m, v, vmax, AdamCoefficients.For(1e-2, 0.9, 0.999, 1e-8, 0.1, true, step));
            OptimKernelsScalar.AdamStep<double>(pd, gd, md, vd, vmaxd, 1e-2, 0.9, 0.999, 1e-8, 0.1, true, step);
        }
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(p[i] - pd[i]) <= 1e-5 * Math.Max(1, Math.Abs(pd[i])), $"[{i}] {p[i]} vs {pd[i]}");
    }

    [Fact]
    public void MismatchedLengthsAreRejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => OptimKernels.AdamStep(new float[3], new float[2], new float[3], new float[3], default, AdamCoefficients.For(1e-3, 0.9, 0.999, 1e-8, 0, true, 1)));
        Assert.Contains("AdamStep", ex.Message);
        Assert.Throws<ArgumentException>(() => OptimKernels.SgdStep(new float[3], new float[3], new float[2], true, 0, 0.9f, 1, false, -0.1f));
    }
}
