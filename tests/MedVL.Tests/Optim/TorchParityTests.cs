using MedVL.Optim;
using Xunit.Abstractions;

namespace MedVL.Tests.Optim;

/// <summary>
/// 10 steps of torch.optim AdamW / Adam / SGD (two param groups each, clip_grad_norm_ and a cosine-with-warmup
/// LambdaLR every step) replayed here from the same initial parameters and gradients, compared after every step:
/// parameters, moment buffers, the clipped total norm and the scheduled lrs. Fixtures: tools/reference/optim.py.
/// </summary>
public class TorchParityTests(ITestOutputHelper output)
{
    private const int Steps = 10;
    private const int NumParams = 3;

    // Relative error per element, |a-b| / max(|b|, 1e-2 * max|b| over the tensor): plain relative error except for
    // elements a hundred times smaller than their tensor's largest (near-cancelled moments), which are held to 1e-7 of
    // the tensor's scale. The only source of difference is the total gradient norm: torch reduces it in float32 in
    // its own lane order (1 ulp from the correctly rounded norm computed here), which changes the clip coefficient by
    // an ulp; given torch's norm, every value is bit-identical (BitIdenticalToTorchGivenTorchsNorm).
    private const double Tol = 1e-5;
    private const double ScaleFloor = 1e-2;

    public static TheoryData<string> Cases => new() { "adamw", "adamw_amsgrad", "adam_l2", "sgd_nesterov", "sgd_momentum_dampening" };

    private static Optimizer Build(string kind, Tensor[] ps) => kind switch
    {
        "adamw" or "adamw_amsgrad" => new AdamW(
            [
                new ParamGroup(ps[0], ps[1]) { Lr = 1e-2, WeightDecay = 0.1 },
                new ParamGroup(ps[2]) { Lr = 3e-3, WeightDecay = 0.0, Beta1 = 0.8, Beta2 = 0.99, Eps = 1e-6 },
            ], lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, amsGrad: kind == "adamw_amsgrad"),
        "adam_l2" => AdamW.Adam(
            [
                new ParamGroup(ps[0], ps[1]) { Lr = 1e-2, WeightDecay = 0.05 },
                new ParamGroup(ps[2]) { Lr = 3e-3, WeightDecay = 0.0, Beta1 = 0.8, Beta2 = 0.99, Eps = 1e-6 },
            ], lr: 1e-3),
        "sgd_nesterov" => new Sgd(
            [
                new ParamGroup(ps[0], ps[1]) { Lr = 0.1, WeightDecay = 1e-3 },
                new ParamGroup(ps[2]) { Lr = 0.03, Momentum = 0.5 },
            ], lr: 0.05, momentum: 0.9, dampening: 0.0, nesterov: true, weightDecay: 0.0),
        "sgd_momentum_dampening" => new Sgd(
            [
                new ParamGroup(ps[0], ps[1]) { Lr = 0.1, WeightDecay = 1e-2 },
                new ParamGroup(ps[2]) { Lr = 0.03, Momentum = 0.0 },
            ], lr: 0.05, momentum: 0.9, dampening: 0.25, nesterov: false, weightDecay: 0.0),
        _ => throw new ArgumentException(kind),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTorchStepByStep(string kind) => Run(kind, useTorchNorm: false);

    /// <summary>
    /// Same run, but scaling the gradients with torch's own total norm: isolates the update kernels from the norm's
    /// reduction order, and then every value must be bit-identical to torch (same op order and FMAs as ATen).
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void BitIdenticalToTorchGivenTorchsNorm(string kind) => Run(kind, useTorchNorm: true);

    private void Run(string kind, bool useTorchNorm)
    {
        var hyper = OptimFixtures.Load(kind, "hyper").Data;
        double maxNorm = hyper[0], normType = hyper[1];
        var norms = OptimFixtures.Load(kind, "norms").Data;
        var lrs = OptimFixtures.Load(kind, "lrs");
        var ps = new Tensor[NumParams];
        var grads = new OptimFixtures.Array[NumParams];
        for (int i = 0; i < NumParams; i++)
        {
            var init = OptimFixtures.Load(kind, $"init{i}");
            ps[i] = Tensor.FromArray(init.F32, init.Shape);
            ps[i].RequiresGrad = true;
            grads[i] = OptimFixtures.Load(kind, $"grads{i}");
        }
        string[] buffers = ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer"];
        var expected = new Dictionary<string, OptimFixtures.Array>();
        for (int i = 0; i < NumParams; i++)
        {
            expected[$"param{i}"] = OptimFixtures.Load(kind, $"param{i}");
            foreach (var b in buffers)
                if (OptimFixtures.Exists(kind, $"{b}{i}")) expected[$"{b}{i}"] = OptimFixtures.Load(kind, $"{b}{i}");
        }

        using var opt = Build(kind, ps);
        var sched = new LambdaLR(opt, s => LrSchedules.Cosine(s, 3, Steps));
        double worst = 0;
        int exact = 0, total = 0;
        try
        {
            for (int k = 0; k < Steps; k++)
            {
                for (int i = 0; i < NumParams; i++)
                    ps[i].Grad = Tensor.FromArray(grads[i].Row(k).Select(d => (float)d).ToArray(), grads[i].RowShape);
                for (int g = 0; g < opt.ParamGroups.Count; g++)
                    Assert.Equal(lrs.Data[k * opt.ParamGroups.Count + g], opt.ParamGroups[g].Lr!.Value, 15);
                float norm;
                if (useTorchNorm)
                {
                    norm = (float)norms[k];
                    GradClip.ScaleGradients(ps.Select(p => p.Grad!).ToList(), norm, maxNorm);
                }
                else norm = GradClip.ClipGradNorm(ps, maxNorm, normType);
                Assert.True(Math.Abs(norm - norms[k]) <= 1e-6 * Math.Max(1, norms[k]), $"step {k}: total norm {norm} vs torch {norms[k]}");
                opt.Step();
                sched.Step();
                opt.ZeroGrad();
                for (int i = 0; i < NumParams; i++)
                {
                    var state = opt.State(ps[i]);
                    foreach (var (key, arr) in expected.Where(e => e.Key.EndsWith(i.ToString()) && e.Key.Length == e.Key.TrimEnd("0123456789".ToCharArray()).Length + 1))
                    {
                        string name = key[..^1];
                        var actual = name == "param" ? ps[i].ToFloatArray() : state.BufferViews[name].ToFloatArray();
                        var want = arr.Row(k);
                        double err = OptimFixtures.MaxRelError(actual, want, ScaleFloor * want.Max(Math.Abs));
                        worst = Math.Max(worst, err);
                        for (int e = 0; e < actual.Length; e++) { total++; if (actual[e] == (float)want[e]) exact++; }
                        if (useTorchNorm) Assert.True(actual.SequenceEqual(want.Select(d => (float)d)), $"{kind} step {k} {name}{i}: not bit-identical (max relative error {err:E3})");
                        Assert.True(err <= Tol, $"{kind} step {k} {name}{i}: max relative error {err:E3} > {Tol:E0}");
                    }
                    if (opt is AdamW) Assert.Equal(k + 1, state.Step);
                }
            }
        }
        finally
        {
            foreach (var p in ps) { p.Grad?.Dispose(); p.Dispose(); }
        }
        output.WriteLine($"{kind}: worst relative error {worst:E3}; {exact}/{total} values bit-identical to torch");
    }
}
