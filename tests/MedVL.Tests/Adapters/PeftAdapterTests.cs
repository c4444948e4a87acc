using MedVL.Adapters;
using MedVL.Adapters.Config;
using MedVL.Autograd;
using MedVL.Formats;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Tensors;
using static MedVL.Tests.Models.DecoderParityTests;

namespace MedVL.Tests.Adapters;

/// <summary>PEFT LoRA / rsLoRA folders and MoELoRA files against tools/adapters/reference.py: logits, gradients, merge, export.</summary>
public class PeftAdapterTests
{
    private static string Ax(params string[] p) => AdapterLayerTests.Fx(p);

    private static (int[] Ids, int[] Labels) Inputs(string folder) =>
        (Npy.Read(Ax(folder, "input_ids.npy")).ToInt64().Select(x => (int)x).ToArray(),
         Npy.Read(Ax(folder, "labels.npy")).ToInt64().Select(x => (int)x).ToArray());

    [Theory]
    [InlineData("peft_lora_qwen2", "qwen2")]
    [InlineData("peft_rslora_phi3", "phi3")]
    [InlineData("moelora_phi3", "phi3")]
    public void LogitsAndGradients_MatchTorch(string folder, string baseModel)
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx(baseModel));
        var config = PeftAdapters.Load(model, Ax(folder), "a");
        Assert.Equal(folder.StartsWith("moelora") ? AdapterKind.MoELora : AdapterKind.Lora, config.Kind);
        var (ids, labels) = Inputs(folder);
        using var logits = model.Forward(ids, options: new DecoderForwardOptions { Adapters = new AdapterSelection(["a"]) });
        AssertClose(Npy.Read(Ax(folder, "expected_logits.npy")).ToFloat32(), logits.ToFloatArray(), 1e-4f, $"{folder} logits");
        using (var loss = HealthGptPluginTests.CausalLmLoss(logits, labels)) loss.Backward();
        HealthGptPluginTests.AssertGrads(Ax(folder, "expected_grads.safetensors"), AdapterTargets.Parameters(model, "a"), "base_model.model.", 1e-4f);
    }

    [Theory]
    [InlineData("peft_lora_qwen2", "qwen2")]
    [InlineData("peft_rslora_phi3", "phi3")]
    public void MergedWeightsAndLogits_MatchTorch_AndUnmergeRestores(string folder, string baseModel)
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx(baseModel));
        PeftAdapters.Load(model, Ax(folder), "a");
        var merged = PeftAdapters.MergedWeights(model, "a");
        using (var st = SafetensorsFile.Open(Ax(folder, "expected_merged_weights.safetensors")))
        {
            Assert.Equal(st.Tensors.Keys.Order(), merged.Keys.Order());
            foreach (var (k, e) in st.Tensors)
            {
                using var exp = e.ToTensor();
                AssertClose(exp.ToFloatArray(), merged[k].ToFloatArray(), 1e-5f, k);
            }
        }
        foreach (var t in merged.Values) t.Dispose();
        var (ids, _) = Inputs(folder);
        using var g = GradMode.NoGrad();
        var sel = new DecoderForwardOptions { Adapters = new AdapterSelection(["a"]) };
        using var unmergedLogits = model.Forward(ids, options: sel);
        using (PeftAdapters.Merge(model, "a"))
        using (var m = model.Forward(ids))
            AssertClose(Npy.Read(Ax(folder, "expected_logits_merged.npy")).ToFloat32(), m.ToFloatArray(), 1e-4f, "merged logits");
        using var after = model.Forward(ids, options: sel);
        Assert.Equal(unmergedLogits.ToFloatArray(), after.ToFloatArray());
    }

    [Theory]
    [InlineData("peft_lora_qwen2", "qwen2")]
    [InlineData("moelora_phi3", "phi3")]
    public void Export_RoundTrips(string folder, string baseModel)
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx(baseModel));
        var config = PeftAdapters.Load(model, Ax(folder), "a");
        string dir = Path.Combine(Path.GetTempPath(), $"medvl-peft-{Guid.NewGuid():N}");
        try
        {
            PeftAdapters.Save(model, "a", dir, config);
            var back = PeftLoraConfig.Load(dir);
            Assert.Equal(config.R, back.R);
            Assert.Equal(config.LoraAlpha, back.LoraAlpha);
            Assert.Equal(config.RankPattern, back.RankPattern);
            Assert.Equal(config.AlphaPattern, back.AlphaPattern);
            Assert.Equal(config.Experts, back.Experts);
            using (var a = SafetensorsFile.Open(Ax(folder, "adapter_model.safetensors")))
            using (var b = SafetensorsFile.Open(Path.Combine(dir, "adapter_model.safetensors")))
            {
                Assert.Equal(a.Tensors.Keys.Order(), b.Tensors.Keys.Order());
                foreach (var (k, e) in a.Tensors)
                {
                    using var x = e.ToTensor();
                    using var y = b.Tensors[k].ToTensor();
                    Assert.Equal(x.ToFloatArray(), y.ToFloatArray());
                }
            }
            using var model2 = AutoModelForCausalLM.FromPretrained(Fx(baseModel));
            PeftAdapters.Load(model2, dir, "b");
            var (ids, _) = Inputs(folder);
            using var g = GradMode.NoGrad();
            using var l1 = model.Forward(ids, options: new DecoderForwardOptions { Adapters = new AdapterSelection(["a"]) });
            using var l2 = model2.Forward(ids, options: new DecoderForwardOptions { Adapters = new AdapterSelection(["b"]) });
            Assert.Equal(l1.ToFloatArray(), l2.ToFloatArray());
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void AdapterForAnotherModel_ReportsEveryMismatch()
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx("phi3"));
        // Qwen2's q/k/v/gate/up modules are not targets Phi-3 has; its o_proj/down_proj shapes differ.
        var e = Assert.Throws<AdapterFormatException>(() => PeftAdapters.Load(model, Ax("peft_lora_qwen2"), "a"));
        Assert.True(e.Problems.Count >= 10, e.Message);
        Assert.Empty(AdapterTargets.Adapted(model));
    }
}
