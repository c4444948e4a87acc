using MedVL.Generation;
using MedVL.Models;
using MedVL.Tensors;
using MedVL.Text;
using static MedVL.Tests.Models.DecoderParityTests;

namespace MedVL.Tests.Models;

public class GenerationTests
{
    /// <summary>Greedy reference without a cache: the full sequence is re-run for every new token (the full forward
    /// is the one checked against torch).</summary>
    private static int[] GreedyByRecompute(CausalLM model, int[] prompt, int n)
    {
        var seq = prompt.ToList();
        using var _ = GradMode.NoGrad();
        for (int i = 0; i < n; i++)
        {
            using var l = model.Forward(seq.ToArray(), options: new DecoderForwardOptions { LastTokenLogitsOnly = true });
            seq.Add(LogitsProcessing.Argmax(l.ToFloatArray()));
        }
        return seq.Skip(prompt.Length).ToArray();
    }

    [Theory]
    [InlineData("phi3")]
    [InlineData("qwen2")]
    [InlineData("phi2")]
    public void Greedy_WithCache_EqualsRecompute(string folder)
    {
        using var tiny = new TinyModelFolder(folder);
        using var model = AutoModelForCausalLM.FromPretrained(tiny.Dir);
        var tok = Tokenizer.FromDirectory(tiny.Dir);
        var gen = new TextGenerator(model, tok);
        var ids = Ids(folder);
        var r = gen.Generate(new GenerationRequest(ids, new SamplingOptions { MaxNewTokens = 10 }));
        Assert.Equal(GreedyByRecompute(model, ids, 10), r.TokenIds);
        Assert.Equal(FinishReason.Length, r.Finish);
        Assert.Equal(ids.Length, r.PromptLength);
        Assert.Equal(tok.Decode(r.TokenIds, skipSpecialTokens: true), r.Text);
    }

    [Fact]
    public void StopTokenId_EndsGeneration_AndIsNotReturned()
    {
        using var tiny = new TinyModelFolder("phi3");
        using var model = AutoModelForCausalLM.FromPretrained(tiny.Dir);
        var gen = new TextGenerator(model, Tokenizer.FromDirectory(tiny.Dir));
        var ids = Ids("phi3");
        var all = GreedyByRecompute(model, ids, 6);
        int stopAt = Array.IndexOf(all, all[3]); // first occurrence of the 4th token
        var r = gen.Generate(new GenerationRequest(ids, new SamplingOptions { MaxNewTokens = 50, StopTokenIds = [all[3]] }));
        Assert.Equal(FinishReason.StopToken, r.Finish);
        Assert.Equal(all[..stopAt], r.TokenIds);
    }

    [Fact]
    public async Task Streaming_ConcatenatesToTheSameText_AndHonoursCancellation()
    {
        using var tiny = new TinyModelFolder("phi4");
        using var model = AutoModelForCausalLM.FromPretrained(tiny.Dir);
        var gen = new TextGenerator(model, Tokenizer.FromDirectory(tiny.Dir));
        var req = new GenerationRequest(Ids("phi4"), new SamplingOptions { MaxNewTokens = 12 });
        var whole = gen.Generate(req);
        var sb = new System.Text.StringBuilder();
        var tokens = new List<int>();
        await foreach (var u in gen.StreamAsync(req))
        {
            sb.Append(u.Text);
            tokens.Add(u.TokenId);
        }
        Assert.Equal(whole.Text, sb.ToString());
        Assert.Equal(whole.TokenIds, tokens);

        using var cts = new CancellationTokenSource();
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var u in gen.StreamAsync(req with { Options = req.Options with { MaxNewTokens = 100 } }, cts.Token))
                if (++seen == 3) cts.Cancel();
        });
        Assert.Equal(3, seen);
    }

    [Fact]
    public void Sampling_IsReproducibleBySeed_AndRequestsRunConcurrently()
    {
        using var tiny = new TinyModelFolder("qwen2");
        using var model = AutoModelForCausalLM.FromPretrained(tiny.Dir);
        var gen = new TextGenerator(model, Tokenizer.FromDirectory(tiny.Dir));
        var cfg = GenerationConfig.Load(tiny.Dir);
        Assert.Equal([282, 280], cfg.EosTokenIds);
        Assert.True(cfg.DoSample);
        var opts = cfg.ToSamplingOptions() with { MaxNewTokens = 16, StopTokenIds = [], Seed = 7 };
        var ids = Ids("qwen2");
        var a = gen.Generate(new GenerationRequest(ids, opts));
        var b = gen.Generate(new GenerationRequest(ids, opts));
        Assert.Equal(a.TokenIds, b.TokenIds);
        var greedy = gen.Generate(new GenerationRequest(ids, new SamplingOptions { MaxNewTokens = 16 }));
        // Several requests at once on one model: each result equals its sequential run.
        var results = new GenerationResult[4];
        Parallel.For(0, 4, i => results[i] = gen.Generate(new GenerationRequest(ids, i % 2 == 0 ? opts : new SamplingOptions { MaxNewTokens = 16 })));
        for (int i = 0; i < 4; i++) Assert.Equal(i % 2 == 0 ? a.TokenIds : greedy.TokenIds, results[i].TokenIds);
        var batch = gen.GenerateBatch([new GenerationRequest(ids, opts), new GenerationRequest(ids[..3], new SamplingOptions { MaxNewTokens = 5 })]);
        Assert.Equal(a.TokenIds, batch[0].TokenIds);
        Assert.Equal(GreedyByRecompute(model, ids[..3], 5), batch[1].TokenIds);
    }

    [Fact]
    public void Llava_GreedyWithImage_EqualsRecompute()
    {
        using var tiny = new TinyModelFolder("llava_phi3", withClip: true);
        using var model = LlavaForCausalLM.FromPretrained(tiny.Dir);
        var gen = new TextGenerator(model, Tokenizer.FromDirectory(tiny.Dir));
        var ids = Ids("llava_phi3");
        using var px = ClipParityTests.Pixels();
        var r = gen.Generate(new GenerationRequest(ids, new SamplingOptions { MaxNewTokens = 6 }, px));
        Assert.Equal(22, r.PromptLength);
        var seq = ids.ToList();
        using var _ = GradMode.NoGrad();
        for (int i = 0; i < 6; i++)
        {
            using var l = model.Forward(seq.ToArray(), px, options: new DecoderForwardOptions { LastTokenLogitsOnly = true });
            seq.Add(LogitsProcessing.Argmax(l.ToFloatArray()));
        }
        Assert.Equal(seq.Skip(ids.Length), r.TokenIds);
    }

    [Theory]
    [InlineData(new[] { "ab", "c", "d" }, "abc", true, "")]
    [InlineData(new[] { "xx<|e", "nd|>yy" }, "<|end|>", true, "xx")]
    [InlineData(new[] { "hello ", "wor", "ld" }, "###", false, "hello world")]
    [InlineData(new[] { "a#", "#", "b" }, "###", false, "a##b")]
    public void StopStrings_HoldBackPrefixes_AndCutBeforeTheMatch(string[] pieces, string stopString, bool stops, string expected)
    {
        var m = new StopStringMatcher([stopString]);
        var sb = new System.Text.StringBuilder();
        bool hit = false;
        foreach (var p in pieces)
        {
            var (e, s) = m.Push(p);
            sb.Append(e);
            if (s) { hit = true; break; }
        }
        if (!hit) sb.Append(m.Flush());
        Assert.Equal(stops, hit);
        Assert.Equal(expected, sb.ToString());
    }
}
