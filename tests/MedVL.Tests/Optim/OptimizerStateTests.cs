using MedVL.Optim;
using MedVL.Tensors;

namespace MedVL.Tests.Optim;

/// <summary>State dicts (bit-exact resume), zero_grad, bf16 master weights, parameter validation.</summary>
public class OptimizerStateTests
{
    private static Tensor Param(string name, int seed, params int[] shape)
    {
        var rng = new Random(seed);
        int n = shape.Aggregate(1, (a, b) => a * b);
        var t = Tensor.FromArray(Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), shape);
        t.Name = name;
        t.RequiresGrad = true;
        return t;
    }

    private static void SetGrads(IEnumerable<Tensor> ps, int step)
    {
        int k = 0;
        foreach (var p in ps)
        {
            var rng = new Random(1000 * step + k++);
            p.Grad?.Dispose();
            p.Grad = Tensor.FromArray(Enumerable.Range(0, (int)p.Numel).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), p.ShapeArray());
        }
    }

    private static Optimizer Make(string kind, Tensor[] ps) => kind switch
    {
        "adamw" => new AdamW([new ParamGroup(ps[0]) { Lr = 1e-2 }, new ParamGroup(ps[1], ps[2]) { WeightDecay = 0.0, Beta1 = 0.8 }], lr: 3e-3, amsGrad: true),
        "sgd" => new Sgd([new ParamGroup(ps[0], ps[1]) { Momentum = 0.9, Nesterov = true }, new ParamGroup(ps[2])], lr: 0.1, weightDecay: 1e-3),
        _ => throw new ArgumentException(kind),
    };

    [Theory]
    [InlineData("adamw")]
    [InlineData("sgd")]
    public void StateDictResumesBitExactly(string kind)
    {
        Tensor[] a = [Param("proj.weight", 1, 7, 3), Param("proj.bias", 2, 7), Param("lora_A", 3, 2, 5)];
        Tensor[] b = a.Select(p => { var c = p.Clone(); c.Name = p.Name; c.RequiresGrad = true; return c; }).ToArray();
        try
        {
            using var optA = Make(kind, a);
            var schedA = new LambdaLR(optA, LrSchedules.Get(SchedulerType.Cosine, 2, 12));
            for (int s = 0; s < 5; s++) { SetGrads(a, s); optA.Step(); schedA.Step(); optA.ZeroGrad(); }

            using var saved = optA.StateDict();
            using var savedSched = schedA.StateDict();
            if (kind == "adamw")
            {
                Assert.Equal(5L, saved["state.proj.weight.step"].ToArray<long>()[0]);
                Assert.True(saved.ContainsKey("state.lora_A.max_exp_avg_sq"));
                Assert.Equal(0.8, saved["param_groups.1.beta1"].ToArray<double>()[0]);
            }
            else Assert.True(saved.ContainsKey("state.proj.bias.momentum_buffer"));

            // "Resume": copy the parameters, load state into a fresh optimizer built with different defaults.
            for (int i = 0; i < a.Length; i++) b[i].CopyFrom(a[i]);
            using var optB = kind == "adamw"
                ? new AdamW([new ParamGroup(b[0]), new ParamGroup(b[1], b[2])], lr: 99, amsGrad: true)
                : (Optimizer)new Sgd([new ParamGroup(b[0], b[1]) { Momentum = 0.9, Nesterov = true }, new ParamGroup(b[2])], lr: 99);
            optB.LoadStateDict(saved);
            var schedB = new LambdaLR(optB, LrSchedules.Get(SchedulerType.Cosine, 2, 12));
            schedB.LoadStateDict(savedSched);
            for (int s = 5; s < 10; s++)
            {
                SetGrads(a, s); SetGrads(b, s);
                optA.Step(); schedA.Step(); optA.ZeroGrad();
                optB.Step(); schedB.Step(); optB.ZeroGrad();
            }
            for (int i = 0; i < a.Length; i++) Assert.Equal(a[i].ToFloatArray(), b[i].ToFloatArray());
        }
        finally
        {
            foreach (var p in a.Concat(b)) { p.Grad?.Dispose(); p.Dispose(); }
        }
    }

    [Fact]
    public void LoadStateDictRejectsForeignKeysAndShapes()
    {
        using var p = Param("w", 1, 3, 2);
        using var opt = new AdamW([p]);
        using (var bad = Tensor.Zeros(4))
        {
            var ex = Assert.Throws<ArgumentException>(() => opt.LoadStateDict(new Dictionary<string, Tensor> { ["state.w.exp_avg"] = bad }));
            Assert.Contains("state.w.exp_avg", ex.Message);
            Assert.Contains("does not match", ex.Message);
            ex = Assert.Throws<ArgumentException>(() => opt.LoadStateDict(new Dictionary<string, Tensor> { ["state.v.exp_avg"] = bad }));
            Assert.Contains("no parameter 'v'", ex.Message);
            ex = Assert.Throws<ArgumentException>(() => opt.LoadStateDict(new Dictionary<string, Tensor> { ["state.w.momentum_buffer"] = bad }));
            Assert.Contains("no buffer 'momentum_buffer'", ex.Message);
            ex = Assert.Throws<ArgumentException>(() => opt.LoadStateDict(new Dictionary<string, Tensor> { ["param_groups.3.lr"] = bad }));
            Assert.Contains("param_groups", ex.Message);
        }
    }

    [Fact]
    public void UnnamedParametersAreKeyedByIndex()
    {
        using var p = Tensor.Zeros(2);
        using var q = Tensor.Zeros(3);
        p.RequiresGrad = q.RequiresGrad = true;
        using var opt = new AdamW([p, q]);
        q.Grad = Tensor.Full(0.5f, 3);
        opt.Step();
        using var sd = opt.StateDict();
        Assert.True(sd.ContainsKey("state.1.exp_avg"));
        Assert.False(sd.ContainsKey("state.0.exp_avg")); // skipped: no gradient
        Assert.Equal(0, opt.State(p).Step);
        opt.ZeroGrad();
    }

    [Fact]
    public void ZeroGradSetsToNoneOrZeros()
    {
        using var p = Param("w", 1, 4);
        using var opt = new Sgd([p], lr: 0.1);
        p.Grad = Tensor.Full(2f, 4);
        opt.ZeroGrad(setToNone: false);
        Assert.Equal(new float[4], p.Grad!.ToFloatArray());
        opt.ZeroGrad();
        Assert.Null(p.Grad);
    }

    /// <summary>bf16 parameters step on a float32 master copy; the parameter holds the master rounded to bf16.</summary>
    [Fact]
    public void Bf16ParametersUseFloat32MasterWeights()
    {
        using var f32 = Param("w", 4, 33);
        using var bf16 = f32.To(DType.BF16);
        bf16.RequiresGrad = true;
        bf16.Name = "w";
        using var reference = bf16.To(DType.F32); // the same starting values in f32
        reference.RequiresGrad = true;
        using var optRef = new AdamW([reference], lr: 1e-3);
        using var opt = new AdamW([bf16], lr: 1e-3);
        for (int s = 0; s < 4; s++)
        {
            SetGrads([reference], s); SetGrads([bf16], s);
            optRef.Step(); opt.Step();
        }
        var master = opt.State(bf16).BufferViews["master"].ToFloatArray();
        Assert.Equal(reference.ToFloatArray(), master);
        var expected = master.Select(v => FloatConvert.BF16ToF32(FloatConvert.F32ToBF16(v))).ToArray();
        Assert.Equal(expected, bf16.ToFloatArray());
        using var sd = opt.StateDict();
        Assert.True(sd.ContainsKey("state.w.master"));
        optRef.ZeroGrad(); opt.ZeroGrad();
    }

    [Fact]
    public void InvalidConfigurationsThrowClearly()
    {
        using var p = Param("w", 1, 3);
        Assert.Contains("Nesterov", Assert.Throws<ArgumentException>(() => new Sgd([p], momentum: 0.9, dampening: 0.1, nesterov: true)).Message);
        Assert.Contains("beta1", Assert.Throws<ArgumentException>(() => new AdamW([p], beta1: 1.0)).Message);
        Assert.Contains("more than one", Assert.Throws<ArgumentException>(() => new AdamW([new ParamGroup(p), new ParamGroup(p)])).Message);
        using var i32 = Tensor.Zeros(DType.I32, 3);
        Assert.Contains("dtype", Assert.Throws<ArgumentException>(() => new AdamW([i32])).Message);
        using var opt = new AdamW([new ParamGroup(p) { Name = "projector" }]);
        p.Grad = Tensor.Zeros(4);
        var ex = Assert.Throws<InvalidOperationException>(() => opt.Step());
        Assert.Contains("projector", ex.Message);
        opt.ZeroGrad();
    }
}
