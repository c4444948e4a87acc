using MedVL.Autograd;
using MedVL.Kernels;
using MedVL.Tensors;
using Op = MedVL.Autograd.Ops;

namespace MedVL.Tests.Ops;

/// <summary>Validation messages, strided inputs, reduced-precision weights, frozen weights, dropout and selection edge cases.</summary>
public class OpsBehaviorTests
{
    private static Tensor Rand(int seed, params int[] shape)
    {
        var r = new Random(seed);
        int n = shape.Aggregate(1, (a, b) => a * b);
        return Tensor.FromArray(Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 4 - 2)).ToArray(), shape);
    }

    // ---------- clear errors ----------

    [Fact]
    public void ShapeErrorsNameTheOpAndShapes()
    {
        using var a = Rand(1, 2, 3);
        using var b = Rand(2, 4);
        var e = Assert.Throws<ArgumentException>(() => Op.Add(a, b));
        Assert.Contains("Add", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[4]", e.Message);
        using var m = Rand(3, 5, 2);
        e = Assert.Throws<ArgumentException>(() => Op.MatMul(a, m));
        Assert.Contains("MatMul", e.Message);
        using var w = Rand(4, 7, 5);
        e = Assert.Throws<ArgumentException>(() => Op.Linear(a, w));
        Assert.Contains("in_features = 5", e.Message);
        using var x4 = Rand(5, 2, 6, 3);
        e = Assert.Throws<ArgumentException>(() => Op.GroupNorm(x4, 4, null, null, 1e-6f));
        Assert.Contains("6 channels", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Op.TopK(a, 4));
        using var badW = Rand(6, 4);
        e = Assert.Throws<ArgumentException>(() => Op.RmsNorm(a, badW, 1e-6f));
        Assert.Contains("weight", e.Message);
    }

    [Fact]
    public void EmbeddingAndCrossEntropyRejectBadIds()
    {
        using var w = Rand(1, 5, 3);
        using var ids = Tensor.FromArray(new long[] { 0, 5 }, 2);
        var e = Assert.Throws<ArgumentException>(() => Op.Embedding(ids, w));
        Assert.Contains("id 5", e.Message);
        Assert.Contains("[0, 5)", e.Message);
        using var logits = Rand(2, 2, 4);
        using var t = Tensor.FromArray(new long[] { 1, 9 }, 2);
        e = Assert.Throws<ArgumentException>(() => Op.CrossEntropy(logits, t));
        Assert.Contains("target 9", e.Message);
        using var ignored = Tensor.FromArray(new long[] { -100, -100 }, 2);
        using var nan = Op.CrossEntropy(logits, ignored);
        Assert.True(float.IsNaN(nan.ToFloatArray()[0]), "all targets ignored gives NaN, as torch");
    }

    // ---------- strided inputs ----------

    [Fact]
    public void NonContiguousInputsMatchContiguousAndGradientsReachTheBase()
    {
        using var x = Rand(3, 5, 4);
        x.RequiresGrad = true;
        using var xt = x.Transpose(0, 1); // [4, 5], strided
        using var xc = xt.Clone();
        using var y1 = Op.Softmax(xt);
        using var y2 = Op.Softmax(xc);
        Assert.Equal(y2.ToFloatArray(), y1.ToFloatArray());
        using var b = Rand(4, 5);
        using var s1 = Op.Mul(xt, b);
        using var s2 = Op.Mul(xc, b);
        Assert.Equal(s2.ToFloatArray(), s1.ToFloatArray());
        using var loss = Op.Sum(s1);
        loss.Backward();
        // d/dx sum(xᵀ ⊙ b) = bᵀ (b broadcast over the 4 rows of xᵀ)
        var g = x.Grad!;
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 4; j++)
                Assert.Equal(b[i], g[i, j]);
    }

    [Fact]
    public void TensorUsedTwiceAccumulatesGradient()
    {
        using var x = Rand(6, 2, 3);
        x.RequiresGrad = true;
        using var c = Op.Concat(new[] { x, x }, 0);
        using var sq = Op.Square(c);
        using var loss = Op.Sum(sq);
        loss.Backward();
        var xs = x.ToFloatArray();
        var g = x.Grad!.ToFloatArray();
        for (int i = 0; i < xs.Length; i++) Assert.Equal(4 * xs[i], g[i], 5);
    }

    // ---------- bf16 / f16 weights, frozen weights ----------

    [Fact]
    public void Bf16WeightsEqualFloat32WeightsRoundedToBf16()
    {
        using var x = Rand(7, 3, 17);
        using var w32 = Rand(8, 17);
        using var wb = w32.To(DType.BF16);
        using var wr = wb.To(DType.F32);
        using var a = Op.RmsNorm(x, wb, 1e-6f);
        using var b = Op.RmsNorm(x, wr, 1e-6f);
        Assert.Equal(b.ToFloatArray(), a.ToFloatArray());

        using var ln = Op.LayerNorm(x, wb, wb, 1e-5f);
        using var lr = Op.LayerNorm(x, wr, wr, 1e-5f);
        Assert.Equal(lr.ToFloatArray(), ln.ToFloatArray());

        using var table = Rand(9, 11, 6);
        using var tb = table.To(DType.F16);
        using var tr = tb.To(DType.F32);
        using var ids = Tensor.FromArray(new[] { 3, 10, 0, 3 }, 4); // int32 ids
        using var e1 = Op.Embedding(ids, tb);
        using var e2 = Op.Embedding(ids, tr);
        Assert.Equal(e2.ToFloatArray(), e1.ToFloatArray());

        using var lw = Rand(10, 9, 17);
        using var lwb = lw.To(DType.BF16);
        using var lwr = lwb.To(DType.F32);
        using var y1 = Op.Linear(x, lwb);
        using var y2 = Op.Linear(x, lwr);
        OpFixtureRunner.AssertClose(y2.ToFloatArray(), y1.ToFloatArray(), 1e-5f, "linear bf16");
    }

    [Fact]
    public void FrozenBf16BaseWeightGetsNoGradientButInputDoes()
    {
        using var x = Rand(11, 20, 8); // 20 rows: the GEMM path, not GEMV
        x.RequiresGrad = true;
        using var w = Rand(12, 5, 8).To(DType.BF16);
        using var bias = Rand(13, 5);
        bias.RequiresGrad = true;
        using var y = Op.Linear(x, w, bias);
        using var loss = Op.Sum(y);
        loss.Backward();
        Assert.Null(w.Grad);
        Assert.NotNull(x.Grad);
        Assert.Equal(new[] { 5 }, bias.Grad!.ShapeArray());
        Assert.All(bias.Grad.ToFloatArray(), v => Assert.Equal(20f, v));
        // dX = 1·W: every row of x.Grad is the column sums of W
        using var wf = w.To(DType.F32);
        var wa = wf.ToFloatArray();
        for (int c = 0; c < 8; c++)
        {
            float s = 0;
            for (int o = 0; o < 5; o++) s += wa[o * 8 + c];
            Assert.Equal(s, x.Grad![3, c], 4);
        }
        // A trainable bf16 weight gets a float32 gradient of its shape.
        using var wt = Rand(14, 5, 8).To(DType.BF16);
        wt.RequiresGrad = true;
        using var y2 = Op.Linear(x, wt);
        using var l2 = Op.Sum(y2);
        l2.Backward();
        Assert.Equal(DType.F32, wt.Grad!.DType);
        Assert.Equal(new[] { 5, 8 }, wt.Grad.ShapeArray());
    }

    [Fact]
    public void NoGradRecordsNothing()
    {
        using var x = Rand(15, 3, 4);
        x.RequiresGrad = true;
        using (GradMode.NoGrad())
        {
            using var y = Op.Gelu(x);
            Assert.Null(y.GradFn);
        }
        using var z = Op.Gelu(x);
        Assert.NotNull(z.GradFn);
    }

    // ---------- activations ----------

    [Fact]
    public void FusedSwiGluTakesGateFirstThenUp()
    {
        using var gu = Rand(16, 2, 3, 10);
        var halves = Op.Chunk(gu, 2, -1);
        using var gate = halves[0].Contiguous();
        using var up = halves[1].Contiguous();
        foreach (var h in halves) h.Dispose();
        using var a = Op.SwiGluFused(gu);
        using var b = Op.SwiGlu(gate, up);
        Assert.Equal(b.ToFloatArray(), a.ToFloatArray());
    }

    [Theory]
    [InlineData("gelu")]
    [InlineData("gelu_new")]
    [InlineData("gelu_pytorch_tanh")]
    [InlineData("quick_gelu")]
    [InlineData("silu")]
    public void ActivationByHfName(string name)
    {
        using var x = Rand(17, 7);
        using var y = Op.Activation(name, x);
        using var expected = name switch
        {
            "gelu" => Op.Gelu(x),
            "quick_gelu" => Op.QuickGelu(x),
            "silu" => Op.Silu(x),
            _ => Op.GeluTanh(x),
        };
        Assert.Equal(expected.ToFloatArray(), y.ToFloatArray());
        Assert.Throws<ArgumentException>(() => Op.Activation("relu6", x));
    }

    /// <summary>Reference values from Python's math.erf / math.erfc.</summary>
    [Theory]
    [InlineData(-6.0, -1.0, 2.0)]
    [InlineData(-3.0, -0.9999779095030014, 1.9999779095030015)]
    [InlineData(-2.5, -0.999593047982555, 1.999593047982555)]
    [InlineData(-1.0, -0.8427007929497149, 1.842700792949715)]
    [InlineData(-0.3, -0.3286267594591274, 1.3286267594591274)]
    [InlineData(0.0, 0.0, 1.0)]
    [InlineData(1e-05, 1.1283791670579e-05, 0.9999887162083294)]
    [InlineData(0.5, 0.5204998778130465, 0.4795001221869535)]
    [InlineData(1.7, 0.9837904585907745, 0.016209541409225436)]
    [InlineData(2.4999, 0.9995928300996666, 0.0004071699003334514)]
    [InlineData(2.5, 0.999593047982555, 0.0004069520174449589)]
    [InlineData(3.3, 0.9999969422902035, 3.0577097964381654e-06)]
    [InlineData(5.0, 0.9999999999984626, 1.5374597944280351e-12)]
    public void ErfMatchesPython(double x, double erf, double erfc)
    {
        Assert.Equal(erf, SpecialFunctions.Erf(x), 1e-15);
        // below 2.5 erfc is 1 − erf(series), so its error is absolute (~1e-16); above, the continued fraction is relative-accurate
        Assert.True(Math.Abs(SpecialFunctions.Erfc(x) - erfc) <= 1e-15 + 1e-14 * Math.Abs(erfc), $"erfc({x}) = {SpecialFunctions.Erfc(x):R}, python {erfc:R}");
    }

    // ---------- threading ----------

    /// <summary>Large row-wise ops run in row chunks on several threads; rows are independent, so results equal one thread bit for bit.</summary>
    [Fact]
    public void RowParallelForwardEqualsSingleThreadKernels()
    {
        int rows = 257, d = 1031;
        using var x = Rand(20, rows, d);
        using var w = Rand(21, d);
        using var b = Rand(22, d);
        var xs = x.ToFloatArray();
        var ws = w.ToFloatArray();
        var bs = b.ToFloatArray();
        var expected = new float[rows * d];
        var s1 = new float[rows];
        var s2 = new float[rows];

        using var sm = Op.Softmax(x);
        Softmax.SoftmaxForward(xs, expected, rows, d);
        Assert.Equal(expected, sm.ToFloatArray());
        using var lsm = Op.LogSoftmax(x);
        Softmax.LogSoftmaxForward(xs, expected, rows, d);
        Assert.Equal(expected, lsm.ToFloatArray());
        using var rms = Op.RmsNorm(x, w, 1e-6f);
        Norms.RmsNormForward(xs, ws, expected, s1, rows, d, 1e-6f);
        Assert.Equal(expected, rms.ToFloatArray());
        using var ln = Op.LayerNorm(x, w, b, 1e-5f);
        Norms.LayerNormForward(xs, ws, bs, expected, s1, s2, rows, d, 1e-5f);
        Assert.Equal(expected, ln.ToFloatArray());

        // and the saved statistics feed a correct backward: compare with a single-threaded twin gradient
        using var xg = x.Clone();
        xg.RequiresGrad = true;
        using var y = Op.LayerNorm(xg, w, b, 1e-5f);
        using var loss = Op.Sum(y);
        loss.Backward();
        var gx = new float[rows * d];
        var ones = Enumerable.Repeat(1f, rows * d).ToArray();
        Norms.LayerNormBackward(xs, ws, s1, s2, ones, gx, default, default, rows, d);
        Assert.Equal(gx, xg.Grad!.ToFloatArray());
    }

    // ---------- dropout ----------

    [Fact]
    public void DropoutIsSeededScaledAndIdentityInEval()
    {
        using var x = Tensor.Full(1f, 100, 100);
        x.RequiresGrad = true;
        using var eval = Op.Dropout(x, 0.3f, training: false, seed: 1);
        Assert.All(eval.ToFloatArray(), v => Assert.Equal(1f, v));
        using var a = Op.Dropout(x, 0.3f, training: true, seed: 42);
        using var b = Op.Dropout(x, 0.3f, training: true, seed: 42);
        using var c = Op.Dropout(x, 0.3f, training: true, seed: 43);
        var av = a.ToFloatArray();
        Assert.Equal(av, b.ToFloatArray());
        Assert.NotEqual(av, c.ToFloatArray());
        float keep = 1f / 0.7f;
        Assert.All(av, v => Assert.True(v == 0f || v == keep));
        double dropped = av.Count(v => v == 0f) / (double)av.Length;
        Assert.InRange(dropped, 0.27, 0.33); // 10 000 Bernoulli(0.3) draws: ±3σ ≈ ±0.014
        using var loss = Op.Sum(a);
        loss.Backward();
        Assert.Equal(av, x.Grad!.ToFloatArray()); // backward multiplies by the same mask
    }

    // ---------- selection ----------

    [Fact]
    public void ArgmaxAndTopKOrderLikeTorch()
    {
        using var x = Tensor.FromArray(new[] { 1f, 3f, 3f, float.NaN, 2f, 2f, 5f, 5f }, 2, 4);
        using var am = Op.Argmax(x);
        Assert.Equal(new long[] { 3, 2 }, am.ToArray<long>()); // row 0 [1,3,3,NaN]: NaN is the max; row 1: the first 5 (torch: [3, 2])
        var (v, i) = Op.TopK(x, 3);
        using (v)
        using (i)
        {
            // torch leaves the order of equal values unspecified (1.13 gives [3, 2, 1] for row 0); ours is lower index first
            Assert.Equal(new long[] { 3, 1, 2, 2, 3, 0 }, i.ToArray<long>());
            var vals = v.ToFloatArray();
            Assert.True(float.IsNaN(vals[0]));
            Assert.Equal(new[] { 3f, 3f, 5f, 5f, 2f }, vals[1..]);
        }
    }
}
