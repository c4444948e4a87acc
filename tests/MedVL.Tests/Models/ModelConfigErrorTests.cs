using MedVL.Models.Config;

namespace MedVL.Tests.Models;

public class ModelConfigErrorTests
{
    private const string Base = """
        "vocab_size": 300, "hidden_size": 60, "intermediate_size": 72, "num_hidden_layers": 2, "num_attention_heads": 6
        """;

    private static ModelConfigException Fails(string json) =>
        Assert.Throws<ModelConfigException>(() => ModelConfigLoader.Parse(json, "x/config.json"));

    [Fact]
    public void MissingRequiredField_NamesFileAndField()
    {
        var e = Fails("""{"model_type": "llama", "vocab_size": 300, "hidden_size": 60, "num_hidden_layers": 2, "num_attention_heads": 6}""");
        Assert.Equal("intermediate_size", e.Field);
        Assert.Contains("x/config.json", e.Message);
        Assert.Contains("intermediate_size", e.Message);
    }

    [Fact]
    public void MissingModelType() => Assert.Equal("model_type", Fails("{" + Base + "}").Field);

    [Fact]
    public void UnknownModelType_ListsSupported()
    {
        var e = Fails("""{"model_type": "gpt2", """ + Base + "}");
        Assert.Contains("phi3", e.Message);
    }

    [Fact]
    public void KvHeadsMustDivideHeads() =>
        Assert.Equal("num_key_value_heads", Fails("""{"model_type": "llama", "num_key_value_heads": 4, """ + Base + "}").Field);

    [Fact]
    public void HeadsMustDivideHiddenWithoutHeadDim() =>
        Assert.Equal("num_attention_heads", Fails("""{"model_type": "phi3", "vocab_size": 3, "hidden_size": 62, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 6}""").Field);

    [Fact]
    public void Phi3RejectsHeadDimThatBreaksHidden() =>
        Assert.Equal("head_dim", Fails("""{"model_type": "phi3", "head_dim": 12, """ + Base + "}").Field);

    [Fact]
    public void LlamaAcceptsExplicitHeadDim()
    {
        var d = ModelConfigLoader.Parse("""{"model_type": "llama", "head_dim": 16, """ + Base + "}", "x").RequireDecoder();
        Assert.Equal(16, d.HeadDim);
        Assert.Equal([96, 60], WeightTable.Decoder(d).Single(s => s.Name == "model.layers.0.self_attn.q_proj.weight").Shape!);
    }

    [Fact]
    public void WrongJsonType_NamesField()
    {
        var e = Fails("""{"model_type": "llama", "vocab_size": "many", "hidden_size": 60, "intermediate_size": 72, "num_hidden_layers": 2, "num_attention_heads": 6}""");
        Assert.Equal("vocab_size", e.Field);
    }

    [Fact]
    public void LongRopeFactorCountChecked()
    {
        var e = Fails("""{"model_type": "phi3", "max_position_embeddings": 256, "original_max_position_embeddings": 32, "rope_scaling": {"type": "su", "short_factor": [1,1], "long_factor": [1,1,1,1,1]}, """ + Base + "}");
        Assert.Equal("rope_scaling.short_factor", e.Field);
        Assert.Contains("expected 5", e.Message);
    }

    [Fact]
    public void OddRotaryDimRejected() =>
        Assert.Equal("partial_rotary_factor", Fails("""{"model_type": "stablelm", "partial_rotary_factor": 0.25, "vocab_size": 3, "hidden_size": 72, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 6}""").Field);

    [Fact]
    public void UnknownFieldsIgnored()
    {
        var d = ModelConfigLoader.Parse("""{"model_type": "qwen2", "some_future_field": {"x": [1, 2]}, """ + Base + "}", "x").RequireDecoder();
        Assert.Equal(DecoderFamily.Qwen2, d.Family);
    }

    [Fact]
    public void MultimodalNeedsMmHiddenSize() =>
        Assert.Equal("mm_hidden_size", Fails("""{"model_type": "llava_qwen2", "mm_projector_type": "mlp2x_gelu", """ + Base + "}").Field);

    [Fact]
    public void BadProjectorType() =>
        Assert.Equal("mm_projector_type", Fails("""{"model_type": "llava_qwen2", "mm_hidden_size": 4, "mm_projector_type": "qformer", """ + Base + "}").Field);

    [Fact]
    public void MoeLayerOutOfRange() =>
        Assert.Equal("moe.moe_layers_idx", Fails("""{"model_type": "moe_llava_stablelm", "mm_hidden_size": 4, "moe": {"moe_layers_idx": [0, 2], "num_experts": [4, 4]}, """ + Base + "}").Field);

    [Fact]
    public void NotJson() => Assert.Contains("not valid JSON", Fails("{model_type: phi3").Message);

    [Fact]
    public void Checker_ReportsAllProblemsAtOnce()
    {
        var d = ModelConfigLoader.Load(TestPaths.Fixture("models", "phi3")).RequireDecoder();
        var table = WeightTable.Decoder(d);
        var actual = table.Where(s => s.Role == TensorRole.Required).ToDictionary(s => s.Name, s => s.Shape!);
        actual.Remove("model.norm.weight");
        actual.Remove("model.layers.1.mlp.down_proj.weight");
        actual["model.layers.0.self_attn.o_proj.weight"] = [60, 61];
        actual["model.layers.0.self_attn.q_proj.weight"] = [60, 60];
        var e = Assert.Throws<ModelConfigException>(() => WeightChecker.Ensure(table, actual, "ckpt"));
        Assert.Contains("2 missing, 1 unexpected, 1 wrong shape", e.Message);
        Assert.Contains("missing: model.norm.weight", e.Message);
        Assert.Contains("missing: model.layers.1.mlp.down_proj.weight", e.Message);
        Assert.Contains("unexpected: model.layers.0.self_attn.q_proj.weight", e.Message);
        Assert.Contains("wrong shape: model.layers.0.self_attn.o_proj.weight expected [60, 60] got [60, 61]", e.Message);
    }

    [Fact]
    public void SafetensorsListing_RejectsOversizedHeaderLength()
    {
        string path = Path.Combine(Path.GetTempPath(), $"medvl-bad-{Guid.NewGuid():N}.safetensors");
        try
        {
            File.WriteAllBytes(path, [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, (byte)'{', (byte)'}']);
            var e = Assert.Throws<ModelConfigException>(() => SafetensorsListing.ReadFile(path));
            Assert.Contains("header length", e.Message);
        }
        finally { File.Delete(path); }
    }
}

public class WeightCheckerCrossTests
{
    [Fact]
    public void Phi4ConfigAgainstPhi3Checkpoint_ReportsEveryMisshapedTensor()
    {
        // Same family and hidden size, different head layout: only the fused qkv projections differ in shape.
        var phi4 = ModelConfigLoader.Load(TestPaths.Fixture("models", "phi4"));
        var phi3Listing = SafetensorsListing.ReadFolder(TestPaths.Fixture("models", "phi3"))
            .ToDictionary(kv => kv.Key, kv => kv.Value.Shape);
        var r = WeightChecker.Check(WeightTable.For(phi4), phi3Listing);
        Assert.False(r.Ok);
        Assert.Equal(["model.layers.0.self_attn.qkv_proj.weight", "model.layers.1.self_attn.qkv_proj.weight"],
            r.Misshaped.Select(m => m.Expected.Name).Order().ToArray());
        Assert.Empty(r.Missing);
        Assert.Empty(r.Unexpected);
    }

    [Fact]
    public void ShardedIndex_ListsBothShards()
    {
        var listing = SafetensorsListing.ReadFolder(TestPaths.Fixture("models", "llama"));
        Assert.Equal(2, listing.Values.Select(e => e.File).Distinct().Count());
        Assert.Equal("F32", listing["lm_head.weight"].DType);
    }

    [Fact]
    public void Bf16Fixture_HeaderSaysBf16()
    {
        var listing = SafetensorsListing.ReadFolder(TestPaths.Fixture("models", "qwen2"));
        Assert.All(listing.Values, e => Assert.Equal("BF16", e.DType));
    }
}

public class RealPhi4ConfigTests
{
    [Fact]
    public void RealPhi4_MatchesHealthGptNotes()
    {
        // healthgpt.md section 3.1: hidden 5120, 40 layers, 40 heads, 10 KV heads, intermediate 17920, vocab 100352, theta 250000.
        var d = ModelConfigLoader.Load(TestPaths.Fixture("models", "configs", "phi-4.config.json")).RequireDecoder();
        Assert.Equal(DecoderFamily.Phi3, d.Family);
        Assert.Equal((5120, 40, 40, 10, 4, 128, 17920, 100352), (d.HiddenSize!.Value, d.NumHiddenLayers!.Value, d.NumAttentionHeads!.Value, d.NumKeyValueHeads, d.NRep, d.HeadDim, d.IntermediateSize!.Value, d.VocabSize!.Value));
        Assert.Equal(250000, d.RopeTheta);
        Assert.Null(d.SlidingWindow);
        // Fused qkv with GQA: (40 + 2*10) * 128 = 7680 rows.
        Assert.Equal([7680L, 5120L], WeightTable.Decoder(d).Single(s => s.Name == "model.layers.0.self_attn.qkv_proj.weight").Shape!);
    }
}
