using MedVL.Optim;

namespace MedVL.Tests.Optim;

/// <summary>LR lambdas against tables computed from transformers' optimization.py formulas (tools/reference/optim.py).</summary>
public class ScheduleTests
{
    public static TheoryData<string> Tables => new()
    {
        "constant", "constant_with_warmup_w7", "constant_with_warmup_w0", "linear_w5_t30", "linear_w0_t1", "cosine_w5_t30",
        "cosine_w0_t17", "cosine_w3_t10_c1.5", "cosine_with_restarts_w4_t33_c3", "cosine_with_restarts_w0_t20_c1",
    };

    private static Func<long, double> For(string name) => name switch
    {
        "constant" => LrSchedules.Get(LrSchedules.Parse("constant")),
        "constant_with_warmup_w7" => LrSchedules.Get(SchedulerType.ConstantWithWarmup, 7),
        "constant_with_warmup_w0" => LrSchedules.Get(SchedulerType.ConstantWithWarmup, 0),
        "linear_w5_t30" => LrSchedules.Get(LrSchedules.Parse("linear"), 5, 30),
        "linear_w0_t1" => LrSchedules.Get(SchedulerType.Linear, 0, 1),
        "cosine_w5_t30" => LrSchedules.Get(LrSchedules.Parse("cosine"), 5, 30),
        "cosine_w0_t17" => s => LrSchedules.Cosine(s, 0, 17),
        "cosine_w3_t10_c1.5" => LrSchedules.Get(SchedulerType.Cosine, 3, 10, 1.5),
        "cosine_with_restarts_w4_t33_c3" => LrSchedules.Get(LrSchedules.Parse("cosine_with_restarts"), 4, 33, 3),
        "cosine_with_restarts_w0_t20_c1" => LrSchedules.Get(SchedulerType.CosineWithRestarts, 0, 20),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Tables))]
    public void LambdaMatchesTransformers(string name)
    {
        var expected = OptimFixtures.Load("schedules", name).Data;
        var f = For(name);
        for (int s = 0; s < expected.Length; s++)
            Assert.True(Math.Abs(f(s) - expected[s]) <= 1e-15, $"{name} step {s}: {f(s):R} vs {expected[s]:R}");
    }

    /// <summary>The lr torch's LambdaLR puts in the optimizer before optimizer step k is base_lr * lambda(k), k from 0.</summary>
    [Fact]
    public void LambdaLRStepsLikeTorch()
    {
        var expected = OptimFixtures.Load("schedules", "lambdalr_cosine_w5_t30_lr3e-4").Data;
        using var p = Tensor.Zeros(1);
        p.RequiresGrad = true;
        using var opt = new Sgd([p], lr: 3e-4);
        var sched = new LambdaLR(opt, s => LrSchedules.Cosine(s, 5, 30));
        Assert.Equal(0, sched.LastEpoch);
        for (int k = 0; k < expected.Length; k++)
        {
            Assert.Equal(expected[k], opt.ParamGroups[0].Lr!.Value);
            opt.Step();
            sched.Step();
        }
        Assert.Equal(3e-4, opt.ParamGroups[0].InitialLr);
    }

    [Fact]
    public void SchedulerStateRoundTripsAndResumes()
    {
        using var p = Tensor.Zeros(1);
        p.RequiresGrad = true;
        using var opt = new AdamW([p], lr: 1e-3);
        var sched = new LambdaLR(opt, LrSchedules.Get(SchedulerType.Linear, 2, 20));
        for (int i = 0; i < 7; i++) sched.Step();
        double lr = opt.ParamGroups[0].Lr!.Value;
        using var state = sched.StateDict();

        using var p2 = Tensor.Zeros(1);
        p2.RequiresGrad = true;
        using var opt2 = new AdamW([p2], lr: 5.0);
        var sched2 = new LambdaLR(opt2, LrSchedules.Get(SchedulerType.Linear, 2, 20));
        sched2.LoadStateDict(state);
        Assert.Equal(7, sched2.LastEpoch);
        Assert.Equal(lr, opt2.ParamGroups[0].Lr);
        sched.Step(); sched2.Step();
        Assert.Equal(opt.ParamGroups[0].Lr, opt2.ParamGroups[0].Lr);
    }

    [Fact]
    public void BadArgumentsAreRejectedClearly()
    {
        Assert.Contains("numTrainingSteps", Assert.Throws<ArgumentException>(() => LrSchedules.Get(SchedulerType.Cosine, 3)).Message);
        Assert.Contains("unknown lr_scheduler_type 'cosin'", Assert.Throws<ArgumentException>(() => LrSchedules.Parse("cosin")).Message);
        Assert.Throws<ArgumentException>(() => LrSchedules.Get(SchedulerType.CosineWithRestarts, 0, 10, 1.5));
        using var p = Tensor.Zeros(1);
        using var q = Tensor.Zeros(2);
        using var opt = new Sgd([new ParamGroup(p), new ParamGroup(q)]);
        Assert.Contains("one per param group", Assert.Throws<ArgumentException>(() => new LambdaLR(opt, [LrSchedules.Constant])).Message);
        Assert.Contains("initial_lr", Assert.Throws<InvalidOperationException>(() => new LambdaLR(opt, LrSchedules.Constant, lastEpoch: 4)).Message);
    }
}
