using MedVL.Autograd;
using MedVL.Tensors;

namespace MedVL.Tests.Tensors;

public class TensorTests
{
    private static Tensor Arange(params int[] shape)
    {
        int n = shape.Aggregate(1, (a, b) => a * b);
        return Tensor.FromArray(Enumerable.Range(0, n).Select(i => (float)i).ToArray(), shape);
    }

    [Fact]
    public void ViewsShareStorageAndIndexLikeTorch()
    {
        using var t = Arange(2, 3, 4);
        using var tr = t.Transpose(0, 2); // [4,3,2]
        Assert.Equal(new[] { 4, 3, 2 }, tr.ShapeArray());
        Assert.False(tr.IsContiguous);
        Assert.Equal(t[1, 2, 3], tr[3, 2, 1]);
        using var sl = t.Slice(2, 1, 2); // [2,3,2]
        Assert.Equal(t[1, 0, 2], sl[1, 0, 1]);
        using var sel = t.Select(1, 2); // [2,4]
        Assert.Equal(t[1, 2, 3], sel[1, 3]);
        using var p = t.Permute(1, 2, 0);
        Assert.Equal(t[1, 2, 3], p[2, 3, 1]);
        sl[0, 0, 0] = -5f; // writes through to the base
        Assert.Equal(-5f, t[0, 0, 1]);
    }

    [Fact]
    public void ContiguousCopyOfPermutedViewMatchesIndexing()
    {
        using var t = Arange(3, 5, 7);
        using var p = t.Permute(2, 0, 1);
        using var c = p.Contiguous();
        Assert.True(c.IsContiguous);
        for (int a = 0; a < 7; a++)
            for (int b = 0; b < 3; b++)
                for (int d = 0; d < 5; d++)
                    Assert.Equal(t[b, d, a], c[a, b, d]);
    }

    [Fact]
    public void ReshapeInfersAndRefusesNonContiguous()
    {
        using var t = Arange(4, 6);
        using var r = t.Reshape(2, -1, 3);
        Assert.Equal(new[] { 2, 4, 3 }, r.ShapeArray());
        Assert.Equal(t[3, 5], r[1, 3, 2]);
        using var tr = t.Transpose(0, 1);
        var ex = Assert.Throws<InvalidOperationException>(() => tr.Reshape(24));
        Assert.Contains("Contiguous", ex.Message);
        Assert.Throws<ArgumentException>(() => t.Reshape(5, 5));
    }

    [Fact]
    public void ExpandUsesStrideZero()
    {
        using var t = Arange(3, 1);
        using var e = t.Expand(2, 3, 4);
        Assert.Equal(0, e.Stride(0));
        Assert.Equal(0, e.Stride(2));
        Assert.Equal(2f, e[1, 2, 3]);
        Assert.Throws<ArgumentException>(() => t.Expand(2, 4));
    }

    [Fact]
    public void UnsqueezeSqueezeRoundTrip()
    {
        using var t = Arange(3, 4);
        using var u = t.Unsqueeze(1);
        Assert.Equal(new[] { 3, 1, 4 }, u.ShapeArray());
        using var s = u.Squeeze(1);
        Assert.Equal(t.ToFloatArray(), s.ToFloatArray());
    }

    [Fact]
    public void Bf16AndF16ConversionsRoundToNearestEven()
    {
        // 1 + 2^-8 lies exactly between two bf16 values (1 and 1+2^-7): ties go to even (1.0).
        float tie = 1f + MathF.Pow(2, -8);
        Assert.Equal(1f, FloatConvert.BF16ToF32(FloatConvert.F32ToBF16(tie)));
        float above = 1f + MathF.Pow(2, -8) + MathF.Pow(2, -20);
        Assert.Equal(1f + MathF.Pow(2, -7), FloatConvert.BF16ToF32(FloatConvert.F32ToBF16(above)));
        Assert.True(float.IsNaN(FloatConvert.BF16ToF32(FloatConvert.F32ToBF16(float.NaN))));

        var rnd = new Random(1);
        var x = Enumerable.Range(0, 37).Select(_ => (float)(rnd.NextDouble() * 200 - 100)).ToArray();
        using var t = Tensor.FromArray(x, 37);
        using var b = t.To(DType.BF16);
        using var back = b.To(DType.F32);
        var scalar = x.Select(v => FloatConvert.BF16ToF32(FloatConvert.F32ToBF16(v))).ToArray();
        Assert.Equal(scalar, back.ToFloatArray()); // vectorised widening equals the scalar twin
        for (int i = 0; i < x.Length; i++) Assert.True(MathF.Abs(back[i] - x[i]) <= MathF.Abs(x[i]) * (1f / 256));
        using var h = t.To(DType.F16);
        for (int i = 0; i < x.Length; i++) Assert.Equal((float)(Half)x[i], h[i]);
    }

    [Fact]
    public void StorageIsReturnedOnlyAfterLastView()
    {
        var t = Arange(8);
        var v = t.Slice(0, 2, 3);
        t.Dispose();
        Assert.Equal(3f, v[1]); // still valid: the view holds a reference
        v.Dispose();
        Assert.Throws<ObjectDisposedException>(() => v.Span<float>());
    }

    [Fact]
    public void FromArrayRejectsWrongCount()
    {
        var ex = Assert.Throws<ArgumentException>(() => Tensor.FromArray(new float[5], 2, 3));
        Assert.Contains("[2, 3]", ex.Message);
    }
}

/// <summary>The autograd engine on view ops and two test-local nodes, against hand-derived gradients.</summary>
public class AutogradEngineTests
{
    /// <summary>y = sum(x * c) with a constant c: dy/dx = c.</summary>
    private sealed class WeightedSum : GradNode
    {
        private readonly float[] _c;
        public WeightedSum(Tensor x, float[] c) : base(x) => _c = c;
        public override Tensor?[] Backward(Tensor g)
        {
            var gx = Tensor.FromArray(_c.Select(v => v * g.ToFloatArray()[0]).ToArray(), Inputs[0].ShapeArray());
            return new Tensor?[] { gx };
        }
        public static Tensor Apply(Tensor x, float[] c)
        {
            using var cx = x.Contiguous();
            var v = cx.ToFloatArray();
            float s = 0;
            for (int i = 0; i < v.Length; i++) s += v[i] * c[i];
            var y = Tensor.Scalar(s);
            if (x.TracksGrad && GradMode.IsEnabled) SetGradFn(y, new WeightedSum(x, c));
            return y;
        }
    }

    internal static void SetGradFn(Tensor t, GradNode n) =>
        typeof(Tensor).GetProperty(nameof(Tensor.GradFn))!.SetValue(t, n);

    [Fact]
    public void GradientFlowsThroughTransposeSliceAndExpand()
    {
        using var w = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        w.RequiresGrad = true;
        using var tr = w.Transpose(0, 1);       // [3,2]
        using var sl = tr.Slice(0, 1, 2);       // rows 1..2 of the transpose: w[:,1:3]ᵀ
        using var c = sl.Contiguous();          // [2,2] = [[w01,w11],[w02,w12]]
        var coef = new float[] { 10, 20, 30, 40 };
        using var y = WeightedSum.Apply(c, coef);
        y.Backward();
        Assert.Equal(new float[] { 0, 10, 30, 0, 20, 40 }, w.Grad!.ToFloatArray());

        // Expand accumulates over broadcast positions; a second backward accumulates into .Grad.
        using var b = Tensor.FromArray(new float[] { 1, 2 }, 2, 1);
        b.RequiresGrad = true;
        using var e = b.Expand(2, 3);
        using var ec = e.Contiguous();
        using var y2 = WeightedSum.Apply(ec, new float[] { 1, 2, 3, 4, 5, 6 });
        y2.Backward();
        Assert.Equal(new float[] { 6, 15 }, b.Grad!.ToFloatArray());
        using var ec2 = b.Expand(2, 3).Contiguous();
        using var y3 = WeightedSum.Apply(ec2, new float[] { 1, 1, 1, 1, 1, 1 });
        y3.Backward();
        Assert.Equal(new float[] { 9, 18 }, b.Grad!.ToFloatArray());
    }

    [Fact]
    public void NoGradRecordsNothingAndFrozenInputsGetNoGradient()
    {
        using var w = Tensor.FromArray(new float[] { 1, 2 }, 2);
        w.RequiresGrad = true;
        using (GradMode.NoGrad())
        {
            using var v = w.Slice(0, 0, 1);
            Assert.Null(v.GradFn);
        }
        using var frozen = Tensor.FromArray(new float[] { 1, 2 }, 2);
        using var fv = frozen.Slice(0, 0, 1);
        Assert.False(fv.TracksGrad);
        Assert.Throws<InvalidOperationException>(() => WeightedSum.Apply(fv, new float[] { 1 }).Backward());
    }

    [Fact]
    public void CheckpointRecomputesAndGivesSameGradients()
    {
        using var w = Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 2, 2);
        w.RequiresGrad = true;
        var coef = new float[] { 1, -2, 3, 5 };
        int calls = 0;
        Tensor Block(Tensor[] xs)
        {
            calls++;
            using var t = xs[0].Transpose(0, 1);
            using var c = t.Contiguous();
            return WeightedSum.Apply(c, coef);
        }
        using var y = Checkpoint.Run(Block, w);
        Assert.Equal(1, calls);
        y.Backward();
        Assert.Equal(2, calls); // recomputed in backward
        // d/dw of sum(wᵀ ⊙ coef) = coefᵀ
        Assert.Equal(new float[] { 1, 3, -2, 5 }, w.Grad!.ToFloatArray());
    }
}

public class DTypeTests
{
    [Theory]
    [InlineData("F32", true)]
    [InlineData("BF16", true)]
    [InlineData("BOOL", true)]
    [InlineData("Bool", false)]
    [InlineData("0", false)]
    [InlineData("F32,F16", false)]
    [InlineData("f32", false)]
    public void SafetensorsNamesParseExactly(string name, bool ok)
    {
        Assert.Equal(ok, DTypeInfo.TryParseSafetensorsName(name, out var t));
        if (ok) Assert.Equal(name, t.SafetensorsName());
    }
}
