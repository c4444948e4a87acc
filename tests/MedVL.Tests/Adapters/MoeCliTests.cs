using System.Text.Json;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Tensors;
using MedVL.Tests.Models;
using MedVL.Text;
using MedVL.Text.Templates;
using MedVL.Vision.Codecs;
using MedVL.Vision.Preprocessing;

namespace MedVL.Tests.Adapters;

/// <summary>`medvl route` and `medvl params` on tiny Med-MoE folders.</summary>
public class MoeCliTests
{
    [Fact]
    public void Route_WritesEveryMoeLayerTokenAndChoice_AsTheLibraryRoutes()
    {
        using var tiny = new TinyModelFolder("medmoe_stablelm", withClip: true);
        string outPath = Path.Combine(tiny.Root, "routes.jsonl");
        var (code, stdout, stderr) = CliRunner.Run("route", "--model", tiny.Dir, "--image", TowerCliTests.PngFixture, "--question", "Is there a lesion?", "--output", outPath);
        Assert.True(code == 0, stderr);
        var lines = File.ReadAllLines(outPath).Select(l => JsonDocument.Parse(l).RootElement).ToArray();

        using var model = LlavaForCausalLM.FromPretrained(tiny.Dir);
        var tok = Tokenizer.FromDirectory(tiny.Dir);
        var ids = tok.TokenizeWithImage(ConversationTemplates.Get("stablelm").RenderQuestion("Is there a lesion?", hasImage: true));
        var proc = ClipPreprocessorConfig.Load(Path.Combine(tiny.Root, "clip", "preprocessor_config.json"), padToSquare: true);
        using var px = Tensor.FromArray(proc.Preprocess(ImageLoader.Load(TowerCliTests.PngFixture)), 1, 3, 28, 28);
        using var trace = new MoeRoutingTrace();
        using (GradMode.NoGrad()) using (model.Forward(ids, px, options: new DecoderForwardOptions { Routing = trace })) { }
        int tokens = trace.Layers[0].Tokens;
        Assert.Equal(trace.Layers.Count * tokens, lines.Length);
        Assert.Equal(trace.Layers.SelectMany(l => l.Routes), lines.Select(l => l.GetProperty("expert").GetInt32()));
        Assert.Contains(lines, l => l.GetProperty("kind").GetString() == "image");
        Assert.Equal(model.VisionTower!.NumPatches, lines.Count(l => l.GetProperty("layer").GetInt32() == 0 && l.GetProperty("kind").GetString() == "image"));
    }

    [Fact]
    public void Params_CountsExpertsAsTopKOfE()
    {
        var (code, stdout, stderr) = CliRunner.Run("params", "--model", AdapterLayerTests.Fx("medmoe_stablelm"), "--json");
        Assert.True(code == 0, stderr);
        var j = JsonDocument.Parse(stdout).RootElement;
        var rows = j.GetProperty("components").EnumerateArray().ToDictionary(r => r.GetProperty("component").GetString()!, r => (r.GetProperty("total").GetInt64(), r.GetProperty("activated").GetInt64()));
        var (experts, activeExperts) = rows["moe experts"];
        Assert.Equal(experts / 4, activeExperts); // top-1 of 4
        Assert.Equal(rows["meta expert"].Item1, rows["meta expert"].Item2);
        Assert.Equal(j.GetProperty("total").GetInt64() - experts + activeExperts, j.GetProperty("activated").GetInt64());
        Assert.True(j.GetProperty("vision_tower_counted").GetBoolean()); // mm_image_tower ../../models/clip resolves
        Assert.True(rows["vision tower"].Item1 > 0);
    }
}
