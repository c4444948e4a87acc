using MedVL.Training;

namespace MedVL.Tests.Training;

/// <summary>The committed full-size pipeline configs parse, name only known targets and hooks, and round-trip.</summary>
public class ConfigFileTests
{
    private static readonly string[] Targets = ["llm", "vision", "projector", "embed_tokens", "lm_head", "hlora", "moe", "router"];

    [Theory]
    [InlineData("healthgpt-m3-comprehension.json")]
    [InlineData("medmoe-stablelm.json")]
    public void CommittedConfigs_AreValid(string file)
    {
        string path = Path.Combine(TestPaths.RepoRoot, "configs", file);
        var p = PipelineConfig.Load(path);
        Assert.NotNull(p.Model);
        Assert.All(p.Stages, s => Assert.All(s.Train, t => Assert.Contains(t, Targets)));
        Assert.All(p.Stages, s => Assert.True(s.Before is null or "attach-hlora" or "upcycle-moe"));
        Assert.All(p.Stages, s => Assert.True(s.After is null or "pretrain-router"));
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
