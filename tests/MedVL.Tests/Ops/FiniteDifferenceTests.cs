using MedVL.Kernels;
using MedVL.Kernels.Scalar;

namespace MedVL.Tests.Ops;

/// <summary>
/// Every backward formula checked against central differences of the forward, both in float64 on the generic
/// scalar twins (h = 1e-6; pass: |analytic − numeric| ≤ 1e-6·max(1, |numeric|)).
/// </summary>
public class FiniteDifferenceTests
{
    private const double H = 1e-6, Tol = 1e-6;

    private static double[] Rand(int n, int seed, double lo = -2, double hi = 2)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => lo + r.NextDouble() * (hi - lo)).ToArray();
    }

    /// <summary>Checks analytic = ∂⟨gy, f(x)⟩/∂x by central differences, perturbing x in place.</summary>
    private static void Check(string what, double[] x, Func<double[]> f, double[] gy, double[] analytic)
    {
        Assert.Equal(x.Length, analytic.Length);
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + H;
            double up = Dot(gy, f());
            x[i] = keep - H;
            double down = Dot(gy, f());
            x[i] = keep;
            double num = (up - down) / (2 * H);
            Assert.True(Math.Abs(num - analytic[i]) <= Tol * Math.Max(1, Math.Abs(num)),
                $"{what}[{i}]: analytic {analytic[i]:R}, finite difference {num:R}");
        }
    }

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    [Theory]
    [InlineData(ElementwiseScalar.Unary.Neg)]
    [InlineData(ElementwiseScalar.Unary.Exp)]
    [InlineData(ElementwiseScalar.Unary.Log)]
    [InlineData(ElementwiseScalar.Unary.Sqrt)]
    [InlineData(ElementwiseScalar.Unary.Square)]
    [InlineData(ElementwiseScalar.Unary.Tanh)]
    [InlineData(ElementwiseScalar.Unary.Sigmoid)]
    public void Unary(ElementwiseScalar.Unary kind)
    {
        var x = Rand(7, 1, 0.2, 3);
        var gy = Rand(7, 2);
        var g = new double[7];
        ElementwiseScalar.UnaryBackward<double>(kind, x, gy, g);
        Check(kind.ToString(), x, () => { var y = new double[7]; ElementwiseScalar.UnaryForward<double>(kind, x, y); return y; }, gy, g);
    }

    [Fact]
    public void Pow()
    {
        var x = Rand(6, 3, 0.2, 3);
        var gy = Rand(6, 4);
        var g = new double[6];
        ElementwiseScalar.PowBackward<double>(x, 2.5, gy, g);
        Check("pow", x, () => { var y = new double[6]; ElementwiseScalar.PowForward<double>(x, 2.5, y); return y; }, gy, g);
    }

    /// <summary>The broadcasting backward used by Ops: per-op elementwise partials, then SumInto (reduce to the operand's shape).</summary>
    [Theory]
    [InlineData(BinaryOp.Add)]
    [InlineData(BinaryOp.Sub)]
    [InlineData(BinaryOp.Mul)]
    [InlineData(BinaryOp.Div)]
    public void BinaryBroadcast(BinaryOp op)
    {
        int[] shape = { 3, 4 };
        long[] full = { 4, 1 }, bs = { 1, 0 }; // b is [3, 1]
        var a = Rand(12, 5);
        var b = Rand(3, 6, 0.5, 2);
        var gy = Rand(12, 7);
        double[] F() { var y = new double[12]; ElementwiseScalar.Binary<double>(op, a, full, b, bs, y, shape); return y; }
        // partials: ∂/∂a = 1, 1, b, 1/b; ∂/∂b = 1, −1, a, −a/b²
        var da = new double[12];
        var db = new double[12];
        for (int i = 0; i < 12; i++)
        {
            double av = a[i], bv = b[i / 4];
            (da[i], db[i]) = op switch
            {
                BinaryOp.Add => (1.0, 1.0),
                BinaryOp.Sub => (1.0, -1.0),
                BinaryOp.Mul => (bv, av),
                _ => (1 / bv, -av / (bv * bv)),
            };
            da[i] *= gy[i];
            db[i] *= gy[i];
        }
        var gb = new double[3];
        ReduceScalar.SumInto<double>(db, shape, gb, bs);
        Check(op + " a", a, F, gy, da);
        Check(op + " b", b, F, gy, gb);
    }

    /// <summary>Where/MaskedFill: the gradient is g routed by the condition, then reduced to each operand's shape.</summary>
    [Fact]
    public void WhereRoutesGradient()
    {
        int[] shape = { 3, 4 };
        var cond = new byte[] { 1, 0, 1 };
        long[] cs = { 1, 0 }, full = { 4, 1 }, bs = { 0, 1 };
        var a = Rand(12, 30);
        var b = Rand(4, 31);
        var gy = Rand(12, 32);
        double[] F() { var y = new double[12]; ElementwiseScalar.Where<double>(cond, cs, a, full, b, bs, y, shape); return y; }
        var ga = new double[12];
        var gbFull = new double[12];
        for (int i = 0; i < 12; i++)
            if (cond[i / 4] != 0) ga[i] = gy[i]; else gbFull[i] = gy[i];
        var gb = new double[4];
        ReduceScalar.SumInto<double>(gbFull, shape, gb, bs);
        Check("where a", a, F, gy, ga);
        Check("where b", b, F, gy, gb);
    }

    [Fact]
    public void SoftmaxAndLogSoftmax()
    {
        int rows = 2, n = 5;
        var x = Rand(rows * n, 8, -3, 3);
        var gy = Rand(rows * n, 9);
        var y = new double[rows * n];
        var g = new double[rows * n];
        SoftmaxScalar.SoftmaxForward<double>(x, y, rows, n);
        SoftmaxScalar.SoftmaxBackward<double>(y, gy, g, rows, n);
        Check("softmax", x, () => { var o = new double[rows * n]; SoftmaxScalar.SoftmaxForward<double>(x, o, rows, n); return o; }, gy, g);
        SoftmaxScalar.LogSoftmaxForward<double>(x, y, rows, n);
        SoftmaxScalar.LogSoftmaxBackward<double>(y, gy, g, rows, n);
        Check("log_softmax", x, () => { var o = new double[rows * n]; SoftmaxScalar.LogSoftmaxForward<double>(x, o, rows, n); return o; }, gy, g);
    }

    [Fact]
    public void RmsNorm()
    {
        int rows = 3, d = 5;
        var x = Rand(rows * d, 10);
        var w = Rand(d, 11, 0.5, 1.5);
        var gy = Rand(rows * d, 12);
        var gx = new double[rows * d];
        var gw = new double[d];
        NormsScalar.RmsNormBackward<double>(x, w, gy, gx, gw, rows, d, 1e-6);
        double[] F() { var o = new double[rows * d]; NormsScalar.RmsNormForward<double>(x, w, o, rows, d, 1e-6); return o; }
        Check("rms x", x, F, gy, gx);
        Check("rms w", w, F, gy, gw);
    }

    [Theory]
    [InlineData(3, 1, 6, 1)] // LayerNorm: 3 rows of 6
    [InlineData(4, 2, 2, 3)] // GroupNorm: n=2, c=4, groups=2, spatial=3
    public void LayerAndGroupNorm(int blocks, int groups, int cg, int spatial)
    {
        int len = blocks * cg * spatial;
        int channels = groups * cg;
        var x = Rand(len, 13);
        var w = Rand(channels, 14);
        var b = Rand(channels, 15);
        var gy = Rand(len, 16);
        var gx = new double[len];
        var gw = new double[channels];
        var gb = new double[channels];
        NormsScalar.BlockNormBackward<double>(x, w, gy, gx, gw, gb, blocks, groups, cg, spatial, 1e-5);
        double[] F() { var o = new double[len]; NormsScalar.BlockNormForward<double>(x, w, b, o, blocks, groups, cg, spatial, 1e-5); return o; }
        Check("norm x", x, F, gy, gx);
        Check("norm w", w, F, gy, gw);
        Check("norm b", b, F, gy, gb);
    }

    [Theory]
    [InlineData(ActivationsScalar.Kind.Gelu)]
    [InlineData(ActivationsScalar.Kind.GeluTanh)]
    [InlineData(ActivationsScalar.Kind.QuickGelu)]
    [InlineData(ActivationsScalar.Kind.Silu)]
    public void Activation(ActivationsScalar.Kind kind)
    {
        var x = Rand(9, 17, -5, 5);
        var gy = Rand(9, 18);
        var g = new double[9];
        ActivationsScalar.Backward<double>(kind, x, gy, g);
        Check(kind.ToString(), x, () => { var o = new double[9]; ActivationsScalar.Forward<double>(kind, x, o); return o; }, gy, g);
    }

    [Fact]
    public void SwiGlu()
    {
        var gate = Rand(6, 19, -4, 4);
        var up = Rand(6, 20);
        var gy = Rand(6, 21);
        var gg = new double[6];
        var gu = new double[6];
        ActivationsScalar.SwiGluBackward<double>(gate, up, gy, gg, gu);
        double[] F() { var o = new double[6]; ActivationsScalar.SwiGluForward<double>(gate, up, o); return o; }
        Check("swiglu gate", gate, F, gy, gg);
        Check("swiglu up", up, F, gy, gu);
    }

    [Fact]
    public void CrossEntropyAndEmbedding()
    {
        int rows = 4, classes = 6;
        var logits = Rand(rows * classes, 22, -3, 3);
        var targets = new long[] { 1, -100, 5, 0 };
        var g = new double[rows * classes];
        LossScalar.CrossEntropyBackward<double>(logits, targets, 1.3, g, rows, classes);
        Check("cross_entropy", logits, () => new[] { LossScalar.CrossEntropy<double>(logits, targets, rows, classes) }, new[] { 1.3 }, g);

        int vocab = 5, d = 3;
        var w = Rand(vocab * d, 23);
        var ids = new long[] { 4, 0, 4, 2 };
        var gy = Rand(ids.Length * d, 24);
        var gw = new double[vocab * d];
        EmbeddingScalar.GatherBackward<double>(ids, gy, d, gw);
        Check("embedding", w, () => { var o = new double[ids.Length * d]; EmbeddingScalar.GatherForward<double>(ids, w, d, o); return o; }, gy, gw);
    }

    /// <summary>The Linear/MatMul backward formulas (dA = dY·Bᵀ, dB = Aᵀ·dY) on a plain double product.</summary>
    [Fact]
    public void MatMulFormulas()
    {
        int m = 3, k = 4, n = 2;
        var a = Rand(m * k, 25);
        var b = Rand(k * n, 26);
        var gy = Rand(m * n, 27);
        double[] F()
        {
            var c = new double[m * n];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                    for (int p = 0; p < k; p++) c[i * n + j] += a[i * k + p] * b[p * n + j];
            return c;
        }
        var ga = new double[m * k];
        var gb = new double[k * n];
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++)
                for (int j = 0; j < n; j++)
                {
                    ga[i * k + p] += gy[i * n + j] * b[p * n + j];
                    gb[p * n + j] += a[i * k + p] * gy[i * n + j];
                }
        Check("matmul a", a, F, gy, ga);
        Check("matmul b", b, F, gy, gb);
    }
}
