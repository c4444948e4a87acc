using MedVL.Optim;

namespace MedVL.Tests.Optim;

/// <summary>clip_grad_norm_ against torch (L1, L2, L3, inf; clipping and not) and its non-finite behaviour.</summary>
public class GradClipTests
{
    public static TheoryData<string> Cases => new() { "l2_clip", "l2_noclip", "inf_clip", "l1_clip", "l3_clip" };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTorch(string name)
    {
        string c = Path.Combine("clip", name);
        var hyper = OptimFixtures.Load(c, "hyper").Data;
        double totalTorch = OptimFixtures.Load(c, "total").Data[0];
        var ps = new List<Tensor>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var g = OptimFixtures.Load(c, $"grad{i}");
                var p = Tensor.Zeros(g.Shape);
                p.RequiresGrad = true;
                p.Grad = Tensor.FromArray(g.F32, g.Shape);
                ps.Add(p);
            }
            using var unused = Tensor.Zeros(4); // no gradient: ignored
            float total = GradClip.ClipGradNorm(ps.Append(unused), hyper[0], hyper[1]);
            Assert.True(Math.Abs(total - totalTorch) <= 1e-6 * totalTorch, $"{name}: total {total} vs torch {totalTorch}");
            for (int i = 0; i < 3; i++)
            {
                var want = OptimFixtures.Load(c, $"clipped{i}").Data;
                double err = OptimFixtures.MaxRelError(ps[i].Grad!.ToFloatArray(), want, 1e-6);
                Assert.True(err <= 1e-5, $"{name} grad {i}: relative error {err:E3}");
            }
        }
        finally
        {
            foreach (var p in ps) { p.Grad?.Dispose(); p.Dispose(); }
        }
    }

    [Fact]
    public void NonFiniteNormIsReportedOrThrown()
    {
        using var p = Tensor.Zeros(3);
        p.Grad = Tensor.FromArray(new[] { 1f, float.PositiveInfinity, 2f }, 3);
        var ex = Assert.Throws<NonFiniteGradientNormException>(() => GradClip.ClipGradNorm([p], 1.0, errorIfNonfinite: true));
        Assert.Contains("non-finite", ex.Message);
        Assert.Equal(new[] { 1f, float.PositiveInfinity, 2f }, p.Grad.ToFloatArray()); // untouched when throwing
        float total = GradClip.ClipGradNorm([p], 1.0);
        Assert.True(float.IsPositiveInfinity(total));
        // As torch: coefficient 1/(inf) * max_norm = 0, so finite entries become 0 and inf*0 = NaN.
        var g = p.Grad.ToFloatArray();
        Assert.Equal(0f, g[0]);
        Assert.True(float.IsNaN(g[1]));
        p.Grad.Dispose();

        p.Grad = Tensor.FromArray(new[] { 1f, float.NaN, 2f }, 3);
        Assert.True(float.IsNaN(GradClip.ClipGradNorm([p], 1.0)));
        Assert.All(p.Grad.ToFloatArray(), v => Assert.True(float.IsNaN(v)));
        Assert.Throws<NonFiniteGradientNormException>(() => GradClip.ClipGradNorm([p], 1.0, errorIfNonfinite: true));
        p.Grad.Dispose();
        p.Grad = null;
    }

    [Fact]
    public void NoGradientsGivesZeroAndBadNormTypeThrows()
    {
        using var p = Tensor.Zeros(3);
        Assert.Equal(0f, GradClip.ClipGradNorm([p], 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradClip.ClipGradNorm([p], 1.0, normType: 0));
    }
}
