using MedVL.Adapters;
using MedVL.Autograd;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Tensors;
using AOps = MedVL.Autograd.Ops;
using static MedVL.Tests.Models.DecoderParityTests;

namespace MedVL.Tests.Adapters;

/// <summary>Upcycling a dense model into Med-MoE and the router pre-training of Router_Train.ipynb.</summary>
public class MedMoeTrainingTests
{
    [Theory]
    [InlineData("stablelm")]
    [InlineData("phi2")]
    [InlineData("phi3")]
    public void Upcycled_Layer_Is_DenseFfnTimesOnePlusTopProbability(string folder)
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx(folder));
        var dense = model.Layers[0].Mlp;
        using var x = Tensor.FromArray(Enumerable.Range(0, 3 * model.HiddenSize).Select(i => MathF.Sin(i * 0.37f)).ToArray(), 1, 3, model.HiddenSize);
        float[] expectedDense;
        using (GradMode.NoGrad()) using (var d = dense.Forward(x)) expectedDense = d.ToFloatArray();
        var parameters = MedMoeUpcycling.Upcycle(model, new MedMoeUpcycleOptions { Experts = 4, Seed = 3 });
        try
        {
            Assert.Equal(Enumerable.Range(0, model.NumLayers).Where(i => i % 2 == 0), model.Layers.Select((l, i) => (l, i)).Where(p => p.l.Mlp is MoeMlp).Select(p => p.i));
            var moe = (MoeMlp)model.Layers[0].Mlp;
            Assert.Equal(4, moe.Experts.Count);
            Assert.Contains(parameters, p => p.Name == "model.layers.0.mlp.deepspeed_moe.gate.wg.bias");
            Assert.All(parameters, p => Assert.True(p.Tensor.RequiresGrad));
            using var trace = new MoeRoutingTrace();
            float[] y;
            using (GradMode.NoGrad())
            using (MoeRoutingTrace.Use(trace))
            using (var o = moe.Forward(x)) y = o.ToFloatArray();
            var r = trace.Layers.Single();
            int h = model.HiddenSize;
            for (int t = 0; t < 3; t++)
            {
                float p = r.Weight(t, 0); // top-1 probability, every expert being the same FFN
                for (int c = 0; c < h; c++)
                    Assert.True(Math.Abs((1 + p) * expectedDense[t * h + c] - y[t * h + c]) <= 1e-5 * (1 + Math.Abs(y[t * h + c])), $"token {t} channel {c}");
            }
            // Training reaches every expert that got a token, the meta expert and the router.
            using var o2 = moe.Forward(x);
            using var s = AOps.Sum(o2);
            s.Backward();
            Assert.NotNull(parameters.Single(p => p.Name == "model.layers.0.mlp.deepspeed_moe.gate.wg.weight").Tensor.Grad);
            Assert.Contains(parameters, p => p.Name.Contains("meta_moe") && p.Tensor.Grad is not null);
        }
        finally { foreach (var (_, t) in parameters) t.Dispose(); }
    }

    [Fact]
    public void RouterPretraining_SeparatesModalities_AndLoadsIntoEveryMoeLayer()
    {
        // Four linearly separable "modalities": Gaussian clusters in 24 dimensions.
        var rng = new Random(5);
        int h = 24, n = 240;
        var centers = Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, h).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray()).ToArray();
        var labels = Enumerable.Range(0, n).Select(i => i % 4).ToArray();
        var x = labels.Select(l => centers[l].Select(c => c + (float)(rng.NextDouble() - 0.5)).ToArray()).ToArray();
        var (w, b) = RouterPretraining.Train(x, labels, 4, new RouterTrainingOptions { Epochs = 30, LearningRate = 1e-2, Seed = 1 });
        Assert.True(RouterPretraining.Accuracy(w, b, x, labels) >= 0.97);

        using var model = AutoModelForCausalLM.FromPretrained(TestPaths.Fixture("adapters", "medmoe_stablelm"));
        Assert.Throws<ArgumentException>(() => RouterPretraining.LoadIntoRouters(model, w, b)); // 24 ≠ hidden 32
        var (w2, b2) = RouterPretraining.Train(x.Select(v => v.Concat(new float[8]).ToArray()).ToArray(), labels, 4, new RouterTrainingOptions { Epochs = 5 });
        var owned = RouterPretraining.LoadIntoRouters(model, w2, b2);
        try
        {
            var routers = model.Layers.Select(l => l.Mlp).OfType<MoeMlp>().Select(m => m.Router).ToArray();
            Assert.Equal(2, routers.Length);
            Assert.All(routers, r => Assert.Equal(w2, r.Weight.ToFloatArray()));
            Assert.All(routers, r => Assert.Equal(b2, r.Bias!.ToFloatArray()));
        }
        finally { foreach (var t in owned) t.Dispose(); }
    }

    [Fact]
    public void RouterEmbedding_AveragesEveryHiddenStateAndPosition()
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx("stablelm"));
        using var ids = Tensor.FromArray(new[] { 1, 17, 250, 3 }, 1, 4);
        using var e = model.EmbedTokens(ids);
        var emb = RouterPretraining.Embedding(model, e);
        Assert.Equal(model.HiddenSize, emb.Length);
        // Independent recomputation: embeddings, layer outputs 1..L−1, and the final-normed last state.
        var states = new List<Tensor>();
        using (GradMode.NoGrad())
        using (var last = model.ForwardHidden(e, options: new DecoderForwardOptions { HiddenStates = states }))
        {
            Assert.Equal(model.NumLayers + 1, states.Count);
            var all = states.Take(model.NumLayers).Select(s => s.ToFloatArray()).Append(last.ToFloatArray()).ToArray();
            for (int c = 0; c < model.HiddenSize; c += 7)
            {
                double m = all.Sum(a => Enumerable.Range(0, 4).Sum(t => (double)a[t * model.HiddenSize + c])) / (all.Length * 4);
                Assert.Equal(m, emb[c], 4);
            }
        }
        foreach (var s in states) s.Dispose();
    }
}

/// <summary>A Med-MoE folder whose keys do not match its config is refused with every problem listed.</summary>
public class MedMoeFolderTests
{
    [Fact]
    public void CorruptedFolder_ListsExtraMissingAndMisshapenTensors()
    {
        string src = TestPaths.Fixture("adapters", "medmoe_stablelm");
        string dir = Path.Combine(Path.GetTempPath(), $"medvl-medmoe-bad-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            File.Copy(Path.Combine(src, "config.json"), Path.Combine(dir, "config.json"));
            var tensors = new List<MedVL.Formats.SafetensorsTensor>();
            using var st = MedVL.Formats.SafetensorsFile.Open(Path.Combine(src, "model.safetensors")); // open while writing
                foreach (var (name, e) in st.Tensors)
                {
                    if (name == "model.layers.2.mlp.deepspeed_moe.experts.deepspeed_experts.3.up_proj.weight") continue; // missing expert tensor
                    if (name == "model.layers.0.mlp.deepspeed_moe.gate.wg.weight")
                    {
                        tensors.Add(MedVL.Formats.SafetensorsTensor.FromFloat32(name, new float[5 * e.Shape[1]], [5, e.Shape[1]])); // 5 experts ≠ 4
                        continue;
                    }
                    tensors.Add(MedVL.Formats.SafetensorsTensor.From(e));
                }
            tensors.Add(MedVL.Formats.SafetensorsTensor.FromFloat32("model.layers.0.mlp.deepspeed_moe.experts.deepspeed_experts.4.up_proj.weight", new float[4], [2, 2]));
            MedVL.Formats.SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
            var e2 = Assert.ThrowsAny<IOException>(() => AutoModelForCausalLM.FromPretrained(dir));
            Assert.Contains("deepspeed_experts.3.up_proj.weight", e2.Message);
            Assert.Contains("deepspeed_experts.4.up_proj.weight", e2.Message);
            Assert.Contains("gate.wg.weight", e2.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
