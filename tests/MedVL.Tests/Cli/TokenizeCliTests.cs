using System.Text.Json.Nodes;

namespace MedVL.Tests.Cli;

/// <summary>`medvl tokenize` against Hugging Face tokenizers' ids (tests/fixtures/text, written by tools/text/make_tokenizer_fixtures.js).</summary>
public class TokenizeCliTests
{
    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama2")]
    public void IdsMatchHuggingFace(string name)
    {
        var dir = Directory.CreateTempSubdirectory("medvl-tok");
        File.Copy(TestPaths.Fixture("text", $"{name}.tokenizer.json.gz"), Path.Combine(dir.FullName, "tokenizer.json.gz"));
        var cfg = TestPaths.Fixture("text", $"{name}.tokenizer_config.json");
        if (File.Exists(cfg)) File.Copy(cfg, Path.Combine(dir.FullName, "tokenizer_config.json"));
        var cases = JsonNode.Parse(File.ReadAllText(TestPaths.Fixture("text", $"expected.{name}.json")))!["cases"]!.AsArray();
        foreach (var c in cases.Where(c => ((string)c!["text"]!).Length > 3 && !((string)c!["text"]!).StartsWith('-')).Take(1))
        {
            string text = (string)c!["text"]!;
            foreach (bool special in new[] { true, false })
            {
                var args = new List<string> { "tokenize", "--model", dir.FullName, "--text", text };
                if (!special) args.Add("--no-special");
                var (code, stdout, err) = CliRunner.Run(args.ToArray());
                Assert.True(code == 0, err);
                var expected = c[special ? "ids" : "ids_no_special"]!.AsArray().Select(v => (int)v!).ToArray();
                Assert.Equal(expected, JsonNode.Parse(stdout)!.AsArray().Select(v => (int)v!).ToArray());
            }
        }
        dir.Delete(true);
    }
}
