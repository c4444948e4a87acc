using MedVL.Training;

namespace MedVL.Tests.Training;

/// <summary>The committed full-size pipeline configs parse, name only known targets and hooks, and round-trip.</summary>
public class ConfigFileTests
{
    private static readonly string[] Targets = ["llm", "vision", "projector", "embed_tokens", "lm_head", "vocab", "hlora", "moe", "router"];

    [Theory]
    [InlineData("healthgpt-m3-comprehension.json")]
    [InlineData("healthgpt-m3-generation.json")]
    [InlineData("medmoe-stablelm.json")]
    public void CommittedConfigs_AreValid(string file)
    {
        string path = Path.Combine(TestPaths.RepoRoot, "configs", file);
        var p = PipelineConfig.Load(path);
        Assert.NotNull(p.Model);
        Assert.All(p.Stages, s => Assert.All(s.Train, t => Assert.Contains(t, Targets)));
        Assert.All(p.Stages, s => Assert.True(s.Before is null or "attach-hlora" or "upcycle-moe"));
        Assert.All(p.Stages, s => Assert.True(s.After is null or "pretrain-router"));
        Assert.All(p.Stages, s => Assert.True(s.Task is "comprehension" or "generation"));
        if (p.Stages.Any(s => s.Task == "generation"))
        {
            // HealthGPT-M3 generation: 8192 <idx_i>, H-LoRA r 256 / α 512 on ViT layer 1 (healthgpt.md §1.4, §2).
            Assert.Equal(8192, p.VqIndexTokens);
            Assert.NotNull(p.ImageTokenizer);
            var s1 = p.Stages[0];
            Assert.Equal((true, 256, 512.0, 1), (s1.Reconstruct, s1.HLoraRank, s1.HLoraAlpha!.Value, s1.VisionSelectLayer!.Value));
        }
        var back = PipelineConfig.Load(Write(p.ToJson()));
        Assert.Equal(p.Stages.Select(s => (s.Name, s.LearningRate, s.Epochs)), back.Stages.Select(s => (s.Name, s.LearningRate, s.Epochs)));
    }

    private static string Write(string json)
    {
        string f = Path.Combine(Path.GetTempPath(), $"medvl-cfg-{Guid.NewGuid():N}.json");
        File.WriteAllText(f, json);
        return f;
    }
}
