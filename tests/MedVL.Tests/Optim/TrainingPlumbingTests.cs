using MedVL.Kernels;
using MedVL.Optim;

namespace MedVL.Tests.Optim;

/// <summary>HF weight-decay grouping, the data-parallel gradient hook, the multithreaded path and safetensors checkpoints.</summary>
public class TrainingPlumbingTests
{
    [Theory]
    [InlineData("model.layers.0.self_attn.q_proj.weight", true)]
    [InlineData("model.layers.0.self_attn.q_proj.bias", false)]
    [InlineData("model.layers.3.input_layernorm.weight", false)]
    [InlineData("model.layers.3.post_attention_layernorm.weight", false)]
    [InlineData("model.norm.weight", false)]
    [InlineData("norm.weight", false)]
    [InlineData("model.mm_projector.0.weight", true)]
    [InlineData("vision_tower.encoder.layers.0.layer_norm1.weight", true)] // a LayerNorm HF finds by module type only
    [InlineData("model.layers.0.mlp.gate_up_proj.lora_A.default.weight", true)]
    [InlineData("model.final_rmsnorm.weight", false)]
    [InlineData("model.RMSNorm.weight", false)]
    [InlineData("model.normalizer.weight", true)]
    [InlineData("q_norm.weight", false)]
    public void DecayNamesFollowHfTrainer(string name, bool decays) => Assert.Equal(decays, WeightDecayGroups.IsDecayParameter(name));

    [Fact]
    public void DecayGroupsSplitByNameAndNormLayerPredicate()
    {
        using var w = Tensor.Zeros(2); using var b = Tensor.Zeros(2); using var ln = Tensor.Zeros(2); using var frozen = Tensor.Zeros(2);
        w.RequiresGrad = b.RequiresGrad = ln.RequiresGrad = true;
        var groups = WeightDecayGroups.Create(
            [("fc.weight", w), ("fc.bias", b), ("encoder.layer_norm1.weight", ln), ("embed.weight", frozen)], 0.1, lr: 2e-5,
            isInNormLayer: n => n.Contains("layer_norm1"));
        Assert.Equal(2, groups.Count);
        Assert.Same(w, Assert.Single(groups[0].Parameters));
        Assert.Equal(0.1, groups[0].WeightDecay);
        Assert.Equal(new[] { b, ln }, groups[1].Parameters);
        Assert.Equal(0.0, groups[1].WeightDecay);
        Assert.Equal(2e-5, groups[1].Lr);
    }

    /// <summary>Simulated ranks: the communicator adds the other ranks' gradients; the hook must average them.</summary>
    private sealed class FakeAllReduce(float[][] otherRanks) : IAllReduce
    {
        private int _offset;
        public int Calls;
        public int WorldSize => otherRanks.Length + 1;
        public int Rank => 0;
        public void AllReduceSum(Span<float> buffer, CancellationToken cancellationToken)
        {
            Calls++;
            foreach (var r in otherRanks)
                for (int i = 0; i < buffer.Length; i++) buffer[i] += r[_offset + i];
            _offset += buffer.Length;
        }
    }

    [Theory]
    [InlineData(1 << 20)]
    [InlineData(4)]
    public void DataParallelHookAveragesGradientsBeforeTheStep(int bucket)
    {
        using var a = Tensor.Zeros(3, 2); using var b = Tensor.Zeros(5); using var c = Tensor.Zeros(1);
        a.RequiresGrad = b.RequiresGrad = c.RequiresGrad = true;
        a.Grad = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 3, 2);
        c.Grad = Tensor.Full(9f, 1); // b has no gradient on this rank: contributes zeros
        var other = Enumerable.Range(0, 12).Select(i => (float)(10 * i)).ToArray();
        var comm = new FakeAllReduce([other]);
        using var opt = new Sgd([a, b, c], lr: 1.0) { GradientHook = new DataParallelGradientHook(comm, bucket) };
        opt.SynchronizeGradients();
        opt.SynchronizeGradients(); // once per step
        Assert.Equal(new float[] { 0.5f, 6, 11.5f, 17, 22.5f, 28 }, a.Grad.ToFloatArray());
        Assert.Equal(new float[] { 30, 35, 40, 45, 50 }, b.Grad!.ToFloatArray());
        Assert.Equal(new float[] { 59.5f }, c.Grad.ToFloatArray()); // (9 + 110) / 2
        Assert.Equal(bucket == 4 ? 3 : 1, comm.Calls);
        opt.Step(); // already synchronized: no second all-reduce
        Assert.Equal(bucket == 4 ? 3 : 1, comm.Calls);
        Assert.Equal(-59.5f, c[0]);
        opt.ZeroGrad();
    }

    /// <summary>Tensors big enough to be split across threads give exactly the single-threaded kernel's result.</summary>
    [Fact]
    public void LargeTensorsUpdateInParallelIdentically()
    {
        int n = (1 << 18) + 37;
        var rng = new Random(3);
        var init = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var grad = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        using var p = Tensor.FromArray(init, n);
        using var q = Tensor.FromArray(init, n);
        p.RequiresGrad = q.RequiresGrad = true;
        using var adam = new AdamW([p], lr: 1e-3, amsGrad: true);
        using var sgd = new Sgd([q], lr: 0.1, momentum: 0.9, nesterov: true);
        var (m, v, vmax) = (new float[n], new float[n], new float[n]);
        var (pr, qr, buf) = ((float[])init.Clone(), (float[])init.Clone(), new float[n]);
        for (int s = 1; s <= 2; s++)
        {
            p.Grad = Tensor.FromArray(grad, n);
            q.Grad = Tensor.FromArray(grad, n);
            adam.Step(); sgd.Step();
            adam.ZeroGrad(); sgd.ZeroGrad();
            OptimKernels.AdamStep(pr, grad, m, v, vmax, AdamCoefficients.For(1e-3, 0.9, 0.999, 1e-8, 1e-2, true, s));
            OptimKernels.SgdStep(qr, grad, buf, s == 1, 0, 0.9f, 1f, true, -0.1f);
        }
        Assert.True(p.ToFloatArray().AsSpan().SequenceEqual(pr));
        Assert.True(q.ToFloatArray().AsSpan().SequenceEqual(qr));
    }

    [Fact]
    public void SafetensorsCheckpointResumesBitExactly()
    {
        string path = Path.Combine(Path.GetTempPath(), $"medvl-optim-{Guid.NewGuid():N}.safetensors");
        using var p = Tensor.FromArray(new float[] { 0.3f, -0.2f, 0.9f, 0.1f, -0.7f }, 5);
        using var q = p.Clone();
        p.Name = q.Name = "w";
        p.RequiresGrad = q.RequiresGrad = true;
        try
        {
            using var a = new AdamW([p], lr: 1e-2);
            var sa = new LambdaLR(a, LrSchedules.Get(SchedulerType.Linear, 1, 8));
            void Step(Optimizer o, LambdaLR s, Tensor t, int k)
            {
                t.Grad = Tensor.FromArray(Enumerable.Range(0, 5).Select(i => MathF.Sin(k * 5 + i)).ToArray(), 5);
                o.Step(); s.Step(); o.ZeroGrad();
            }
            for (int k = 0; k < 3; k++) Step(a, sa, p, k);
            OptimizerCheckpoint.Save(path, a, sa);

            q.CopyFrom(p);
            using var b = new AdamW([q], lr: 5.0);
            var sb = new LambdaLR(b, LrSchedules.Get(SchedulerType.Linear, 1, 8));
            OptimizerCheckpoint.Load(path, b, sb);
            Assert.Equal(3, b.State(q).Step);
            for (int k = 3; k < 6; k++) { Step(a, sa, p, k); Step(b, sb, q, k); }
            Assert.Equal(p.ToFloatArray(), q.ToFloatArray());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
