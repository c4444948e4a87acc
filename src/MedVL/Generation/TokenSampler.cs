using MedVL.Tensors;


namespace MedVL.Generation;

/// <summary>
/// Picks the next token from a row of logits with <see cref="SamplingOptions"/>. One sampler per request: it owns the
/// random stream (seeded, so a seed reproduces a generation) and nothing is shared between requests.
/// </summary>
public sealed class TokenSampler
{
    private readonly SamplingOptions _o;
    private readonly DeterministicRandom _rng;
    private readonly float[] _scratch;

    public TokenSampler(SamplingOptions options, int vocabSize)
    {
        options.Validate();
        _o = options;
        if (options.AllowedTokens is { } a && (long)a.Start + a.Count > vocabSize)
            throw new ArgumentOutOfRangeException(nameof(options), a, $"allowed tokens [{a.Start}, {a.Start + a.Count}) exceed the vocabulary of {vocabSize}");
        _rng = new DeterministicRandom(options.Seed);
        _scratch = new float[vocabSize];
    }

    /// <summary>The next token given this step's logits and every token so far (prompt and generated).</summary>
    public int Next(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        if (logits.Length != _scratch.Length) throw new ArgumentException($"logits of length {logits.Length}, sampler built for {_scratch.Length}");
        var s = _scratch.AsSpan();
        logits.CopyTo(s);
        LogitsProcessing.RepetitionPenalty(s, history, _o.RepetitionPenalty);
        if (_o.AllowedTokens is { } allowed)
        {
            // Constrained decoding: every id outside [Start, Start + Count) is impossible.
            s[..allowed.Start].Fill(float.NegativeInfinity);
            s[(allowed.Start + allowed.Count)..].Fill(float.NegativeInfinity);
        }
        if (!_o.DoSample) return LogitsProcessing.Argmax(s);
        LogitsProcessing.Temperature(s, _o.Temperature);
        LogitsProcessing.TopK(s, _o.TopK);
        LogitsProcessing.TopP(s, _o.TopP);
        return LogitsProcessing.SampleFromLogits(s, _rng.NextDouble());
    }
}
