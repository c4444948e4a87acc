using MedVL.Autograd;
using MedVL.Formats;
using MedVL.Optim;

namespace MedVL.Tests.Optim;

/// <summary>
/// llm.c's golden-state habit: a small MLP (Linear-GELU-Linear, MSE) trained 10 AdamW steps with a cosine-with-warmup
/// schedule and global-norm clipping, every step against torch 1.13 (tools/reference/optim.py, write_mlp_case).
/// The whole stack takes part: ops forward and backward, the autograd engine, clipping, AdamW and LambdaLR.
/// </summary>
public class MlpGoldenTests
{
    private static float[] Load(string name, out int[] shape)
    {
        var a = Npy.Read(TestPaths.Fixture("optim", "mlp", name + ".npy"));
        shape = a.Shape;
        return a.ToFloat32();
    }

    private static Tensor Param(string name)
    {
        var v = Load("init_" + name, out var shape);
        var t = Tensor.FromArray(v, shape);
        t.RequiresGrad = true;
        t.Name = name;
        return t;
    }

    [Fact]
    public void TenAdamWStepsMatchTorch()
    {
        using var x = Tensor.FromArray(Load("x", out var xs), xs);
        using var y = Tensor.FromArray(Load("y", out var ys), ys);
        var names = new[] { "w1", "b1", "w2", "b2" };
        var p = names.Select(Param).ToArray();
        var losses = Load("losses", out _);
        var traj = names.Select(n => Load("traj_" + n, out _)).ToArray();
        const int steps = 10;
        // HF Trainer convention: biases get no weight decay
        var opt = new AdamW(new[] { new ParamGroup(p[0], p[2]) { WeightDecay = 0.01 }, new ParamGroup(p[1], p[3]) { WeightDecay = 0.0 } },
            lr: 5e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8);
        var sched = new LambdaLR(opt, s => LrSchedules.Cosine(s, 2, steps));
        for (int step = 0; step < steps; step++)
        {
            opt.ZeroGrad();
            using (var h0 = MedVL.Autograd.Ops.Linear(x, p[0], p[1]))
            using (var h = MedVL.Autograd.Ops.Gelu(h0))
            using (var o = MedVL.Autograd.Ops.Linear(h, p[2], p[3]))
            using (var loss = MedVL.Autograd.Ops.Mse(o, y))
            {
                Assert.Equal(losses[step], loss.ToFloatArray()[0], losses[step] * 1e-4f);
                loss.Backward();
            }
            GradClip.ClipGradNorm(p, 1.0);
            opt.Step();
            sched.Step();
            for (int i = 0; i < p.Length; i++)
            {
                var got = p[i].ToFloatArray();
                int n = got.Length;
                for (int k = 0; k < n; k++)
                {
                    float e = traj[i][step * n + k];
                    Assert.True(MathF.Abs(got[k] - e) <= 1e-4f * MathF.Max(1f, MathF.Abs(e)), $"step {step} {names[i]}[{k}]: {got[k]} vs torch {e}");
                }
            }
        }
        foreach (var t in p) { t.Grad?.Dispose(); t.Dispose(); }
    }
}
