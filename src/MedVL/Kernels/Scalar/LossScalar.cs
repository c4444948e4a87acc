using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>Plain-loop twins of <see cref="Loss"/>: cross-entropy written as −log softmax at the target.</summary>
public static class LossScalar
{
    public static T CrossEntropy<T>(ReadOnlySpan<T> logits, ReadOnlySpan<long> targets, int rows, int classes, long ignoreIndex = -100)
        where T : IFloatingPointIeee754<T>
    {
        T sum = T.Zero;
        int count = 0;
        for (int r = 0; r < rows; r++)
        {
            if (targets[r] == ignoreIndex) continue;
            T max = logits[r * classes];
            for (int i = 1; i < classes; i++) max = T.Max(max, logits[r * classes + i]);
            T s = T.Zero;
            for (int i = 0; i < classes; i++) s += T.Exp(logits[r * classes + i] - max);
            sum -= logits[r * classes + (int)targets[r]] - max - T.Log(s);
            count++;
        }
        return sum / T.CreateChecked(count); // 0/0 = NaN when every target is ignored, as torch
    }

    public static void CrossEntropyBackward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<long> targets, T gLoss, Span<T> gx, int rows, int classes,
        long ignoreIndex = -100) where T : IFloatingPointIeee754<T>
    {
        int count = 0;
        for (int r = 0; r < rows; r++) if (targets[r] != ignoreIndex) count++;
        for (int r = 0; r < rows; r++)
        {
            bool skip = targets[r] == ignoreIndex;
            T max = logits[r * classes];
            for (int i = 1; i < classes; i++) max = T.Max(max, logits[r * classes + i]);
            T s = T.Zero;
            for (int i = 0; i < classes; i++) s += T.Exp(logits[r * classes + i] - max);
            for (int i = 0; i < classes; i++)
                gx[r * classes + i] = skip ? T.Zero
                    : gLoss / T.CreateChecked(count) * (T.Exp(logits[r * classes + i] - max) / s - (i == targets[r] ? T.One : T.Zero));
        }
    }

    public static T Mse<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : IFloatingPointIeee754<T>
    {
        T s = T.Zero;
        for (int i = 0; i < a.Length; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
        return s / T.CreateChecked(a.Length);
    }
}
