using MedVL.Models.Config;

namespace MedVL.Tests.Models;

public class ModelConfigTests
{
    private static string Fx(params string[] p) => TestPaths.Fixture(["models", .. p]);

    public static TheoryData<string> TinyFolders() =>
        ["phi3", "phi3_longrope", "phi4", "llama", "llama_tied", "qwen2", "stablelm", "phi2", "clip", "llava_phi3", "medmoe_stablelm"];

    [Theory]
    [MemberData(nameof(TinyFolders))]
    public void TinyFixture_WeightTableMatchesRealHeader(string folder)
    {
        // The safetensors files were written by tools/models/reference.py from the torch modules' state_dict, so the
        // header is the independent truth for names and shapes.
        var report = WeightChecker.CheckFolder(Fx(folder));
        Assert.True(report.Ok, report.Describe());
    }

    [Fact]
    public void Phi3Tiny_DerivedValues()
    {
        var c = ModelConfigLoader.Load(Fx("phi3"));
        Assert.Equal(ModelKind.Decoder, c.Kind);
        var d = c.RequireDecoder();
        Assert.Equal(DecoderFamily.Phi3, d.Family);
        Assert.Equal(12, d.HeadDim);
        Assert.Equal(12, d.RotaryDim);
        Assert.Equal(1, d.NRep);
        Assert.Equal(255, d.SlidingWindow);
        Assert.Equal(1e-5, d.NormEps);
        Assert.False(d.TieWordEmbeddings);
        Assert.Equal([290], d.EosTokenIds.ToArray());
        Assert.Equal(1.0, d.RopeAttentionScaling);
    }

    [Fact]
    public void Phi3LongRope_ScalingMatchesHfFormula()
    {
        var d = ModelConfigLoader.Load(Fx("phi3_longrope")).RequireDecoder();
        Assert.Equal("longrope", d.RopeScaling!.Kind);
        Assert.Equal(6, d.RopeScaling.ShortFactor!.Length);
        Assert.Equal(32, d.OriginalMaxPositionEmbeddings);
        // sqrt(1 + ln(256/32) / ln(32)) = sqrt(1 + 3 ln2 / 5 ln2) = sqrt(1.6)
        Assert.Equal(Math.Sqrt(1.6), d.RopeAttentionScaling, 12);
    }

    [Fact]
    public void Phi4Tiny_IsPhi3WithGqa()
    {
        var d = ModelConfigLoader.Load(Fx("phi4")).RequireDecoder();
        Assert.Equal(DecoderFamily.Phi3, d.Family);
        Assert.Equal((6, 2, 3, 10), (d.NumAttentionHeads!.Value, d.NumKeyValueHeads, d.NRep, d.HeadDim));
        Assert.Null(d.SlidingWindow);
        Assert.Equal(250000, d.RopeTheta);
    }

    [Fact]
    public void FamilyFlags_FollowHfModules()
    {
        var qwen = ModelConfigLoader.Load(Fx("qwen2")).RequireDecoder();
        Assert.True(qwen.QkvBias);
        Assert.False(qwen.OutputBias);
        Assert.Null(qwen.SlidingWindow); // use_sliding_window false
        Assert.Equal(1e-6, qwen.NormEps);
        Assert.Equal("bfloat16", qwen.TorchDtype);

        var st = ModelConfigLoader.Load(Fx("stablelm")).RequireDecoder();
        Assert.Equal((24, 6), (st.HeadDim, st.RotaryDim));
        Assert.True(st.UsesLayerNorm && st.QkvBias && !st.ParallelResidual && !st.OutputBias);

        var phi = ModelConfigLoader.Load(Fx("phi2")).RequireDecoder();
        Assert.Equal((20, 8), (phi.HeadDim, phi.RotaryDim));
        Assert.True(phi.ParallelResidual && phi.LmHeadBias && phi.QkvBias && phi.OutputBias && phi.MlpBias);
        Assert.Equal("gelu_new", phi.HiddenAct);

        var tied = ModelConfigLoader.Load(Fx("llama_tied")).RequireDecoder();
        Assert.True(tied.TieWordEmbeddings);
        Assert.DoesNotContain(WeightTable.Decoder(tied), s => s.Name == "lm_head.weight" && s.Role == TensorRole.Required);
    }

    [Fact]
    public void ClipTiny_FullClipModelLoadsAsVisionTower()
    {
        var c = ModelConfigLoader.Load(Fx("clip"));
        Assert.Equal(ModelKind.ClipVision, c.Kind);
        var clip = c.RequireClip();
        Assert.True(clip.IsFullClipModel);
        Assert.Equal((4, 16, 17, 12), (clip.Vision.GridSize, clip.Vision.NumPatches, clip.Vision.NumPositions, clip.Vision.HeadDim));
        var report = WeightChecker.CheckFolder(Fx("clip"));
        Assert.Contains("text_model.embeddings.token_embedding.weight", report.Skipped);
        Assert.Contains("logit_scale", report.Skipped);
    }

    [Fact]
    public void LlavaPhi3_MultimodalSettings()
    {
        var c = ModelConfigLoader.Load(Fx("llava_phi3"));
        Assert.Equal(ModelKind.Llava, c.Kind);
        Assert.Equal(DecoderFamily.Phi3, c.RequireDecoder().Family);
        var mm = c.Multimodal!;
        Assert.Equal(("mlp2x_gelu", 2, -2, "patch", 48), (mm.ProjectorType, mm.ProjectorDepth, mm.SelectLayer, mm.SelectFeature, mm.MmHiddenSize!.Value));
        Assert.Equal("model.mm_projector.", mm.ProjectorPrefix);
    }

    [Fact]
    public void MedMoeStableLm_MoeBlockAndProjectorPrefix()
    {
        var c = ModelConfigLoader.Load(Fx("medmoe_stablelm"));
        Assert.Equal(DecoderFamily.StableLm, c.RequireDecoder().Family);
        Assert.Equal("model.mm_projector.image_spatial_proj.", c.Multimodal!.ProjectorPrefix);
        Assert.Equal([0], c.Moe!.MoeLayersIdx!);
        Assert.Equal(1, c.Moe.TopKExperts);
        var table = WeightTable.For(c);
        Assert.Contains(table, s => s.Name == "model.layers.0.mlp.deepspeed_moe.experts.deepspeed_experts.3.down_proj.weight");
        Assert.DoesNotContain(table, s => s.Name == "model.layers.0.mlp.gate_proj.weight");
        Assert.Contains(table, s => s.Name == "model.layers.1.mlp.gate_proj.weight");
    }

    public static TheoryData<string> RealConfigFiles() =>
        new(Directory.GetFiles(Fx("configs"), "*.config.json").Select(Path.GetFileName)!);

    [Theory]
    [MemberData(nameof(RealConfigFiles))]
    public void RealConfigs_AllLoad(string file)
    {
        var c = ModelConfigLoader.Load(Fx("configs", file));
        Assert.NotEmpty(WeightTable.For(c));
    }

    [Fact]
    public void RealPhi3Mini4k_MatchesHealthGptNotes()
    {
        // healthgpt.md section 3.1: 32 layers, hidden 3072, 32 heads, head_dim 96, vocab 32064, sliding window 2047.
        var d = ModelConfigLoader.Load(Fx("configs", "Phi-3-mini-4k-instruct.config.json")).RequireDecoder();
        Assert.Equal((32, 3072, 32, 32, 96, 32064, 8192), (d.NumHiddenLayers!.Value, d.HiddenSize!.Value, d.NumAttentionHeads!.Value, d.NumKeyValueHeads, d.HeadDim, d.VocabSize!.Value, d.IntermediateSize!.Value));
        Assert.Equal(2047, d.SlidingWindow);
        Assert.Equal(96, d.RotaryDim);
        Assert.Equal([32000], d.EosTokenIds.ToArray());
        var table = WeightTable.Decoder(d);
        Assert.Equal([9216, 3072], table.Single(s => s.Name == "model.layers.31.self_attn.qkv_proj.weight").Shape!);
        Assert.Equal([16384, 3072], table.Single(s => s.Name == "model.layers.0.mlp.gate_up_proj.weight").Shape!);
    }

    [Fact]
    public void RealPhi2_MatchesMedMoeNotes()
    {
        // med-moe.md section 2.3: 32 layers, hidden 2560, FFN 10240, 32 heads, partial rotary 0.4, vocab 51200.
        var d = ModelConfigLoader.Load(Fx("configs", "phi-2.config.json")).RequireDecoder();
        Assert.Equal(DecoderFamily.Phi, d.Family);
        Assert.Equal((32, 2560, 10240, 80, 32, 51200), (d.NumHiddenLayers!.Value, d.HiddenSize!.Value, d.IntermediateSize!.Value, d.HeadDim, d.RotaryDim, d.VocabSize!.Value));
    }

    [Fact]
    public void DocNumbers_ClipL14At336_Gives576Patches()
    {
        // Not the released file (not found, see configs/README.md): CLIPModel JSON built from healthgpt.md section 2.
        const string json = """
        {"model_type": "clip", "projection_dim": 768,
         "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12},
         "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 24,
                           "image_size": 336, "patch_size": 14, "projection_dim": 768}}
        """;
        var clip = ModelConfigLoader.Parse(json, "doc:clip-vit-large-patch14-336").RequireClip();
        Assert.Equal((24, 576, 577, 64), (clip.Vision.GridSize, clip.Vision.NumPatches, clip.Vision.NumPositions, clip.Vision.HeadDim));
        var t = WeightTable.Clip(clip);
        Assert.Equal([1024, 3, 14, 14], t.Single(s => s.Name == "vision_model.embeddings.patch_embedding.weight").Shape!);
        Assert.Equal(24 * 16, t.Count(s => s.Name.StartsWith("vision_model.encoder.layers.", StringComparison.Ordinal)));
    }

    [Fact]
    public void DocNumbers_StableLm2_1_6B_EpochNames()
    {
        // Med-MoE's StableLMEpoch config spells partial_rotary_factor rope_pct and layer_norm_eps norm_eps.
        const string json = """
        {"model_type": "stablelm_epoch", "vocab_size": 100352, "hidden_size": 2048, "intermediate_size": 5632,
         "num_hidden_layers": 24, "num_attention_heads": 32, "num_key_value_heads": 32, "rope_pct": 0.25,
         "norm_eps": 1e-05, "use_qkv_bias": true, "max_position_embeddings": 4096, "rope_theta": 10000}
        """;
        var d = ModelConfigLoader.Parse(json, "doc:stablelm-2-1_6b").RequireDecoder();
        Assert.Equal((64, 16, 1e-5, true), (d.HeadDim, d.RotaryDim, d.NormEps, d.QkvBias));
    }

    [Fact]
    public void LlavaPhi_DisambiguatesHealthGptFromMoeLlava()
    {
        const string phi3Based = """{"model_type": "llava_phi", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "rms_norm_eps": 1e-5, "mm_hidden_size": 4, "mm_projector_type": "mlp2x_gelu"}""";
        const string phi2Based = """{"model_type": "llava_phi", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "layer_norm_eps": 1e-5, "partial_rotary_factor": 0.5, "mm_hidden_size": 4}""";
        Assert.Equal(DecoderFamily.Phi3, ModelConfigLoader.Parse(phi3Based, "a").RequireDecoder().Family);
        Assert.Equal(DecoderFamily.Phi, ModelConfigLoader.Parse(phi2Based, "b").RequireDecoder().Family);
    }
}
