using System.Text.Json;
using MedVL.Text;

namespace MedVL.Tests.Text;

/// <summary>
/// The SentencePiece-style BPE (byte fallback, Prepend + Replace normaliser) against Google's sentencepiece itself — the
/// "slow" tokenizer Hugging Face's Llama tokenizers are converted from — on a model trained by
/// tools/text/make_spm_fixture.py: every line of the multilingual corpus plus lines the model never saw.
/// </summary>
public class SentencePieceParityTests
{
    [Fact]
    public void Ids_EqualSentencePiece_OnEveryLine()
    {
        var tok = Tokenizer.FromDirectory(TestPaths.Fixture("text", "spm"));
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixture("text", "spm", "expected.json")));
        int n = 0;
        var mismatches = new List<string>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            string text = c.GetProperty("text").GetString()!;
            var expected = c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var actual = tok.Encode(text, addSpecialTokens: false);
            if (!expected.SequenceEqual(actual))
                mismatches.Add($"{JsonSerializer.Serialize(text)}: sentencepiece [{string.Join(",", expected)}], MedVL [{string.Join(",", actual)}]");
            n++;
        }
        Assert.True(n > 400);
        Assert.True(mismatches.Count == 0, $"{mismatches.Count} of {n} lines differ:\n" + string.Join("\n", mismatches.Take(10)));
    }
}
