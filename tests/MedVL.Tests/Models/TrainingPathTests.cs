using MedVL.Autograd;
using MedVL.Formats;
using MedVL.Models;
using MedVL.Models.Config;
using MedVL.Tensors;
using static MedVL.Tests.Models.DecoderParityTests;

namespace MedVL.Tests.Models;

/// <summary>The same layer code under autograd (the path adapters will train through) and load-time weight checks.</summary>
public class TrainingPathTests
{
    private static float Loss(CausalLM model, float[] embeds, int t, int[] targets)
    {
        using var _ = GradMode.NoGrad();
        using var e = Tensor.FromArray(embeds, 1, t, model.HiddenSize);
        using var logits = model.ForwardEmbeds(e);
        using var flat = logits.Reshape(t, model.VocabSize);
        using var tg = Tensor.FromArray(targets, t);
        using var l = MedVL.Autograd.Ops.CrossEntropy(flat, tg);
        return l.ToFloatArray()[0];
    }

    [Theory]
    [InlineData("phi3")]
    [InlineData("stablelm")]
    [InlineData("phi2")]
    public void GradientThroughTheDecoder_MatchesCentralDifferences(string folder)
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx(folder));
        var ids = Ids(folder);
        int t = ids.Length;
        float[] embeds;
        using (GradMode.NoGrad())
        using (var e = model.EmbedTokens(Tensor.FromArray(ids, 1, t))) embeds = e.ToFloatArray();
        int[] targets = ids.Skip(1).Append(5).ToArray();

        using var x = Tensor.FromArray(embeds, 1, t, model.HiddenSize);
        x.RequiresGrad = true;
        using (var logits = model.ForwardEmbeds(x))
        using (var flat = MedVL.Autograd.Ops.Reshape(logits, t, model.VocabSize))
        using (var tg = Tensor.FromArray(targets, t))
        using (var loss = MedVL.Autograd.Ops.CrossEntropy(flat, tg))
            loss.Backward();
        Assert.NotNull(x.Grad);
        var grad = x.Grad!.ToFloatArray();
        double norm = Math.Sqrt(grad.Sum(g => (double)g * g));
        Assert.True(norm > 1e-4, $"gradient norm {norm}");

        // Central differences in float32 on a few coordinates spread over positions (earlier positions influence later
        // ones only through attention, so this checks the attention backward as well).
        const float h = 1e-2f;
        foreach (int idx in new[] { 0, embeds.Length / 3 + 1, embeds.Length / 2 + 7, embeds.Length - 2 })
        {
            var p = (float[])embeds.Clone(); p[idx] += h;
            var m = (float[])embeds.Clone(); m[idx] -= h;
            double numeric = (Loss(model, p, t, targets) - Loss(model, m, t, targets)) / (2 * h);
            Assert.True(Math.Abs(numeric - grad[idx]) <= 2e-3 + 2e-2 * Math.Abs(numeric),
                $"{folder} d loss / d embeds[{idx}]: autograd {grad[idx]}, central difference {numeric}");
        }
        x.Grad.Dispose();
    }

    [Fact]
    public void FrozenBf16Weights_TrainableInputs_NoCacheNeeded()
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx("qwen2"));
        Assert.Equal(DType.BF16, model.EmbedTokensWeight.DType); // mapped, not widened at load
        using var x = Tensor.Full(0.1f, 1, 3, model.HiddenSize);
        x.RequiresGrad = true;
        using (var logits = model.ForwardEmbeds(x))
        using (var s = MedVL.Autograd.Ops.Sum(logits))
            s.Backward();
        Assert.Equal(x.ShapeArray(), x.Grad!.ShapeArray());
        Assert.Null(model.EmbedTokensWeight.Grad);
        x.Grad.Dispose();
    }

    [Fact]
    public void BrokenCheckpoint_ReportsEveryProblemAtOnce()
    {
        var dir = Path.Combine(Path.GetTempPath(), "medvl-broken-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.Copy(Fx("phi3", "config.json"), Path.Combine(dir, "config.json"));
            using (var st = SafetensorsFile.Open(Fx("phi3", "model.safetensors")))
            {
                var tensors = new List<SafetensorsTensor>();
                foreach (var (name, e) in st.Tensors)
                {
                    if (name == "model.norm.weight") continue; // missing
                    if (name == "model.layers.1.mlp.down_proj.weight")
                    {
                        tensors.Add(SafetensorsTensor.FromFloat32(name, new float[60 * 71], [60, 71])); // wrong shape
                        continue;
                    }
                    tensors.Add(SafetensorsTensor.From(e));
                }
                tensors.Add(SafetensorsTensor.FromFloat32("model.layers.0.extra.weight", new float[4], [4])); // unexpected
                SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
            }
            var ex = Assert.Throws<ModelConfigException>(() => AutoModelForCausalLM.FromPretrained(dir));
            Assert.Contains("missing: model.norm.weight", ex.Message);
            Assert.Contains("unexpected: model.layers.0.extra.weight", ex.Message);
            Assert.Contains("wrong shape: model.layers.1.mlp.down_proj.weight expected [60, 72] got [60, 71]", ex.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ModelFamilyMismatch_And_NonDecoder_AreClearErrors()
    {
        var e = Assert.Throws<ModelConfigException>(() => LlamaForCausalLM.FromPretrained(Fx("phi3")));
        Assert.Contains("not Llama", e.Message);
        Assert.Throws<ModelConfigException>(() => AutoModelForCausalLM.FromPretrained(Fx("clip")));
        Assert.IsType<Phi3ForCausalLM>(Phi3ForCausalLM.FromPretrained(Fx("phi4")));
    }
}
