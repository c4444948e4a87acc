namespace MedVL.Evaluation;

/// <summary>Per-answer metrics of Med-MoE's scorer (evaluate_metrics.py) and nltk's sentence BLEU as run_eval.py calls it.</summary>
public static class VqaMetrics
{
    /// <summary>
    /// evaluate_metrics.calculate_exactmatch: distinct normalised reference words found in the candidate, divided by
    /// the candidate's total word count (0 for an empty candidate).
    /// </summary>
    public static double ExactMatch(string candidate, string reference)
    {
        var cand = VqaText.SplitSentence(VqaText.NormalizeWord(candidate), 1);
        var refw = VqaText.SplitSentence(VqaText.NormalizeWord(reference), 1);
        int count = 0, total = 0;
        foreach (var w in refw.Keys) if (cand.ContainsKey(w)) count++;
        foreach (var c in cand.Values) total += c;
        return total == 0 ? 0 : (double)count / total;
    }

    /// <summary>evaluate_metrics.calculate_f1score on normalised words: (F1, precision, recall); zeros when tp = 0 or a side is empty.</summary>
    public static (double F1, double Precision, double Recall) F1Score(string candidate, string reference)
    {
        var cand = VqaText.SplitSentence(VqaText.NormalizeWord(candidate), 1);
        var refw = VqaText.SplitSentence(VqaText.NormalizeWord(reference), 1);
        if (cand.Count == 0 || refw.Count == 0) return (0, 0, 0);
        int tp = 0, fp = 0, fn = 0;
        foreach (var (w, c) in cand)
        {
            if (refw.ContainsKey(w)) tp += c;
            else fp += c;
        }
        foreach (var (w, c) in refw)
            if (!cand.ContainsKey(w)) fn += c;
        if (tp == 0) return (0, 0, 0);
        double p = (double)tp / (tp + fp), r = (double)tp / (tp + fn);
        return (2 * p * r / (p + r), p, r);
    }

    /// <summary>
    /// nltk.translate.bleu_score.sentence_bleu([reference.split()], hypothesis.split(), weights, SmoothingFunction().method1)
    /// as of nltk 3.8: clipped n-gram precisions for n = 1..len(weights), method1 adds epsilon 0.1 to zero numerators,
    /// the brevity penalty uses the closest reference length, and the score is 0 when no unigram matches.
    /// </summary>
    public static double SentenceBleu(IReadOnlyList<string> reference, IReadOnlyList<string> hypothesis, ReadOnlySpan<double> weights)
    {
        const double epsilon = 0.1;
        int maxN = weights.Length;
        Span<int> num = stackalloc int[maxN + 1];
        Span<int> den = stackalloc int[maxN + 1];
        for (int n = 1; n <= maxN; n++)
        {
            var hyp = NGramCounts(hypothesis, n);
            var refc = NGramCounts(reference, n);
            int clipped = 0, total = 0;
            foreach (var (g, c) in hyp)
            {
                clipped += Math.Min(c, refc.GetValueOrDefault(g));
                total += c;
            }
            num[n] = clipped;
            den[n] = Math.Max(1, total);
        }
        if (num[1] == 0) return 0;

        int hypLen = hypothesis.Count, refLen = reference.Count;
        double bp = hypLen > refLen ? 1 : hypLen == 0 ? 0 : Math.Exp(1 - (double)refLen / hypLen);

        // math.fsum over w_i * log(p_i) for p_i > 0; with at most 4 terms a plain sum differs from fsum only in
        // the last ulp, and run_eval's weights are one-hot, so the sum has one non-zero term.
        double s = 0;
        for (int n = 1; n <= maxN; n++)
        {
            double p = num[n] == 0 ? (num[n] + epsilon) / den[n] : (double)num[n] / den[n];
            if (p > 0) s += weights[n - 1] * Math.Log(p);
        }
        return bp * Math.Exp(s);
    }

    private static Dictionary<string, int> NGramCounts(IReadOnlyList<string> tokens, int n)
    {
        var d = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i + n <= tokens.Count; i++)
        {
            // \u0001 cannot occur inside a whitespace-split token's n-gram boundary ambiguity-free key.
            string key = n == 1 ? tokens[i] : string.Join('\u0001', Enumerable.Range(i, n).Select(k => tokens[k]));
            d[key] = d.GetValueOrDefault(key) + 1;
        }
        return d;
    }
}
