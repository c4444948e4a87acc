namespace MedVL.Kernels;

/// <summary>
/// The one place the attention / convolution / upsampling kernels fan work out over cores. Work items are coarse
/// (a query block of one head, a block of output channels), so Parallel.For's overhead is negligible against them;
/// swap the body for the shared low-overhead parallel-for once it lands in main.
/// </summary>
internal static class ParallelBlocks
{
    public static void For(int count, Action<int> body, CancellationToken cancellationToken = default)
    {
        if (count <= 0) return;
        if (count == 1 || Environment.ProcessorCount == 1)
        {
            for (int i = 0; i < count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                body(i);
            }
            return;
        }
        var options = new ParallelOptions { CancellationToken = cancellationToken };
        Parallel.For(0, count, options, body);
    }
}
