using MedVL.Kernels;
using MedVL.Tensors;


namespace MedVL.Autograd;

/// <summary>Softmax and LogSoftmax over the last dim (torch.softmax(x, -1), torch.log_softmax(x, -1)).</summary>
public static partial class Ops
{
    public static Tensor Softmax(Tensor x) => SoftmaxLike(x, log: false);
    public static Tensor LogSoftmax(Tensor x) => SoftmaxLike(x, log: true);

    private static Tensor SoftmaxLike(Tensor x, bool log)
    {
        string name = log ? "LogSoftmax" : "Softmax";
        if (x.Rank == 0) throw new ArgumentException($"{name}: {x.Describe()} has no last dim");
        int n = x.Size(-1);
        int rows = n == 0 ? 0 : (int)(x.Numel / n);
        using var xc = ReadF32(x, name, "x");
        var y = NewLike(x);
        unsafe
        {
            var job = new RowParallel.Job
            {
                Kind = log ? RowParallel.Kernel.LogSoftmax : RowParallel.Kernel.Softmax,
                X = (float*)xc.DataPointer, Y = (float*)y.DataPointer, Rows = rows, D = n,
            };
            RowParallel.Run(ref job);
        }
        if (ShouldRecord(x)) y.GradFn = new SoftmaxBackward(x, y.Detach(), rows, n, log);
        return y;
    }

    private sealed class SoftmaxBackward : GradNode
    {
        private Tensor? _y;
        private readonly int _rows, _n;
        private readonly bool _log;

        public SoftmaxBackward(Tensor x, Tensor y, int rows, int n, bool log) : base(x)
        {
            _y = y;
            (_rows, _n, _log) = (rows, n, log);
        }

        public override string Name => _log ? "LogSoftmaxBackward" : "SoftmaxBackward";

        public override unsafe Tensor?[] Backward(Tensor g)
        {
            var gx = Tensor.Empty(g.ShapeArray());
            var job = new RowParallel.Job
            {
                Kind = _log ? RowParallel.Kernel.LogSoftmaxBackward : RowParallel.Kernel.SoftmaxBackward,
                X = (float*)_y!.DataPointer, G = (float*)g.DataPointer, Y = (float*)gx.DataPointer, Rows = _rows, D = _n,
            };
            RowParallel.Run(ref job);
            return new Tensor?[] { gx };
        }

        public override void ReleaseSaved()
        {
            _y?.Dispose();
            _y = null;
        }
    }
}

/// <summary>
/// The one place the row-wise kernels (softmax and log-softmax forward and backward, RMSNorm and LayerNorm forward) are spread over threads:
/// rows are independent, so each chunk of rows runs the same span kernel and the result is identical to one thread.
/// Small problems (under ~32k elements per chunk) stay on the calling thread.
/// </summary>
internal static unsafe class RowParallel
{
    internal enum Kernel : byte { Softmax, LogSoftmax, RmsNorm, LayerNorm, SoftmaxBackward, LogSoftmaxBackward }

    internal struct Job : IParallelJob
    {
        public Kernel Kind;
        public float* X, W, B, Y, Stat1, Stat2, G; // backward kinds: X = the forward output, G = its gradient, Y = dX
        public int Rows, D, Chunk;
        public float Eps;

        public void Execute(int index)
        {
            int r0 = index * Chunk;
            int rc = Math.Min(Chunk, Rows - r0);
            if (rc <= 0) return;
            long off = (long)r0 * D;
            int len = checked(rc * D);
            var x = new ReadOnlySpan<float>(X + off, len);
            var y = new Span<float>(Y + off, len);
            var w = W == null ? default : new ReadOnlySpan<float>(W, D);
            var b = B == null ? default : new ReadOnlySpan<float>(B, D);
            switch (Kind)
            {
                case Kernel.Softmax: Kernels.Softmax.SoftmaxForward(x, y, rc, D); break;
                case Kernel.LogSoftmax: Kernels.Softmax.LogSoftmaxForward(x, y, rc, D); break;
                case Kernel.SoftmaxBackward: Kernels.Softmax.SoftmaxBackward(x, new ReadOnlySpan<float>(G + off, len), y, rc, D); break;
                case Kernel.LogSoftmaxBackward: Kernels.Softmax.LogSoftmaxBackward(x, new ReadOnlySpan<float>(G + off, len), y, rc, D); break;
                case Kernel.RmsNorm: Norms.RmsNormForward(x, w, y, new Span<float>(Stat1 + r0, rc), rc, D, Eps); break;
                default: Norms.LayerNormForward(x, w, b, y, new Span<float>(Stat1 + r0, rc), new Span<float>(Stat2 + r0, rc), rc, D, Eps); break;
            }
        }
    }

    internal const int MinElementsPerChunk = 1 << 15;

    internal static void Run(ref Job job, int maxThreads = 0)
    {
        if (job.Rows <= 0) return;
        int chunks = WorkSplit.ChunkCount((long)job.Rows * Math.Max(job.D, 1), job.Rows, maxThreads);
        job.Chunk = (job.Rows + chunks - 1) / chunks;
        int count = (job.Rows + job.Chunk - 1) / job.Chunk;
        if (count == 1) job.Execute(0);
        else ParallelRuntime.For(count, ref job, maxThreads);
    }
}

/// <summary>How the chunked ops cut their work: about four pieces per thread, none under ~32k elements, at most one per row.</summary>
internal static class WorkSplit
{
    internal static int ChunkCount(long elements, int rows, int maxThreads = 0)
    {
        int threads = ParallelRuntime.ResolveThreads(maxThreads);
        long byWork = Math.Max(1, elements / RowParallel.MinElementsPerChunk);
        return (int)Math.Min(Math.Min(byWork, threads * 4L), Math.Max(rows, 1));
    }

    /// <summary>Run <paramref name="body"/> over [0, rows) in contiguous row ranges, on the calling thread when the work is small.</summary>
    internal static void ForRows<T>(int rows, long elements, ref T body) where T : struct, IRowChunk
    {
        if (rows <= 0) return;
        int chunks = ChunkCount(elements, rows);
        if (chunks <= 1) { body.Run(0, rows); return; }
        var job = new RowJob<T> { Body = body, Rows = rows, Chunk = (rows + chunks - 1) / chunks };
        ParallelRuntime.For((rows + job.Chunk - 1) / job.Chunk, ref job);
    }

    private struct RowJob<T> : IParallelJob where T : struct, IRowChunk
    {
        public T Body;
        public int Rows, Chunk;

        public void Execute(int index)
        {
            int r0 = index * Chunk, rc = Math.Min(Chunk, Rows - r0);
            if (rc > 0) Body.Run(r0, rc);
        }
    }
}

/// <summary>A piece of row-independent work: process rows [firstRow, firstRow + rowCount).</summary>
internal interface IRowChunk
{
    void Run(int firstRow, int rowCount);
}
