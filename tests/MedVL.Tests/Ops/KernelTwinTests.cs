using MedVL.Kernels;
using MedVL.Kernels.Scalar;

namespace MedVL.Tests.Ops;

/// <summary>
/// Each vectorised kernel against its plain-loop twin (float) on odd sizes that exercise Vector512/256 bodies and
/// scalar tails. Pass: NMSE ≤ 1e-7 (elementwise kernels with identical formulas must agree to a few ulps).
/// </summary>
public class KernelTwinTests
{
    public static IEnumerable<object[]> Sizes => new[] { 1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129 }.Select(n => new object[] { n });

    private static float[] Rand(int n, int seed, float lo = -3f, float hi = 3f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (float)r.NextDouble() * (hi - lo);
        return a;
    }

    internal static void AssertNmse(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double maxNmse = 1e-7, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.False(float.IsNaN(actual[i]) != float.IsNaN(expected[i]), $"{what}[{i}]: NaN mismatch");
            double d = (double)actual[i] - expected[i];
            num += d * d;
            den += (double)expected[i] * expected[i];
        }
        double nmse = num / Math.Max(den, 1e-30);
        Assert.True(nmse <= maxNmse || num <= 1e-24, $"{what}: NMSE {nmse:E3} > {maxNmse:E1}");
    }

    private static double[] D(float[] a) => a.Select(v => (double)v).ToArray();

    /// <summary>
    /// Backward passes whose exact value is near zero (saturated softmax, RMSNorm with d = 1) are dominated by float
    /// rounding in any formula, so they are compared with the twin evaluated in float64: |ours − ref| ≤ tol·max(1, |ref|).
    /// </summary>
    private static void AssertVsDouble(double[] expected, float[] actual, double tol, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= tol * Math.Max(1, Math.Abs(expected[i])),
                $"{what}[{i}]: {actual[i]} vs float64 twin {expected[i]}");
    }

    [Theory, MemberData(nameof(Sizes))]
    public void BinaryBroadcastMatchesTwin(int n)
    {
        // [3, n] op [n], [3, n] op [3, 1], [1, n] op [3, 1]
        int[] shape = { 3, n };
        var a = Rand(3 * n, n);
        var row = Rand(n, n + 1, 0.5f, 2f);
        var col = Rand(3, n + 2, 0.5f, 2f);
        long[] full = { n, 1 }, rowS = { 0, 1 }, colS = { 1, 0 };
        foreach (BinaryOp op in Enum.GetValues<BinaryOp>())
        {
            foreach (var (b, bs) in new[] { (row, rowS), (col, colS) })
            {
                var y = new float[3 * n];
                var yr = new float[3 * n];
                Elementwise.Binary(op, a, full, b, bs, y, shape);
                ElementwiseScalar.Binary<float>(op, a, full, b, bs, yr, shape);
                AssertNmse(yr, y, 1e-12, $"{op}");
                // scalar-first rows (a broadcast along the row)
                Elementwise.Binary(op, row, rowS, a, full, y, shape);
                ElementwiseScalar.Binary<float>(op, row, rowS, a, full, yr, shape);
                AssertNmse(yr, y, 1e-12, $"{op} swapped");
            }
        }
        var y2 = new float[3 * n];
        var y2r = new float[3 * n];
        Elementwise.Binary(BinaryOp.Mul, row, rowS, col, colS, y2, shape);
        ElementwiseScalar.Binary<float>(BinaryOp.Mul, row, rowS, col, colS, y2r, shape);
        AssertNmse(y2r, y2, 1e-12, "outer");
    }

    [Theory, MemberData(nameof(Sizes))]
    public void WhereAndMaskedFillMatchTwin(int n)
    {
        int[] shape = { 3, n };
        var a = Rand(3 * n, 200 + n);
        var b = Rand(n, 201 + n);
        var cond = new byte[3];
        cond[0] = 1; cond[2] = 1;
        long[] cs = { 1, 0 }, full = { n, 1 }, bs = { 0, 1 };
        var y = new float[3 * n]; var yr = new float[3 * n];
        Elementwise.Where(cond, cs, a, full, b, bs, y, shape);
        ElementwiseScalar.Where<float>(cond, cs, a, full, b, bs, yr, shape);
        Assert.Equal(yr, y);
        var mask = Enumerable.Range(0, n).Select(i => (byte)(i % 3 == 0 ? 1 : 0)).ToArray();
        Elementwise.MaskedFill(a, mask, bs, -7f, y, shape);
        ElementwiseScalar.MaskedFill<float>(a, mask, bs, -7f, yr, shape);
        Assert.Equal(yr, y);
    }

    [Theory, MemberData(nameof(Sizes))]
    public void UnaryForwardBackwardMatchTwin(int n)
    {
        var x = Rand(n, 10 + n);
        var pos = Rand(n, 20 + n, 0.1f, 4f);
        var gy = Rand(n, 30 + n);
        var y = new float[n];
        var yr = new float[n];
        var gx = new float[n];
        var gxr = new float[n];
        void Check(ElementwiseScalar.Unary kind, float[] input, Action<float[], float[]> fwd, Action<float[], float[], float[]> bwd)
        {
            fwd(input, y);
            ElementwiseScalar.UnaryForward<float>(kind, input, yr);
            AssertNmse(yr, y, 1e-7, kind + " forward");
            bwd(input, y, gx);
            ElementwiseScalar.UnaryBackward<float>(kind, input, gy, gxr);
            AssertNmse(gxr, gx, 1e-7, kind + " backward");
        }
        Check(ElementwiseScalar.Unary.Neg, x, (i, o) => Elementwise.NegForward(i, o), (i, o, g) => Elementwise.NegBackward(gy, g));
        Check(ElementwiseScalar.Unary.Exp, x, (i, o) => Elementwise.ExpForward(i, o), (i, o, g) => Elementwise.ExpBackward(o, gy, g));
        Check(ElementwiseScalar.Unary.Log, pos, (i, o) => Elementwise.LogForward(i, o), (i, o, g) => Elementwise.LogBackward(i, gy, g));
        Check(ElementwiseScalar.Unary.Sqrt, pos, (i, o) => Elementwise.SqrtForward(i, o), (i, o, g) => Elementwise.SqrtBackward(o, gy, g));
        Check(ElementwiseScalar.Unary.Square, x, (i, o) => Elementwise.SquareForward(i, o), (i, o, g) => Elementwise.SquareBackward(i, gy, g));
        Check(ElementwiseScalar.Unary.Tanh, x, (i, o) => Elementwise.TanhForward(i, o), (i, o, g) => Elementwise.TanhBackward(o, gy, g));
        Check(ElementwiseScalar.Unary.Sigmoid, x, (i, o) => Elementwise.SigmoidForward(i, o), (i, o, g) => Elementwise.SigmoidBackward(o, gy, g));

        Elementwise.PowForward(pos, 2.5f, y);
        ElementwiseScalar.PowForward<float>(pos, 2.5f, yr);
        AssertNmse(yr, y, 1e-7, "pow forward");
        Elementwise.PowBackward(pos, 2.5f, gy, gx);
        ElementwiseScalar.PowBackward<float>(pos, 2.5f, gy, gxr);
        AssertNmse(gxr, gx, 1e-7, "pow backward");
    }

    [Theory, MemberData(nameof(Sizes))]
    public void SumIntoMatchesTwin(int n)
    {
        int[] shape = { 4, 3, n };
        var src = Rand(12 * n, 40 + n);
        foreach (var kept in new[] { new[] { 1, 3, n }, new[] { 4, 1, 1 }, new[] { 1, 1, n }, new[] { 4, 3, 1 } })
        {
            var strides = MedVL.Autograd.Ops.BroadcastStrides(kept, shape);
            int len = kept.Aggregate(1, (a, b) => a * b);
            var d = new float[len];
            var dr = new float[len];
            Reduce.SumInto(src, shape, d, strides);
            ReduceScalar.SumInto<float>(src, shape, dr, strides);
            AssertNmse(dr, d, 1e-10, $"keep [{string.Join(",", kept)}]");
        }
        Assert.Equal(ReduceScalar.SumOfSquares<float>(src), Reduce.SumOfSquares(src), 1e-6f * ReduceScalar.SumOfSquares<float>(src));
        var v = new float[4 * n];
        var vr = new float[4 * n];
        var ix = new long[4 * n];
        var ixr = new long[4 * n];
        Reduce.MaxForward(src, 4, 3, n, v, ix);
        ReduceScalar.MaxForward<float>(src, 4, 3, n, vr, ixr);
        Assert.Equal(vr, v);
        Assert.Equal(ixr, ix);
    }

    [Theory, MemberData(nameof(Sizes))]
    public void SoftmaxMatchesTwin(int n)
    {
        int rows = 3;
        var x = Rand(rows * n, 50 + n, -20f, 20f);
        var gy = Rand(rows * n, 60 + n);
        var y = new float[rows * n]; var yr = new float[rows * n];
        var gx = new float[rows * n];
        Softmax.SoftmaxForward(x, y, rows, n);
        SoftmaxScalar.SoftmaxForward<float>(x, yr, rows, n);
        AssertNmse(yr, y, 1e-10, "softmax");
        Softmax.SoftmaxBackward(y, gy, gx, rows, n);
        var yd = new double[rows * n];
        var gxd = new double[rows * n];
        SoftmaxScalar.SoftmaxForward<double>(D(x), yd, rows, n);
        SoftmaxScalar.SoftmaxBackward<double>(yd, D(gy), gxd, rows, n);
        AssertVsDouble(gxd, gx, 1e-6, "softmax backward");
        Softmax.LogSoftmaxForward(x, y, rows, n);
        SoftmaxScalar.LogSoftmaxForward<float>(x, yr, rows, n);
        AssertNmse(yr, y, 1e-10, "log_softmax");
        Softmax.LogSoftmaxBackward(y, gy, gx, rows, n);
        SoftmaxScalar.LogSoftmaxForward<double>(D(x), yd, rows, n);
        SoftmaxScalar.LogSoftmaxBackward<double>(yd, D(gy), gxd, rows, n);
        AssertVsDouble(gxd, gx, 1e-5, "log_softmax backward");
    }

    [Theory, MemberData(nameof(Sizes))]
    public void NormsMatchTwin(int d)
    {
        int rows = 3;
        var x = Rand(rows * d, 70 + d);
        var w = Rand(d, 71 + d, 0.5f, 1.5f);
        var b = Rand(d, 72 + d);
        var gy = Rand(rows * d, 73 + d);
        var y = new float[rows * d]; var yr = new float[rows * d];
        var gx = new float[rows * d];
        var gw = new float[d];
        var gb = new float[d];
        var s1 = new float[rows]; var s2 = new float[rows];

        Norms.RmsNormForward(x, w, y, s1, rows, d, 1e-6f);
        NormsScalar.RmsNormForward<float>(x, w, yr, rows, d, 1e-6f);
        AssertNmse(yr, y, 1e-10, "rms");
        Norms.RmsNormBackward(x, w, s1, gy, gx, gw, rows, d);
        var gxd = new double[rows * d];
        var gwd = new double[d];
        NormsScalar.RmsNormBackward<double>(D(x), D(w), D(gy), gxd, gwd, rows, d, 1e-6);
        AssertVsDouble(gxd, gx, 1e-4, "rms gx");
        AssertVsDouble(gwd, gw, 1e-5, "rms gw");

        Norms.LayerNormForward(x, w, b, y, s1, s2, rows, d, 1e-5f);
        NormsScalar.BlockNormForward<float>(x, w, b, yr, rows, 1, d, 1, 1e-5f);
        AssertNmse(yr, y, 1e-9, "layernorm");
        Array.Clear(gw);
        Norms.LayerNormBackward(x, w, s1, s2, gy, gx, gw, gb, rows, d);
        var lgx = new double[rows * d];
        var lgw = new double[d];
        var lgb = new double[d];
        NormsScalar.BlockNormBackward<double>(D(x), D(w), D(gy), lgx, lgw, lgb, rows, 1, d, 1, 1e-5);
        AssertVsDouble(lgx, gx, 1e-4, "layernorm gx");
        AssertVsDouble(lgw, gw, 1e-5, "layernorm gw");
        AssertVsDouble(lgb, gb, 1e-5, "layernorm gb");

        // GroupNorm: n=2, c=4, groups=2, spatial=d
        int n = 2, c = 4, groups = 2;
        var gxIn = Rand(n * c * d, 80 + d);
        var gwc = Rand(c, 81 + d);
        var gbc = Rand(c, 82 + d);
        var gg = Rand(n * c * d, 83 + d);
        var gyv = new float[n * c * d]; var gyvr = new float[n * c * d];
        var m = new float[n * groups]; var r = new float[n * groups];
        Norms.GroupNormForward(gxIn, gwc, gbc, gyv, m, r, n, c, d, groups, 1e-6f);
        NormsScalar.BlockNormForward<float>(gxIn, gwc, gbc, gyvr, n * groups, groups, c / groups, d, 1e-6f);
        AssertNmse(gyvr, gyv, 1e-9, "groupnorm");
        var ggx = new float[n * c * d];
        var ggw = new float[c]; var ggb = new float[c];
        Norms.GroupNormBackward(gxIn, gwc, m, r, gg, ggx, ggw, ggb, n, c, d, groups);
        var ggxd = new double[n * c * d];
        var ggwd = new double[c];
        var ggbd = new double[c];
        NormsScalar.BlockNormBackward<double>(D(gxIn), D(gwc), D(gg), ggxd, ggwd, ggbd, n * groups, groups, c / groups, d, 1e-6);
        AssertVsDouble(ggxd, ggx, 1e-4, "groupnorm gx");
        AssertVsDouble(ggwd, ggw, 1e-5, "groupnorm gw");
        AssertVsDouble(ggbd, ggb, 1e-5, "groupnorm gb");
    }

    [Theory, MemberData(nameof(Sizes))]
    public void ActivationsMatchTwin(int n)
    {
        var x = Rand(n, 90 + n, -6f, 6f);
        var up = Rand(n, 91 + n);
        var gy = Rand(n, 92 + n);
        var y = new float[n]; var yr = new float[n];
        var gx = new float[n]; var gxr = new float[n];
        var kinds = new (ActivationsScalar.Kind K, Action<float[], float[]> F, Action<float[], float[], float[]> B)[]
        {
            (ActivationsScalar.Kind.Gelu, (a, o) => Activations.GeluForward(a, o), (a, g, o) => Activations.GeluBackward(a, g, o)),
            (ActivationsScalar.Kind.GeluTanh, (a, o) => Activations.GeluTanhForward(a, o), (a, g, o) => Activations.GeluTanhBackward(a, g, o)),
            (ActivationsScalar.Kind.QuickGelu, (a, o) => Activations.QuickGeluForward(a, o), (a, g, o) => Activations.QuickGeluBackward(a, g, o)),
            (ActivationsScalar.Kind.Silu, (a, o) => Activations.SiluForward(a, o), (a, g, o) => Activations.SiluBackward(a, g, o)),
        };
        foreach (var (k, f, b) in kinds)
        {
            f(x, y);
            ActivationsScalar.Forward<float>(k, x, yr);
            AssertNmse(yr, y, 1e-7, k + " forward");
            b(x, gy, gx);
            ActivationsScalar.Backward<float>(k, x, gy, gxr);
            AssertNmse(gxr, gx, 1e-7, k + " backward");
        }
        Activations.SwiGluForward(x, up, n, y, 1, n);
        ActivationsScalar.SwiGluForward<float>(x, up, yr);
        AssertNmse(yr, y, 1e-7, "swiglu");
        var gu = new float[n]; var gur = new float[n];
        Activations.SwiGluBackward(x, up, n, gy, gx, gu, 1, n);
        ActivationsScalar.SwiGluBackward<float>(x, up, gy, gxr, gur);
        AssertNmse(gxr, gx, 1e-7, "swiglu ggate");
        AssertNmse(gur, gu, 1e-7, "swiglu gup");
    }

    [Theory, MemberData(nameof(Sizes))]
    public void EmbeddingLossSelectMatchTwin(int n)
    {
        int vocab = 11, d = n;
        var w = Rand(vocab * d, 100 + n);
        var ids = Enumerable.Range(0, 9).Select(i => (long)((i * 7 + n) % vocab)).ToArray();
        var y = new float[ids.Length * d]; var yr = new float[ids.Length * d];
        Embedding.GatherForward(ids, w, d, y);
        EmbeddingScalar.GatherForward<float>(ids, w, d, yr);
        Assert.Equal(yr, y);
        var gy = Rand(ids.Length * d, 101 + n);
        var gw = new float[vocab * d]; var gwr = new float[vocab * d];
        Embedding.GatherBackward(ids, gy, d, gw, paddingIdx: ids[0]);
        EmbeddingScalar.GatherBackward<float>(ids, gy, d, gwr, paddingIdx: ids[0]);
        AssertNmse(gwr, gw, 1e-12, "embedding backward");

        int rows = 5, classes = n;
        var logits = Rand(rows * classes, 102 + n, -8f, 8f);
        var targets = Enumerable.Range(0, rows).Select(i => i == 2 ? -100L : (i * 3 + 1) % classes).ToArray();
        var lse = new float[rows];
        var (sum, count) = Loss.CrossEntropyForward(logits, targets, lse, rows, classes);
        float reference = LossScalar.CrossEntropy<float>(logits, targets, rows, classes);
        Assert.Equal(reference, (float)(sum / count), 1e-5f * Math.Max(1f, Math.Abs(reference)));
        var g = new float[rows * classes]; var gr = new float[rows * classes];
        Loss.CrossEntropyBackward(logits, targets, lse, 0.7f / count, g, rows, classes);
        LossScalar.CrossEntropyBackward<float>(logits, targets, 0.7f, gr, rows, classes);
        AssertNmse(gr, g, 1e-9, "cross-entropy backward");

        int k = Math.Min(3, n);
        var sx = Rand(rows * n, 103 + n);
        for (int i = 0; i < sx.Length; i += 3) sx[i] = MathF.Round(sx[i]); // some ties
        var tv = new float[rows * k]; var tvr = new float[rows * k];
        var ti = new long[rows * k]; var tir = new long[rows * k];
        Select.TopK(sx, rows, n, k, tv, ti);
        SelectScalar.TopK<float>(sx, rows, n, k, tvr, tir);
        Assert.Equal(tvr, tv);
        Assert.Equal(tir, ti);
        var am = new long[rows]; var amr = new long[rows];
        Select.Argmax(sx, am, rows, n);
        SelectScalar.Argmax<float>(sx, amr, rows, n);
        Assert.Equal(amr, am);
    }
}
