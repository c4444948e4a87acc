namespace MedVL.Optim;

/// <summary>
/// The one place the optimizers split a large parameter across threads (elementwise updates are independent).
/// Small tensors (the usual LoRA/adapter case) run inline with no allocation. Swap the body for the shared
/// low-overhead parallel-for in MedVL.Kernels once that exists.
/// </summary>
internal static class OptimParallel
{
    /// <summary>Below this many elements an update runs on the calling thread.</summary>
    internal const int MinParallelElements = 1 << 20;
    private const int ChunkElements = 1 << 16;

    internal delegate void RangeBody(int start, int length);

    internal static bool ShouldSplit(int n) => n >= MinParallelElements && Environment.ProcessorCount > 1;

    internal static void For(int n, RangeBody body, CancellationToken cancellationToken = default)
    {
        int chunks = (n + ChunkElements - 1) / ChunkElements;
        Parallel.For(0, chunks, new ParallelOptions { CancellationToken = cancellationToken }, c =>
        {
            int start = c * ChunkElements;
            body(start, Math.Min(ChunkElements, n - start));
        });
    }
}
