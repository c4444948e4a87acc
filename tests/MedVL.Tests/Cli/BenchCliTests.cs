using System.Text.Json.Nodes;

namespace MedVL.Tests.Cli;

/// <summary>The benchmark command's output contract (numbers themselves are recorded in docs/benchmarks.md, never asserted).</summary>
public class BenchCliTests
{
    [Fact]
    public void KernelsJsonLinesCarryCaseValueAndUnit()
    {
        var (code, stdout, err) = CliRunner.Run("bench", "kernels", "--filter", "matmul_f32_512", "--runs", "1", "--json");
        Assert.True(code == 0, err);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            var o = JsonNode.Parse(line)!.AsObject();
            Assert.Equal("matmul_f32_512", (string)o["case"]!);
            Assert.True((double)o["value"]! > 0);
            Assert.Equal("GFLOP/s", (string)o["unit"]!);
        }
    }
}
