using MedVL.Kernels;

namespace MedVL.Optim;

/// <summary>
/// The one place the optimizers split a large parameter across threads (elementwise updates are independent), on
/// the shared <see cref="ParallelRuntime"/> with struct jobs (no closure per call). Small tensors (the usual
/// LoRA/adapter case) run inline on the calling thread.
/// </summary>
internal static unsafe class OptimParallel
{
    /// <summary>Below this many elements an update runs on the calling thread (memory-bound: threads only pay off on big tensors).</summary>
    internal const int MinParallelElements = 1 << 18;
    private const int ChunkElements = 1 << 15; // multiple of 16: every chunk but the last runs without a SIMD tail

    internal static bool ShouldSplit(int n) => n >= MinParallelElements && Environment.ProcessorCount > 1;

    internal static int Chunks(int n) => (n + ChunkElements - 1) / ChunkElements;

    internal struct AdamJob : IParallelJob
    {
        public float* P, G, M, V, VMax;
        public int N;
        public AdamCoefficients C;

        public void Execute(int index)
        {
            int start = index * ChunkElements, len = Math.Min(ChunkElements, N - start);
            OptimKernels.AdamStep(new Span<float>(P + start, len), new ReadOnlySpan<float>(G + start, len),
                new Span<float>(M + start, len), new Span<float>(V + start, len),
                VMax is null ? default : new Span<float>(VMax + start, len), C);
        }
    }

    internal struct SgdJob : IParallelJob
    {
        public float* P, G, Buf;
        public int N;
        public bool First, Nesterov;
        public float WeightDecay, Momentum, OneMinusDampening, NegLr;

        public void Execute(int index)
        {
            int start = index * ChunkElements, len = Math.Min(ChunkElements, N - start);
            OptimKernels.SgdStep(new Span<float>(P + start, len), new ReadOnlySpan<float>(G + start, len),
                Buf is null ? default : new Span<float>(Buf + start, len), First, WeightDecay, Momentum, OneMinusDampening, Nesterov, NegLr);
        }
    }
}
