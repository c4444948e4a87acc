using System.Text.Json.Nodes;
using MedVL.Generation;

namespace MedVL.Tests.Generation;

/// <summary>Against tools/generation/make_sampling_fixtures.py: HF's processors as torch tensor ops.</summary>
public class SamplerTests
{
    private static readonly JsonArray Cases = JsonNode.Parse(File.ReadAllText(TestPaths.Fixture("generation", "logits_processors.json")))!.AsArray();

    [Fact]
    public void ProcessorsMatchHuggingFaceOrderAndSemantics()
    {
        foreach (var c in Cases)
        {
            var logits = c!["logits"]!.AsArray().Select(v => (float)v!).ToArray();
            var history = c["history"]!.AsArray().Select(v => (int)v!).ToArray();
            var s = logits.ToArray();
            LogitsProcessing.RepetitionPenalty(s, history, (float)c["penalty"]!);
            Assert.Equal((int)c["greedy"]!, LogitsProcessing.Argmax(s));
            LogitsProcessing.Temperature(s, (float)c["temperature"]!);
            LogitsProcessing.TopK(s, (int)c["top_k"]!);
            LogitsProcessing.TopP(s, (float)c["top_p"]!);
            var expected = c["processed"]!.AsArray();
            for (int i = 0; i < s.Length; i++)
            {
                if (expected[i] is null) Assert.True(float.IsNegativeInfinity(s[i]), $"token {i} should be filtered");
                else Assert.Equal((float)expected[i]!, s[i], 1e-5f);
            }
        }
    }

    [Fact]
    public void SamplingFollowsTheProcessedDistributionAndIsSeeded()
    {
        var c = Cases[0]!;
        var logits = c["logits"]!.AsArray().Select(v => (float)v!).ToArray();
        var history = c["history"]!.AsArray().Select(v => (int)v!).ToArray();
        var probs = c["probs"]!.AsArray().Select(v => (double)v!).ToArray();
        var o = new SamplingOptions { DoSample = true, Temperature = (float)c["temperature"]!, TopK = (int)c["top_k"]!, TopP = (float)c["top_p"]!, RepetitionPenalty = (float)c["penalty"]!, Seed = 3 };
        var sampler = new TokenSampler(o, logits.Length);
        var counts = new int[logits.Length];
        const int n = 40000;
        for (int i = 0; i < n; i++) counts[sampler.Next(logits, history)]++;
        for (int t = 0; t < logits.Length; t++)
        {
            double sd = Math.Sqrt(probs[t] * (1 - probs[t]) / n);
            Assert.True(Math.Abs(counts[t] / (double)n - probs[t]) <= 5 * sd + 1e-9, $"token {t}: {counts[t] / (double)n} vs {probs[t]}");
        }
        var a = new TokenSampler(o, logits.Length);
        var b = new TokenSampler(o, logits.Length);
        for (int i = 0; i < 50; i++) Assert.Equal(a.Next(logits, history), b.Next(logits, history));
        Assert.Equal((int)c["greedy"]!, new TokenSampler(SamplingOptions.Greedy with { RepetitionPenalty = (float)c["penalty"]! }, logits.Length).Next(logits, history));
    }

    [Fact]
    public void AllowedTokens_ConstrainGreedyAndSampledChoicesToTheRange()
    {
        var c = Cases[4]!;
        var logits = c["logits"]!.AsArray().Select(v => (float)v!).ToArray();
        var history = c["history"]!.AsArray().Select(v => (int)v!).ToArray();
        var range = (Start: 40, Count: 20);
        var greedy = new TokenSampler(new SamplingOptions { AllowedTokens = range }, logits.Length).Next(logits, history);
        // Greedy inside the range is the argmax of the range's logits (no repetition penalty here).
        Assert.Equal(range.Start + Array.IndexOf(logits[40..60], logits[40..60].Max()), greedy);
        var sampler = new TokenSampler(new SamplingOptions { DoSample = true, AllowedTokens = range, Seed = 1 }, logits.Length);
        for (int i = 0; i < 500; i++) Assert.InRange(sampler.Next(logits, history), 40, 59);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TokenSampler(new SamplingOptions { AllowedTokens = (95, 10) }, logits.Length));
        Assert.Contains("exceed the vocabulary of 101", e.Message);
    }

    [Fact]
    public void InvalidSettingsAreRejectedByName()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TokenSampler(new SamplingOptions { DoSample = true, Temperature = 0 }, 10));
        Assert.Contains("temperature", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenSampler(new SamplingOptions { TopP = 0 }, 10));
    }
}
