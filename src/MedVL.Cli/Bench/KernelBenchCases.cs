using System.Runtime.InteropServices;
using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Cli.Bench;

/// <summary>One reported number of a case: <c>WorkPerRun / seconds / Scale</c> in <c>Unit</c>.</summary>
public sealed record BenchMetric(string Case, double WorkPerRun, double Scale, string Unit);

/// <summary>A prepared case: <see cref="Run"/> executes one repetition; <see cref="Dispose"/> frees its buffers.</summary>
public sealed class BenchInstance(Action run, IReadOnlyList<BenchMetric> metrics, IDisposable? resources) : IDisposable
{
    public Action Run { get; } = run;
    public IReadOnlyList<BenchMetric> Metrics { get; } = metrics;
    public void Dispose() => resources?.Dispose();
}

/// <summary>A named case; <see cref="Setup"/> gets the thread count and allocates its inputs.</summary>
public sealed record KernelBenchCase(string Name, Func<int, BenchInstance> Setup);

/// <summary>
/// The list of `medvl bench kernels` cases. Other kernel areas add theirs (attention, norms, ...) as further entries.
/// </summary>
public static unsafe class KernelBenchCases
{
    public static IReadOnlyList<KernelBenchCase> All { get; } = BuildAll();

    private static List<KernelBenchCase> BuildAll()
    {
        var list = new List<KernelBenchCase>();
        foreach (int n in new[] { 512, 1024, 2048, 4096 })
            list.Add(new KernelBenchCase($"matmul_f32_{n}", t => SquareGemm(n, t)));
        list.Add(new KernelBenchCase("matvec_f32_1x3072x9216", t => DecoderMatVec(DType.F32, t)));
        list.Add(new KernelBenchCase("matvec_bf16_1x3072x9216", t => DecoderMatVec(DType.BF16, t)));
        list.Add(new KernelBenchCase("matvec_f16_1x3072x9216", t => DecoderMatVec(DType.F16, t)));
        list.Add(new KernelBenchCase("matvec_f32_1x1024x2816_x24", t => RotatingMatVec(DType.F32, t)));
        list.Add(new KernelBenchCase("linear_bf16_64x3072x9216", t => PrefillLinear(DType.BF16, 64, t)));
        list.Add(new KernelBenchCase("linear_f32_128x3072x9216", t => PrefillLinear(DType.F32, 128, t)));
        list.Add(new KernelBenchCase("linear_bf16_128x3072x9216", t => PrefillLinear(DType.BF16, 128, t)));
        list.Add(new KernelBenchCase("linear_f32_128x1024x2816", t => PrefillLinear(DType.F32, 128, t, 1024, 2816)));
        list.Add(new KernelBenchCase("memcpy_256MiB", t => MemCopy(256 << 20, t)));
        list.Add(new KernelBenchCase("attention_vit_T576_H16_D64", _ => VitAttention()));
        list.Add(new KernelBenchCase("attention_decode_S2048_H32_D96", _ => DecodeAttention()));
        return list;
    }

    /// <summary>Native 64-byte-aligned float buffers, freed together.</summary>
    private sealed class NativeBuffers : IDisposable
    {
        private readonly List<nint> _ptrs = new();
        public T* Alloc<T>(long count, Func<long, T>? init = null) where T : unmanaged
        {
            var p = (T*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(T)), 64);
            _ptrs.Add((nint)p);
            for (long i = 0; i < count; i++) p[i] = init is null ? default : init(i);
            return p;
        }
        public void Dispose() { foreach (var p in _ptrs) NativeMemory.AlignedFree((void*)p); _ptrs.Clear(); }
    }

    private static float Rnd(long i) => (float)((i * 2654435761L % 2001) - 1000) / 1000f;

    private static BenchInstance SquareGemm(int n, int threads)
    {
        var buf = new NativeBuffers();
        float* a = buf.Alloc<float>((long)n * n, Rnd), b = buf.Alloc<float>((long)n * n, i => Rnd(i + 7)), c = buf.Alloc<float>((long)n * n, _ => 0f);
        return new BenchInstance(
            () => MatMul.Gemm(false, false, n, n, n, 1f, a, n, b, n, 0f, c, n, threads),
            new[] { new BenchMetric($"matmul_f32_{n}", 2.0 * n * n * n, 1e9, "GFLOP/s") }, buf);
    }

    private static BenchInstance DecoderMatVec(DType dt, int threads)
    {
        const int K = 3072, N = 9216;
        var buf = new NativeBuffers();
        float* x = buf.Alloc<float>(K, Rnd), y = buf.Alloc<float>(N, _ => 0f);
        void* w = dt switch
        {
            DType.F32 => buf.Alloc<float>((long)N * K, i => Rnd(i) * 0.05f),
            DType.BF16 => buf.Alloc<ushort>((long)N * K, i => FloatConvert.F32ToBF16(Rnd(i) * 0.05f)),
            _ => buf.Alloc<ushort>((long)N * K, i => FloatConvert.F32ToF16(Rnd(i) * 0.05f)),
        };
        string name = $"matvec_{dt.ToString().ToLowerInvariant()}_1x{K}x{N}";
        double bytes = (double)N * K * dt.SizeOf();
        return new BenchInstance(
            () => MatMul.Linear(x, 1, K, w, dt, N, null, y, threads),
            new[] { new BenchMetric(name, bytes, 1e9, "GB/s"), new BenchMetric(name, 2.0 * N * K, 1e9, "GFLOP/s") }, buf);
    }

    /// <summary>
    /// Decode of a small model: 24 different [2816, 1024] weights (277 MB, far beyond L3) applied in turn, as the layers
    /// of a 1024-wide decoder are; short rows (4 KB) are harder to stream than the 12 KB rows of the case above.
    /// </summary>
    private static BenchInstance RotatingMatVec(DType dt, int threads)
    {
        const int K = 1024, N = 2816, Count = 24;
        var buf = new NativeBuffers();
        float* x = buf.Alloc<float>(K, Rnd), y = buf.Alloc<float>(N, _ => 0f);
        var ws = new nint[Count];
        for (int i = 0; i < Count; i++) ws[i] = (nint)buf.Alloc<float>((long)N * K, j => Rnd(j + i) * 0.05f);
        string name = $"matvec_{dt.ToString().ToLowerInvariant()}_1x{K}x{N}_x{Count}";
        return new BenchInstance(
            () => { for (int i = 0; i < Count; i++) MatMul.Linear(x, 1, K, (void*)ws[i], dt, N, null, y, threads); },
            new[] { new BenchMetric(name, (double)Count * N * K * dt.SizeOf(), 1e9, "GB/s") }, buf);
    }

    /// <summary>A prefill chunk through nn.Linear (packed GEMM path, weight widened while packing).</summary>
    private static BenchInstance PrefillLinear(DType dt, int m, int threads, int K = 3072, int N = 9216)
    {
        var buf = new NativeBuffers();
        float* x = buf.Alloc<float>((long)m * K, Rnd), y = buf.Alloc<float>((long)m * N, _ => 0f);
        void* w = dt == DType.F32
            ? buf.Alloc<float>((long)N * K, i => Rnd(i) * 0.05f)
            : buf.Alloc<ushort>((long)N * K, i => dt == DType.BF16 ? FloatConvert.F32ToBF16(Rnd(i) * 0.05f) : FloatConvert.F32ToF16(Rnd(i) * 0.05f));
        return new BenchInstance(
            () => MatMul.Linear(x, m, K, w, dt, N, null, y, threads),
            new[] { new BenchMetric($"linear_{dt.ToString().ToLowerInvariant()}_{m}x{K}x{N}", 2.0 * m * N * K, 1e9, "GFLOP/s") }, buf);
    }

    /// <summary>
    /// CLIP ViT-L/14-336 self-attention: 576 patch tokens (CLS aside), 16 heads of 64, bidirectional. FLOPs = 4·T²·D·H
    /// (QKᵀ and PV), the number to hold against the matmul rate. The attention kernels use all cores (no thread option yet).
    /// </summary>
    private static BenchInstance VitAttention()
    {
        const int T = 576, H = 16, D = 64;
        var g = new AttentionGeometry(1, H, H, T, T, D, 1f / 8f, Causal: false);
        return AttentionCase(g, "attention_vit_T576_H16_D64", new BenchMetric("attention_vit_T576_H16_D64", 4.0 * T * T * D * H, 1e9, "GFLOP/s"));
    }

    /// <summary>One decode step of Phi-3-mini (32 heads of 96) against a 2048-token KV cache: GB/s of K and V read.</summary>
    private static BenchInstance DecodeAttention()
    {
        const int S = 2048, H = 32, D = 96;
        var g = new AttentionGeometry(1, H, H, 1, S, D, 1f / MathF.Sqrt(D), Causal: true);
        return AttentionCase(g, "attention_decode_S2048_H32_D96", new BenchMetric("attention_decode_S2048_H32_D96", 2.0 * S * H * D * sizeof(float), 1e9, "GB/s"));
    }

    private static BenchInstance AttentionCase(AttentionGeometry g, string name, BenchMetric metric)
    {
        var buf = new NativeBuffers();
        float* q = buf.Alloc<float>(g.QueryElements, Rnd), k = buf.Alloc<float>(g.KeyElements, i => Rnd(i + 3)), v = buf.Alloc<float>(g.KeyElements, i => Rnd(i + 5));
        float* o = buf.Alloc<float>(g.QueryElements, _ => 0f), lse = buf.Alloc<float>(g.LseElements, _ => 0f);
        long qn = g.QueryElements, kn = g.KeyElements, ln = g.LseElements;
        return new BenchInstance(() => AttentionKernels.Forward(
                new ReadOnlySpan<float>(q, (int)qn), new ReadOnlySpan<float>(k, (int)kn), new ReadOnlySpan<float>(v, (int)kn), default,
                new Span<float>(o, (int)qn), new Span<float>(lse, (int)ln), g),
            new[] { metric }, buf);
    }

    private static BenchInstance MemCopy(long bytes, int threads)
    {
        var buf = new NativeBuffers();
        byte* src = buf.Alloc<byte>(bytes, i => (byte)i), dst = buf.Alloc<byte>(bytes, _ => 0);
        return new BenchInstance(() =>
        {
            var job = new CopyJob { Src = src, Dst = dst, Bytes = bytes, Chunk = 4 << 20 };
            ParallelRuntime.For((int)((bytes + job.Chunk - 1) / job.Chunk), ref job, threads);
        }, new[] { new BenchMetric($"memcpy_{bytes >> 20}MiB", bytes, 1e9, "GB/s") }, buf);
    }

    private struct CopyJob : IParallelJob
    {
        public byte* Src, Dst;
        public long Bytes, Chunk;
        public void Execute(int i)
        {
            long off = i * Chunk, len = Math.Min(Chunk, Bytes - off);
            Buffer.MemoryCopy(Src + off, Dst + off, len, len);
        }
    }
}
