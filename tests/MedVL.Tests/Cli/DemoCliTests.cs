using System.Text.Json.Nodes;

namespace MedVL.Tests.Cli;

public class DemoCliTests
{
    [Fact]
    public void PartialDemoWritesDataAndScoresTheBaselineHonestly()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"medvl-demo-test-{Guid.NewGuid():N}");
        var (code, stdout, err) = CliRunner.Run("demo", "--out", dir, "--count", "60", "--json");
        Assert.True(code == 0, err);
        var o = JsonNode.Parse(stdout)!.AsObject();
        Assert.StartsWith("partial", (string)o["status"]!); // never passed off as the full demo
        var b = o["baseline"]!.AsObject();
        Assert.True((int)b["n_open"]! > 0 && (int)b["n_closed"]! > 0);
        // the prior baseline is far from the demo's targets (closed >= 90, open >= 70): the data is not trivially guessable
        Assert.InRange((double)b["closed_accuracy"]!, 20, 80);
        Assert.True(File.Exists(Path.Combine(dir, "medsynth", "vqa_test.json")));
        Directory.Delete(dir, true);
    }
}
