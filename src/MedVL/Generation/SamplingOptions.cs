namespace MedVL.Generation;

/// <summary>
/// Decoding settings, named as Hugging Face's GenerationConfig. <see cref="DoSample"/> false is greedy (argmax after the
/// repetition penalty), as the papers' evaluation scripts use (do_sample=False, temperature 0).
/// </summary>
public sealed record SamplingOptions
{
    public bool DoSample { get; init; }
    public float Temperature { get; init; } = 1f;
    /// <summary>0 disables.</summary>
    public int TopK { get; init; }
    /// <summary>1 disables.</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>1 disables; HF's RepetitionPenaltyLogitsProcessor over every token seen so far (prompt included).</summary>
    public float RepetitionPenalty { get; init; } = 1f;
    public ulong Seed { get; init; }
    public int MaxNewTokens { get; init; } = 256;
    public IReadOnlyList<int> StopTokenIds { get; init; } = Array.Empty<int>();
    public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();
    /// <summary>Constrained decoding: only ids in [Start, Start + Count) can be produced (e.g. HealthGPT's &lt;idx_i&gt;
    /// tokens while an image is generated; the released gen_infer.py does not constrain). Null: any token.</summary>
    public (int Start, int Count)? AllowedTokens { get; init; }

    public static SamplingOptions Greedy { get; } = new();

    public void Validate()
    {
        if (DoSample && !(Temperature > 0)) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "temperature must be > 0 when sampling (use greedy decoding for temperature 0)");
        if (TopK < 0) throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "top_k must be >= 0");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "top_p must be in (0, 1]");
        if (!(RepetitionPenalty > 0)) throw new ArgumentOutOfRangeException(nameof(RepetitionPenalty), RepetitionPenalty, "repetition_penalty must be > 0");
        if (AllowedTokens is { } a && (a.Start < 0 || a.Count <= 0)) throw new ArgumentOutOfRangeException(nameof(AllowedTokens), a, "allowed tokens need a start >= 0 and a count > 0");
        if (MaxNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(MaxNewTokens), MaxNewTokens, "max_new_tokens must be >= 0");
    }
}
