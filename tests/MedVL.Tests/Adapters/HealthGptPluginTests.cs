using System.Text.Json;
using MedVL.Adapters;
using MedVL.Adapters.Config;
using MedVL.Autograd;
using MedVL.Formats;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Tensors;
using AOps = MedVL.Autograd.Ops;
using static MedVL.Tests.Models.DecoderParityTests;

namespace MedVL.Tests.Adapters;

/// <summary>
/// HealthGPT's released plugin files (torch pickles written by tools/adapters/reference.py on the tiny Phi-3 and Qwen2
/// checkpoints): logits of each task, the paper-scaling option, the vocabulary extension, the fusion layer, and the
/// gradient of every H-LoRA parameter under the causal-LM loss — all against torch.
/// </summary>
public class HealthGptPluginTests
{
    private static string Hx(params string[] p) => AdapterLayerTests.Fx(p);

    private static (int[] Ids, int[] Labels) Inputs(string folder) =>
        (Npy.Read(Hx(folder, "input_ids.npy")).ToInt64().Select(x => (int)x).ToArray(),
         Npy.Read(Hx(folder, "labels.npy")).ToInt64().Select(x => (int)x).ToArray());

    /// <summary>transformers' causal-LM loss: logits[:-1] against labels[1:], mean over labels ≠ −100.</summary>
    internal static Tensor CausalLmLoss(Tensor logits, int[] labels)
    {
        int t = labels.Length, v = logits.Size(-1);
        using var flat = AOps.Reshape(logits, t, v);
        using var head = flat.Slice(0, 0, t - 1);
        using var targets = Tensor.FromArray(labels.Skip(1).Select(l => (long)l).ToArray(), t - 1);
        return AOps.CrossEntropy(head, targets);
    }

    internal static void AssertGrads(string file, IEnumerable<(string Name, Tensor Tensor)> parameters, string prefix, float tol)
    {
        using var st = SafetensorsFile.Open(file);
        var seen = new HashSet<string>();
        foreach (var (name, t) in parameters)
        {
            string key = prefix + name;
            Assert.True(st.Tensors.TryGetValue(key, out var e), $"{key} has no expected gradient");
            using var exp = e!.ToTensor();
            // A parameter the graph never reached (an MoE expert that got no token) has no gradient: torch's is zero.
            var actual = t.Grad?.ToFloatArray() ?? new float[exp.Numel];
            AssertClose(exp.ToFloatArray(), actual, tol, $"grad {key}");
            seen.Add(key);
        }
        Assert.Equal(st.Tensors.Count, seen.Count);
    }

    private static HealthGptPluginOptions Options(string task, bool paper = false) => task == "com"
        ? new() { Name = "comprehension", TokenizerLength = 298, VqIndexTokens = 16, PaperScaling = paper }
        : new() { Name = "generation", VisionSelectLayer = 1, TokenizerLength = 298, VqIndexTokens = 16, PaperScaling = paper,
                  FusionLayerPath = Hx("healthgpt_phi3", "fusion_layer_weights.bin") };

    [Theory]
    [InlineData("com")]
    [InlineData("gen")]
    public void Phi3Plugin_LogitsAndGradients_MatchTorch(string task)
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx("phi3"));
        using var plugin = HealthGptPlugin.Load(model, Hx("healthgpt_phi3", $"{task}_hlora_weights.bin"), Options(task));
        Assert.Equal(task == "com" ? 8 : 16, plugin.Settings.RankTotal);
        Assert.Equal(4, plugin.Settings.Experts);
        Assert.Equal(8.0, plugin.Settings.Scaling); // α/r·k = 2r/r·4
        Assert.Equal(8, plugin.Modules.Count);      // 2 layers × qkv, o, gate_up, down
        Assert.NotNull(plugin.Projector);
        var (ids, labels) = Inputs("healthgpt_phi3");
        var opts = new DecoderForwardOptions { Adapters = plugin.Selection() };
        using var logits = model.Forward(ids, options: opts);
        Assert.Equal(317, logits.Size(-1));
        AssertClose(Npy.Read(Hx("healthgpt_phi3", $"expected_logits_{task}.npy")).ToFloat32(), logits.ToFloatArray(), 1e-4f, $"{task} logits");
        using (var loss = CausalLmLoss(logits, labels))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Hx("healthgpt_phi3", "fixture.json")));
            double expectedLoss = doc.RootElement.GetProperty("plugins").GetProperty(task).GetProperty("loss").GetDouble();
            Assert.Equal(expectedLoss, loss.ToFloatArray()[0], 4);
            loss.Backward();
        }
        AssertGrads(Hx("healthgpt_phi3", $"expected_grads_{task}.safetensors"), AdapterTargets.Parameters(model, plugin.Name), "base_model.model.", 1e-4f);
    }

    [Theory]
    [InlineData("com")]
    [InlineData("gen")]
    public void PaperScalingOption_MatchesTorch(string task)
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx("phi3"));
        using var plugin = HealthGptPlugin.Load(model, Hx("healthgpt_phi3", $"{task}_hlora_weights.bin"), Options(task, paper: true));
        Assert.Equal(32.0, plugin.Settings.PaperScaling);
        var (ids, _) = Inputs("healthgpt_phi3");
        using var _g = GradMode.NoGrad();
        using var logits = model.Forward(ids, options: new DecoderForwardOptions { Adapters = plugin.Selection() });
        AssertClose(Npy.Read(Hx("healthgpt_phi3", $"expected_logits_{task}_paper_scaling.npy")).ToFloat32(), logits.ToFloatArray(), 1e-4f, "paper scaling");
    }

    [Fact]
    public void VocabularyExtension_NewRowsAreTheMeanOfTheOldOnes()
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx("phi3"));
        var tokens = VocabularyExtension.VqTokens(16);
        Assert.Equal(19, tokens.Count);
        Assert.Equal(["<start_index>", "<idx_0>"], tokens.Take(2));
        Assert.Equal(["<idx_15>", "<end_index>", "<pixel_newline>"], tokens.Skip(16));
        var (e, h) = VocabularyExtension.Extend(model, 298, tokens.Count);
        using (e) using (h)
        {
            AssertClose(Npy.Read(Hx("healthgpt_phi3", "expected_extended_embed_tokens.npy")).ToFloat32(), e.ToFloatArray(), 1e-6f, "embed_tokens");
            AssertClose(Npy.Read(Hx("healthgpt_phi3", "expected_extended_lm_head.npy")).ToFloat32(), h.ToFloatArray(), 1e-6f, "lm_head");
        }
    }

    [Fact]
    public async Task TwoPluginsOnOneModel_ConcurrentRequestsEqualSequentialOnes()
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx("phi3"));
        using var com = HealthGptPlugin.Load(model, Hx("healthgpt_phi3", "com_hlora_weights.bin"), Options("com"));
        using var gen = HealthGptPlugin.Load(model, Hx("healthgpt_phi3", "gen_hlora_weights.bin"), Options("gen"));
        var (ids, _) = Inputs("healthgpt_phi3");
        // Memory: both plugins wrap the same mapped base weights (no copies): every adapted layer's weight is the base tensor.
        foreach (var slot in AdapterTargets.Enumerate(model))
        {
            var a = Assert.IsType<AdaptedLinear>(slot.Get());
            Assert.Same(a.BaseLayer.Weight, a.Weight);
            Assert.Equal(["comprehension", "generation"], a.Adapters.Keys.Order());
        }
        Assert.Contains(model.NamedWeights(), w => ReferenceEquals(w.Tensor, ((AdaptedLinear)AdapterTargets.Enumerate(model).First().Get()).Weight));
        var baseIds = ids.Select(i => i % 298).ToArray(); // the VQ ids exist only in the plugins' extended vocabulary
        float[] Run(HealthGptPlugin? p)
        {
            using var _g = GradMode.NoGrad();
            using var l = model.Forward(p is null ? baseIds : ids, options: new DecoderForwardOptions { Adapters = p?.Selection() });
            return l.ToFloatArray();
        }
        var seqCom = Run(com); var seqGen = Run(gen); var seqBase = Run(null);
        AssertClose(Npy.Read(Hx("healthgpt_phi3", "expected_logits_com.npy")).ToFloat32(), seqCom, 1e-4f, "com with gen loaded");
        AssertClose(Npy.Read(Hx("healthgpt_phi3", "expected_logits_gen.npy")).ToFloat32(), seqGen, 1e-4f, "gen with com loaded");
        Assert.Equal(300 * ids.Length, seqBase.Length); // the base vocabulary when no plugin is selected
        Assert.Throws<ArgumentOutOfRangeException>(() => RunBase(ids)); // the VQ ids are unknown to the base vocabulary
        float[] RunBase(int[] x)
        {
            using var _g = GradMode.NoGrad();
            using var l = model.Forward(x);
            return l.ToFloatArray();
        }
        for (int round = 0; round < 3; round++)
        {
            var r = await Task.WhenAll(Task.Run(() => Run(com)), Task.Run(() => Run(gen)), Task.Run(() => Run(null)), Task.Run(() => Run(com)));
            Assert.Equal(seqCom, r[0]);
            Assert.Equal(seqGen, r[1]);
            Assert.Equal(seqBase, r[2]);
            Assert.Equal(seqCom, r[3]);
        }
    }

    [Fact]
    public void Qwen2Plugin_LogitsAndGradients_MatchTorch()
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx("qwen2"));
        using var plugin = HealthGptPlugin.Load(model, Hx("healthgpt_qwen2", "com_hlora_weights_QWEN_32B.bin"));
        Assert.Equal(["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"], plugin.Modules.Select(m => m[(m.LastIndexOf('.') + 1)..]).Distinct().Order());
        var (ids, labels) = Inputs("healthgpt_qwen2");
        using var logits = model.Forward(ids, options: new DecoderForwardOptions { Adapters = plugin.Selection() });
        AssertClose(Npy.Read(Hx("healthgpt_qwen2", "expected_logits_com.npy")).ToFloat32(), logits.ToFloatArray(), 1e-4f, "qwen2 logits");
        using (var loss = CausalLmLoss(logits, labels)) loss.Backward();
        AssertGrads(Hx("healthgpt_qwen2", "expected_grads_com.safetensors"), AdapterTargets.Parameters(model, plugin.Name), "base_model.model.", 1e-4f);
    }

    [Fact]
    public void UnmatchedKeys_AreAllListedInOneError()
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx("qwen2"));
        // The Phi-3 plugin's modules (qkv_proj, gate_up_proj) do not exist in Qwen2: every one is reported.
        var e = Assert.Throws<AdapterFormatException>(() => HealthGptPlugin.Load(model, Hx("healthgpt_phi3", "com_hlora_weights.bin")));
        Assert.Contains("qkv_proj", e.Message);
        Assert.Contains("gate_up_proj", e.Message);
        Assert.True(e.Problems.Count >= 12, $"{e.Problems.Count} problems: {e.Message}");
        Assert.Empty(AdapterTargets.Adapted(model)); // nothing attached on failure
    }

    [Fact]
    public void FreshPlugin_StartsAtTheBase_Trains_AndRoundTripsThroughSave()
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx("phi3"));
        int[] ids = [1, 17, 250, 3, 99];
        int[] labels = [-100, 17, 250, 3, 99];
        float[] baseLogits;
        using (GradMode.NoGrad()) using (var l = model.Forward(ids)) baseLogits = l.ToFloatArray();
        using var plugin = HealthGptPlugin.Create(model, new HLoraSettings(8, 16, 4), new HealthGptPluginOptions { Name = "comprehension" }, seed: 7);
        Assert.Equal(8, plugin.Modules.Count);
        var sel = new DecoderForwardOptions { Adapters = plugin.Selection() };
        using (GradMode.NoGrad()) using (var l = model.Forward(ids, options: sel))
            Assert.Equal(baseLogits, l.ToFloatArray()); // lora_B = 0
        var parameters = AdapterTargets.Parameters(model, "comprehension").Select(p => p.Tensor).ToArray();
        Assert.Equal(24, parameters.Length);
        using (var opt = new MedVL.Optim.AdamW(parameters, lr: 1e-2))
            for (int step = 0; step < 3; step++)
            {
                using var logits = model.Forward(ids, options: sel);
                using var loss = CausalLmLoss(logits, labels);
                opt.ZeroGrad();
                loss.Backward();
                opt.Step();
            }
        float[] trained;
        using (GradMode.NoGrad()) using (var l = model.Forward(ids, options: sel)) trained = l.ToFloatArray();
        Assert.NotEqual(baseLogits, trained);
        string path = Path.Combine(Path.GetTempPath(), $"medvl-plugin-{Guid.NewGuid():N}.safetensors");
        try
        {
            plugin.Save(model, path);
            using var model2 = AutoModelForCausalLM.FromPretrained(Fx("phi3"));
            using var back = HealthGptPlugin.Load(model2, path, new HealthGptPluginOptions { Name = "comprehension", Alpha = 16 });
            using var _g = GradMode.NoGrad();
            using var l2 = model2.Forward(ids, options: new DecoderForwardOptions { Adapters = back.Selection() });
            Assert.Equal(trained, l2.ToFloatArray());
        }
        finally { File.Delete(path); }
    }
}
