using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Tensors;
using static MedVL.Tests.Models.DecoderParityTests;

namespace MedVL.Tests.Models;

/// <summary>LLaVA splice (HealthGPT-like llava_phi over Phi-3, Med-MoE-like moe_llava_stablelm) against reference.py.</summary>
public class LlavaParityTests
{
    [Fact]
    public void LlavaPhi3_Features_Embeds_Logits_MatchTorch()
    {
        using var model = LlavaForCausalLM.FromPretrained(Fx("llava_phi3")); // vision tower "../clip" resolved next to it
        Assert.NotNull(model.VisionTower);
        var ids = Ids("llava_phi3");
        Assert.Equal(LlavaForCausalLM.ImageTokenIndex, ids[3]);
        using var _ = GradMode.NoGrad();
        using var px = ClipParityTests.Pixels();
        using var feats = model.EncodeImages(px);
        Assert.Equal([1, 16, 60], feats.ShapeArray());
        AssertClose(Expected("llava_phi3", "expected_image_features.npy"), feats.ToFloatArray(), 1e-4f, "projected image features");
        using var inputs = model.PrepareInputsLabelsForMultimodal(ids, feats);
        Assert.Equal(22, inputs.Length);
        AssertClose(Expected("llava_phi3", "expected_inputs_embeds.npy"), inputs.InputsEmbeds.ToFloatArray(), 1e-5f, "inputs_embeds");
        using var logits = model.Forward(ids, px);
        Assert.Equal([1, 22, 300], logits.ShapeArray());
        AssertClose(Expected("llava_phi3", "expected_logits.npy"), logits.ToFloatArray(), 1e-4f, "llava logits");
    }

    [Fact]
    public void LlavaPhi3_CachedDecodeAfterImagePrefill_MatchesFullRun()
    {
        using var model = LlavaForCausalLM.FromPretrained(Fx("llava_phi3"));
        var ids = Ids("llava_phi3");
        using var _ = GradMode.NoGrad();
        using var px = ClipParityTests.Pixels();
        using var cache = model.LanguageModel.CreateCache();
        using var a = model.Forward(ids.AsSpan(0, 5), px, cache); // 3 text + 16 image + 1 text = 20 rows
        Assert.Equal(20, cache.Length);
        using var b = model.Forward(ids.AsSpan(5), null, cache);
        AssertClose(Expected("llava_phi3", "expected_logits.npy"), a.ToFloatArray().Concat(b.ToFloatArray()).ToArray(), 1e-4f, "cached llava logits");
    }

    [Fact]
    public void Labels_AreIgnoredOnImageRows()
    {
        using var model = LlavaForCausalLM.FromPretrained(Fx("llava_phi3"));
        using var _ = GradMode.NoGrad();
        using var feats = Tensor.Zeros(2, 4, 60);
        int[] ids = [1, LlavaForCausalLM.ImageTokenIndex, 5, LlavaForCausalLM.ImageTokenIndex, 6];
        int[] labels = [-100, -100, 5, -100, 6];
        using var r = model.PrepareInputsLabelsForMultimodal(ids, feats, labels);
        Assert.Equal(3 + 8, r.Length);
        Assert.Equal([-100, -100, -100, -100, -100, 5, -100, -100, -100, -100, 6], r.Labels!);
        Assert.Equal(8, r.ImageTokenCount);
        var e = Assert.Throws<ArgumentException>(() => model.PrepareInputsLabelsForMultimodal(ids, null));
        Assert.Contains("2 image token(s)", e.Message);
    }

    [Fact]
    public void MedMoeStableLm_Features_Routes_Logits_MatchTorch()
    {
        using var model = LlavaForCausalLM.FromPretrained(Fx("medmoe_stablelm"));
        var ids = Ids("medmoe_stablelm");
        using var _ = GradMode.NoGrad();
        using var px = ClipParityTests.Pixels();
        using var feats = model.EncodeImages(px);
        AssertClose(Expected("medmoe_stablelm", "expected_image_features.npy"), feats.ToFloatArray(), 1e-4f, "medmoe image features");
        Assert.IsType<MoeMlp>(model.LanguageModel.Layers[0].Mlp);
        using var trace = new MoeRoutingTrace();
        using var logits = model.Forward(ids, px, options: new DecoderForwardOptions { Routing = trace });
        var routes = trace.Layers.Single(l => l.Layer == 0).Routes;
        AssertClose(Expected("medmoe_stablelm", "expected_logits.npy"), logits.ToFloatArray(), 1e-4f, "medmoe logits");
        var expectedRoutes = MedVL.Formats.Npy.Read(Fx("medmoe_stablelm", "expected_routes.npy")).ToInt64().Select(x => (int)x).ToArray();
        Assert.Equal(expectedRoutes, routes);
    }
}
