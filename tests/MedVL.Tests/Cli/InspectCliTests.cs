using System.Text.Json.Nodes;
using MedVL.Formats;

namespace MedVL.Tests.Cli;

public class InspectCliTests
{
    [Fact]
    public void ListsEveryTensorOfAShardedCheckpoint()
    {
        var dir = TestPaths.Fixture("models", "llama"); // two shards + index
        var (code, stdout, err) = CliRunner.Run("inspect", dir, "--json");
        Assert.True(code == 0, err);
        var rows = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "model.safetensors.index.json")))!["weight_map"]!.AsObject();
        Assert.Equal(index.Select(kv => kv.Key).OrderBy(k => k, StringComparer.Ordinal), rows.Select(r => (string)r["name"]!));
    }

    [Fact]
    public void MaliciousPickleIsRefusedByName()
    {
        var (code, _, err) = CliRunner.Run("inspect", TestPaths.Fixture("formats", "torch", "evil_os_system_p2.pkl"));
        Assert.Equal(1, code);
        Assert.Contains("system", err);
    }
}
