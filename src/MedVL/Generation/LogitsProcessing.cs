namespace MedVL.Generation;

/// <summary>
/// Hugging Face's logits processors and warpers, applied in generate()'s order: repetition penalty, then (when sampling)
/// temperature, top-k, top-p (transformers generation/logits_process.py). They work in place on one row of logits; ties
/// and the minimum of one kept token follow HF.
/// </summary>
public static class LogitsProcessing
{
    /// <summary>RepetitionPenaltyLogitsProcessor: a seen token's score s becomes s·p if s &lt; 0, else s / p.</summary>
    public static void RepetitionPenalty(Span<float> logits, ReadOnlySpan<int> seenTokens, float penalty)
    {
        if (penalty == 1f) return;
        // gather all first, then scatter: a token that occurs twice is penalised once, as torch.gather/scatter_ do
        Span<bool> done = logits.Length <= 4096 ? stackalloc bool[logits.Length] : new bool[logits.Length];
        foreach (int t in seenTokens)
        {
            if ((uint)t >= (uint)logits.Length) throw new ArgumentOutOfRangeException(nameof(seenTokens), $"token id {t} outside vocabulary of {logits.Length}");
            if (done[t]) continue;
            done[t] = true;
            float s = logits[t];
            logits[t] = s < 0 ? s * penalty : s / penalty;
        }
    }

    public static void Temperature(Span<float> logits, float temperature)
    {
        if (temperature == 1f) return;
        System.Numerics.Tensors.TensorPrimitives.Divide(logits, temperature, logits);
    }

    /// <summary>TopKLogitsWarper: scores below the k-th largest become -inf (ties with it are kept).</summary>
    public static void TopK(Span<float> logits, int k)
    {
        if (k <= 0 || k >= logits.Length) return;
        var copy = logits.ToArray();
        // k-th largest = element n-k of the ascending order
        Array.Sort(copy);
        float kth = copy[copy.Length - k];
        for (int i = 0; i < logits.Length; i++)
            if (logits[i] < kth) logits[i] = float.NegativeInfinity;
    }

    /// <summary>
    /// TopPLogitsWarper: sort ascending, take the softmax's cumulative sum, and remove tokens whose cumulative probability
    /// is &lt;= 1 - top_p, always keeping the most probable token.
    /// </summary>
    public static void TopP(Span<float> logits, float topP)
    {
        if (topP >= 1f) return;
        int n = logits.Length;
        var idx = new int[n];
        var sorted = logits.ToArray();
        for (int i = 0; i < n; i++) idx[i] = i;
        Array.Sort(sorted, idx); // ascending; equal values keep no particular order, as torch.sort (unstable)
        float max = sorted[n - 1];
        double sum = 0;
        var p = new double[n];
        for (int i = 0; i < n; i++) sum += p[i] = float.IsNegativeInfinity(sorted[i]) ? 0 : Math.Exp(sorted[i] - max);
        double cum = 0;
        for (int i = 0; i < n - 1; i++) // the last (most probable) is always kept: min_tokens_to_keep = 1
        {
            cum += p[i] / sum;
            if (cum <= 1 - topP) logits[idx[i]] = float.NegativeInfinity;
        }
    }

    /// <summary>Index of the largest logit; the lowest index among equals (torch.argmax).</summary>
    public static int Argmax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }

    /// <summary>Draw from softmax(logits) with a uniform variate u in [0, 1) (inverse CDF in index order).</summary>
    public static int SampleFromLogits(ReadOnlySpan<float> logits, double u)
    {
        float max = float.NegativeInfinity;
        foreach (var v in logits) if (v > max) max = v;
        double sum = 0;
        foreach (var v in logits) sum += float.IsNegativeInfinity(v) ? 0 : Math.Exp(v - max);
        double target = u * sum, acc = 0;
        int last = -1;
        for (int i = 0; i < logits.Length; i++)
        {
            if (float.IsNegativeInfinity(logits[i])) continue;
            acc += Math.Exp(logits[i] - max);
            last = i;
            if (acc > target) return i;
        }
        return last;
    }
}
