using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Autograd;

/// <summary>Cross-entropy (fused log-softmax, ignore_index) and mean squared error.</summary>
public static partial class Ops
{
    /// <summary>
    /// torch.nn.functional.cross_entropy(logits [.., C], targets [..], ignore_index, reduction="mean"): the mean of
    /// −log softmax(logits)[target] over targets ≠ ignoreIndex (NaN when all are ignored, as torch). Backward is the
    /// fused (softmax − onehot)·g/count; ignored rows get 0.
    /// </summary>
    public static unsafe Tensor CrossEntropy(Tensor logits, Tensor targets, long ignoreIndex = Loss.IgnoreIndex)
    {
        if (logits.Rank < 1) throw new ArgumentException($"CrossEntropy: logits {logits.Describe()} must be [.., classes]");
        int classes = logits.Size(-1);
        int rows = classes == 0 ? 0 : (int)(logits.Numel / classes);
        if (!logits.Shape[..^1].SequenceEqual(targets.Shape))
            throw new ArgumentException($"CrossEntropy: targets {targets.Describe()} must have the shape of logits {logits.Describe()} without its last dim");
        using var lc = ReadF32(logits, "CrossEntropy", "logits");
        using var tc = ReadI64(targets, "CrossEntropy", "targets");
        var lse = Tensor.Empty(rows);
        var (sum, count) = CrossEntropyForwardParallel((float*)lc.DataPointer, (long*)tc.DataPointer, (float*)lse.DataPointer, rows, classes, ignoreIndex);
        var y = Tensor.Empty(Array.Empty<int>());
        y.Span<float>()[0] = (float)(sum / count);
        if (ShouldRecord(logits)) y.GradFn = new CrossEntropyBackward(logits, lc.Detach(), tc.Detach(), lse, count, rows, classes, ignoreIndex);
        else lse.Dispose();
        return y;
    }

    /// <summary>
    /// The forward over row chunks: each chunk writes its rows' log-sum-exp and returns a partial (sum, count); the
    /// partials are added in chunk order, so the loss is deterministic for a thread count (and equals the one-call sum
    /// up to double rounding).
    /// </summary>
    private static unsafe (double Sum, int Count) CrossEntropyForwardParallel(float* logits, long* targets, float* lse, int rows, int classes, long ignore)
    {
        if (rows == 0) return (0, 0);
        int chunks = WorkSplit.ChunkCount((long)rows * classes, rows);
        int chunk = (rows + chunks - 1) / chunks;
        int count = (rows + chunk - 1) / chunk;
        var partial = new (double Sum, int Count)[count];
        var job = new CrossEntropyForwardJob { Logits = logits, Targets = targets, Lse = lse, Rows = rows, Classes = classes, Ignore = ignore, Chunk = chunk };
        fixed ((double, int)* p = partial)
        {
            job.Partials = p;
            if (count == 1) job.Execute(0);
            else ParallelRuntime.For(count, ref job);
        }
        double sum = 0;
        int n = 0;
        foreach (var (s, c) in partial) { sum += s; n += c; }
        return (sum, n);
    }

    private sealed class CrossEntropyBackward : GradNode
    {
        private Tensor? _logits, _targets, _lse;
        private readonly int _count, _rows, _classes;
        private readonly long _ignore;

        public CrossEntropyBackward(Tensor logits, Tensor saved, Tensor targets, Tensor lse, int count, int rows, int classes, long ignore) : base(logits)
        {
            (_logits, _targets, _lse) = (saved, targets, lse);
            (_count, _rows, _classes, _ignore) = (count, rows, classes, ignore);
        }

        public override unsafe Tensor?[] Backward(Tensor g)
        {
            var gx = Tensor.Empty(Inputs[0].ShapeArray());
            float scale = g.Span<float>()[0] / _count;
            var body = new CrossEntropyBackwardRows
            {
                Logits = (float*)_logits!.DataPointer, Targets = (long*)_targets!.DataPointer, Lse = (float*)_lse!.DataPointer,
                Gx = (float*)gx.DataPointer, Scale = scale, Classes = _classes, Ignore = _ignore,
            };
            WorkSplit.ForRows(_rows, (long)_rows * _classes, ref body);
            return new Tensor?[] { gx };
        }

        public override void ReleaseSaved()
        {
            _logits?.Dispose(); _logits = null;
            _targets?.Dispose(); _targets = null;
            _lse?.Dispose(); _lse = null;
        }
    }

    /// <summary>torch.nn.functional.mse_loss(a, b) with reduction="mean" (same shapes).</summary>
    public static Tensor Mse(Tensor a, Tensor b)
    {
        if (!a.Shape.SequenceEqual(b.Shape))
            throw new ArgumentException($"Mse: input {a.Describe()} and target {b.Describe()} must have the same shape");
        using var ac = ReadF32(a, "Mse", "input");
        using var bc = ReadF32(b, "Mse", "target");
        var y = Tensor.Empty(Array.Empty<int>());
        y.Span<float>()[0] = (float)(MseChunks.Forward(ac, bc) / a.Numel);
        if (ShouldRecord(a, b)) y.GradFn = new MseBackward(a, b, ac.Detach(), bc.Detach());
        return y;
    }

    private sealed class MseBackward : GradNode
    {
        private Tensor? _a, _b;
        public MseBackward(Tensor a, Tensor b, Tensor sa, Tensor sb) : base(a, b) => (_a, _b) = (sa, sb);

        public override Tensor?[] Backward(Tensor g)
        {
            Tensor? ga = NeedsGrad(0) ? Tensor.Empty(Inputs[0].ShapeArray()) : null;
            Tensor? gb = NeedsGrad(1) ? Tensor.Empty(Inputs[1].ShapeArray()) : null;
            float scale = 2f * g.Span<float>()[0] / _a!.Numel;
            MseChunks.Backward(_a, _b!, scale, ga, gb);
            return new[] { ga, gb };
        }

        public override void ReleaseSaved()
        {
            _a?.Dispose(); _a = null;
            _b?.Dispose(); _b = null;
        }
    }
}

/// <summary>Cross-entropy backward over row chunks (rows are independent: softmax − one-hot per row, scaled).</summary>
internal unsafe struct CrossEntropyBackwardRows : IRowChunk
{
    public float* Logits, Lse, Gx;
    public long* Targets;
    public float Scale;
    public int Classes;
    public long Ignore;

    public void Run(int r0, int rc)
    {
        long off = (long)r0 * Classes;
        int len = checked(rc * Classes);
        Loss.CrossEntropyBackward(new ReadOnlySpan<float>(Logits + off, len), new ReadOnlySpan<long>(Targets + r0, rc),
            new ReadOnlySpan<float>(Lse + r0, rc), Scale, new Span<float>(Gx + off, len), rc, Classes, Ignore);
    }
}

internal unsafe struct CrossEntropyForwardJob : IParallelJob
{
    public float* Logits, Lse;
    public long* Targets;
    public (double Sum, int Count)* Partials;
    public int Rows, Classes, Chunk;
    public long Ignore;

    public void Execute(int index)
    {
        int r0 = index * Chunk, rc = Math.Min(Chunk, Rows - r0);
        if (rc <= 0) { Partials[index] = (0, 0); return; }
        long off = (long)r0 * Classes;
        Partials[index] = Loss.CrossEntropyForward(new ReadOnlySpan<float>(Logits + off, checked(rc * Classes)), new ReadOnlySpan<long>(Targets + r0, rc),
            new Span<float>(Lse + r0, rc), rc, Classes, Ignore);
    }
}

/// <summary>MSE over contiguous chunks: the forward adds per-chunk double sums in chunk order; the backward is elementwise.</summary>
internal static class MseChunks
{
    private static (int Count, long Chunk) Split(long n)
    {
        int chunks = WorkSplit.ChunkCount(n, (int)Math.Min(n, int.MaxValue));
        long chunk = Math.Max(1, (n + chunks - 1) / Math.Max(chunks, 1));
        return ((int)((n + chunk - 1) / chunk), chunk);
    }

    public static double Forward(Tensor a, Tensor b)
    {
        long n = a.Numel;
        if (n == 0) return 0;
        var (count, chunk) = Split(n);
        if (count == 1) return Loss.MseForward(a.Span<float>(), b.Span<float>());
        var partial = new double[count];
        ParallelBlocks.For(count, i =>
        {
            int off = (int)(i * chunk), len = (int)Math.Min(chunk, n - i * chunk);
            partial[i] = Loss.MseForward(a.Span<float>().Slice(off, len), b.Span<float>().Slice(off, len));
        });
        double s = 0;
        foreach (var p in partial) s += p;
        return s;
    }

    public static void Backward(Tensor a, Tensor b, float scale, Tensor? ga, Tensor? gb)
    {
        long n = a.Numel;
        if (n == 0) return;
        var (count, chunk) = Split(n);
        ParallelBlocks.For(count, i =>
        {
            int off = (int)(i * chunk), len = (int)Math.Min(chunk, n - i * chunk);
            Loss.MseBackward(a.Span<float>().Slice(off, len), b.Span<float>().Slice(off, len), scale,
                ga is null ? default : ga.Span<float>().Slice(off, len), gb is null ? default : gb.Span<float>().Slice(off, len));
        });
    }
}
