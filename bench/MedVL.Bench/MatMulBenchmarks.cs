using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Bench;

/// <summary>Square float32 GEMM (C = A·B) through <see cref="MatMul.Gemm(bool, bool, int, int, int, float, float*, int, float*, int, float, float*, int, int)"/>.
/// GFLOP/s = 2·N³ / mean time. Run: dotnet run -c Release --project bench/MedVL.Bench -- --filter '*MatMulGemm*'</summary>
[MemoryDiagnoser]
public unsafe class MatMulGemmBenchmarks
{
    [Params(256, 512, 1024)] public int N;
    [Params(0, 1)] public int Threads; // 0 = all processors

    private float* _a, _b, _c;

    [GlobalSetup]
    public void Setup()
    {
        nuint bytes = (nuint)(N * N * sizeof(float));
        _a = (float*)NativeMemory.AlignedAlloc(bytes, 64); _b = (float*)NativeMemory.AlignedAlloc(bytes, 64); _c = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        var r = new Random(1);
        for (int i = 0; i < N * N; i++) { _a[i] = r.NextSingle() - 0.5f; _b[i] = r.NextSingle() - 0.5f; }
    }

    [GlobalCleanup]
    public void Cleanup() { NativeMemory.AlignedFree(_a); NativeMemory.AlignedFree(_b); NativeMemory.AlignedFree(_c); }

    [Benchmark]
    public void Gemm() => MatMul.Gemm(false, false, N, N, N, 1f, _a, N, _b, N, 0f, _c, N, Threads);

    [Benchmark]
    public void GemmTransposedB() => MatMul.Gemm(false, true, N, N, N, 1f, _a, N, _b, N, 0f, _c, N, Threads);
}

/// <summary>nn.Linear y = x·Wᵀ (W[9216, 3072], the decoder MLP up-projection shape) for M = 1 (decode, GEMV),
/// M = 8 (small batch) and M = 64 (prefill chunk, packed GEMM), f32 / bf16 / f16 weights.</summary>
[MemoryDiagnoser]
public unsafe class MatMulLinearBenchmarks
{
    private const int K = 3072, N = 9216;
    [Params(1, 8, 64)] public int M;
    [Params(DType.F32, DType.BF16, DType.F16)] public DType WeightType;

    private float* _x, _y;
    private void* _w;

    [GlobalSetup]
    public void Setup()
    {
        _x = (float*)NativeMemory.AlignedAlloc((nuint)(M * K * 4), 64);
        _y = (float*)NativeMemory.AlignedAlloc((nuint)(M * N * 4), 64);
        _w = NativeMemory.AlignedAlloc((nuint)((long)N * K * WeightType.SizeOf()), 64);
        var r = new Random(2);
        for (int i = 0; i < M * K; i++) _x[i] = r.NextSingle() - 0.5f;
        for (long i = 0; i < (long)N * K; i++)
        {
            float v = (r.NextSingle() - 0.5f) * 0.05f;
            if (WeightType == DType.F32) ((float*)_w)[i] = v;
            else ((ushort*)_w)[i] = WeightType == DType.BF16 ? FloatConvert.F32ToBF16(v) : FloatConvert.F32ToF16(v);
        }
    }

    [GlobalCleanup]
    public void Cleanup() { NativeMemory.AlignedFree(_x); NativeMemory.AlignedFree(_y); NativeMemory.AlignedFree(_w); }

    [Benchmark]
    public void Linear() => MatMul.Linear(_x, M, K, _w, WeightType, N, null, _y);
}
