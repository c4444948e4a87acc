using System.Text.Json;
using System.Text.Json.Nodes;
using MedVL.Adapters;
using MedVL.Models.Config;

namespace MedVL.Tests.Adapters;

/// <summary>Parameter accounting against tools/adapters/reference.py's independent formula (accounting/expected_accounting.json).</summary>
public class ParameterAccountingTests
{
    private static string Ax(params string[] p) => AdapterLayerTests.Fx(p);

    /// <summary>A Med-MoE (or MoE-LLaVA) config over a released decoder config: MoE on every other layer, 4 experts.</summary>
    internal static string MedMoeFolder(JsonObject decoder, string modelType, int topK)
    {
        var moeCfg = JsonNode.Parse(File.ReadAllText(Ax("medmoe_stablelm", "config.json")))!.AsObject();
        foreach (var (k, v) in decoder) moeCfg[k] = v?.DeepClone();
        int layers = decoder["num_hidden_layers"]!.GetValue<int>();
        var idx = Enumerable.Range(0, layers).Where(i => i % 2 == 0).ToArray();
        moeCfg["model_type"] = modelType;
        moeCfg["mm_hidden_size"] = 1024;
        moeCfg["moe"] = new JsonObject
        {
            ["moe_enable"] = true, ["moe_mode"] = "sparse", ["moe_layers_idx"] = new JsonArray(idx.Select(i => (JsonNode?)i).ToArray()),
            ["num_experts"] = new JsonArray(idx.Select(_ => (JsonNode?)4).ToArray()), ["top_k_experts"] = topK, ["capacity_factor"] = 1.5,
            ["eval_capacity_factor"] = 2.0, ["min_capacity"] = 0, ["use_residual"] = false, ["router_aux_loss_coef"] = 0.0, ["ep_size"] = 1,
        };
        string dir = Path.Combine(Path.GetTempPath(), $"medvl-acct-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), moeCfg.ToJsonString());
        return dir;
    }

    private static ClipConfig ClipL14() => new(new ClipVisionConfig
    {
        HiddenSize = 1024, IntermediateSize = 4096, NumHiddenLayers = 24, NumAttentionHeads = 16, ImageSize = 336, PatchSize = 14,
    }, null, null);

    [Theory]
    [InlineData("medmoe_stablelm_2_1_6b", "stablelm", 1, true)]
    [InlineData("medmoe_phi2", "phi", 1, true)]
    [InlineData("moellava_stablelm_top2_no_meta", "stablelm", 2, false)]
    [InlineData("moellava_phi2_top2_no_meta", "phi", 2, false)]
    public void MedMoe_MatchesTheReferenceFormula(string key, string family, int topK, bool meta)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Ax("accounting", "expected_accounting.json")));
        var e = doc.RootElement.GetProperty(key);
        var decoder = family == "stablelm"
            ? JsonNode.Parse(File.ReadAllText(Ax("accounting", "stablelm-2-1_6b.arch.json")))!.AsObject()
            : JsonNode.Parse(File.ReadAllText(TestPaths.Fixture("models", "configs", "phi-2.config.json")))!.AsObject();
        decoder.Remove("model_type");
        string dir = MedMoeFolder(decoder, family == "stablelm" ? "moe_llava_stablelm" : "moe_llava_phi", topK);
        try
        {
            var b = ParameterAccounting.ForConfig(ModelConfigLoader.Load(dir), ClipL14(), metaExpert: meta);
            long vision = b.TotalOf("vision tower"), projector = b.TotalOf("projector");
            Assert.Equal(e.GetProperty("vision_tower").GetInt64(), vision);
            Assert.Equal(e.GetProperty("projector").GetInt64(), projector);
            Assert.Equal(e.GetProperty("router").GetInt64(), b.TotalOf("router"));
            Assert.Equal(e.GetProperty("llm_total").GetInt64(), b.Total - vision - projector);
            Assert.Equal(e.GetProperty("llm_activated").GetInt64(), b.Activated - vision - projector);
            Assert.Equal(e.GetProperty("total_with_vision").GetInt64(), b.Total);
            Assert.Equal(e.GetProperty("activated_with_vision").GetInt64(), b.Activated);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void PaperNumbers_2_06B_And_3_62B_Activated()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Ax("accounting", "expected_accounting.json")));
        Assert.Equal(2.06, Math.Round(doc.RootElement.GetProperty("medmoe_stablelm_2_1_6b").GetProperty("llm_activated").GetInt64() / 1e9, 2));
        Assert.Equal(3.62, Math.Round(doc.RootElement.GetProperty("medmoe_phi2").GetProperty("llm_activated").GetInt64() / 1e9, 2));
    }

    [Fact]
    public void AdapterFiles_CountTheirTensors()
    {
        var rows = ParameterAccounting.ForAdapter(Ax("healthgpt_phi3", "com_hlora_weights.bin"), "comprehension");
        // 2 layers × (qkv 60→180, o 60→60, gate_up 60→144, down 72→60): r·(in + out) + k·in with r 8, k 4.
        long expected = 2 * (8 * (60 + 180) + 4 * 60 + 8 * (60 + 60) + 4 * 60 + 8 * (60 + 144) + 4 * 60 + 8 * (72 + 60) + 4 * 72);
        Assert.Equal(expected, rows[0].Total);
        Assert.Equal(rows[0].Total, rows[0].Activated);
        Assert.Contains(rows, r => r.Component.Contains("projector") && r.Total > 0);
    }
}
