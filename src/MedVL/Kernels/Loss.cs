using System.Numerics.Tensors;

namespace MedVL.Kernels;

/// <summary>
/// Losses fused with their backward (llm.c crossentropy_softmax_backward). Cross-entropy follows
/// torch.nn.functional.cross_entropy with reduction="mean": the mean over targets ≠ ignore_index.
/// Twin: <see cref="Scalar.LossScalar"/>.
/// </summary>
public static class Loss
{
    public const long IgnoreIndex = -100;

    /// <summary>
    /// Per-row logsumexp into lse (needed by backward); returns (Σ over counted rows of lse − logit[target], count).
    /// Targets outside [0, classes) other than ignoreIndex throw.
    /// </summary>
    public static (double Sum, int Count) CrossEntropyForward(ReadOnlySpan<float> logits, ReadOnlySpan<long> targets, Span<float> lse,
        int rows, int classes, long ignoreIndex = IgnoreIndex)
    {
        double sum = 0;
        int count = 0;
        Span<float> tmp = stackalloc float[256];
        for (int r = 0; r < rows; r++)
        {
            var row = logits.Slice(r * classes, classes);
            float max = TensorPrimitives.Max(row);
            // Σ exp(x − max) in vectorised chunks through a stack buffer (no allocation for a 32k-word vocabulary);
            // chunk sums are accumulated in double.
            double s = 0;
            for (int i = 0; i < classes; i += tmp.Length)
            {
                int len = Math.Min(tmp.Length, classes - i);
                var chunk = tmp[..len];
                TensorPrimitives.Subtract(row.Slice(i, len), max, chunk);
                TensorPrimitives.Exp(chunk, chunk);
                s += TensorPrimitives.Sum<float>(chunk);
            }
            float l = (float)(max + Math.Log(s));
            lse[r] = l;
            long t = targets[r];
            if (t == ignoreIndex) continue;
            if ((ulong)t >= (ulong)classes)
                throw new ArgumentException($"cross_entropy: target {t} in row {r} is outside [0, {classes}) and is not ignore_index {ignoreIndex}");
            sum += l - row[(int)t];
            count++;
        }
        return (sum, count);
    }

    /// <summary>gx[r] = scale · (softmax(x[r]) − onehot(t[r])) for counted rows, 0 for ignored rows (scale = g / count).</summary>
    public static void CrossEntropyBackward(ReadOnlySpan<float> logits, ReadOnlySpan<long> targets, ReadOnlySpan<float> lse, float scale,
        Span<float> gx, int rows, int classes, long ignoreIndex = IgnoreIndex)
    {
        for (int r = 0; r < rows; r++)
        {
            var gr = gx.Slice(r * classes, classes);
            long t = targets[r];
            if (t == ignoreIndex) { gr.Clear(); continue; }
            TensorPrimitives.Subtract(logits.Slice(r * classes, classes), lse[r], gr);
            TensorPrimitives.Exp(gr, gr);
            gr[(int)t] -= 1f;
            TensorPrimitives.Multiply(gr, scale, gr);
        }
    }

    /// <summary>Σ (a − b)² in double (mean taken by the caller).</summary>
    public static double MseForward(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = (double)a[i] - b[i];
            s += d * d;
        }
        return s;
    }

    /// <summary>ga = scale·(a − b), gb = −ga with scale = 2g/n (either may be empty).</summary>
    public static void MseBackward(ReadOnlySpan<float> a, ReadOnlySpan<float> b, float scale, Span<float> ga, Span<float> gb)
    {
        for (int i = 0; i < a.Length; i++)
        {
            float v = scale * (a[i] - b[i]);
            if (!ga.IsEmpty) ga[i] = v;
            if (!gb.IsEmpty) gb[i] = -v;
        }
    }
}
