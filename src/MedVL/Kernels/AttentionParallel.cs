namespace MedVL.Kernels;

/// <summary>
/// The one place the attention / convolution / upsampling kernels fan work out over cores, on the shared
/// <see cref="ParallelRuntime"/> (persistent workers; Parallel.For's thread-pool hand-offs made the T = 576 ViT attention
/// bimodal, 10 to 150 GFLOP/s from run to run). Work items are coarse (a query block of one head, a block of channels).
/// </summary>
internal static class ParallelBlocks
{
    public static void For(int count, Action<int> body, CancellationToken cancellationToken = default)
    {
        if (count <= 0) return;
        var job = new DelegateJob(body, cancellationToken);
        ParallelRuntime.For(count, ref job);
    }

    private readonly struct DelegateJob(Action<int> body, CancellationToken cancellationToken) : IParallelJob
    {
        public void Execute(int index)
        {
            cancellationToken.ThrowIfCancellationRequested();
            body(index);
        }
    }
}
