using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using MedVL.Kernels.Gemm;
using MedVL.Tensors;

namespace MedVL.Kernels;

/// <summary>
/// Matrix products on row-major float32 data (BLAS sgemm semantics transposed to row-major, as cuBLAS-style callers
/// and PyTorch's <c>torch.matmul</c>/<c>torch.addmm</c> expect), and nn.Linear (<c>y = x·Wᵀ + b</c>,
/// W[N,K] in f32/bf16/f16, torch.nn.functional.linear). Work is spread over <see cref="ParallelRuntime"/>;
/// <c>maxThreads &lt;= 0</c> means all processors.
/// </summary>
public static unsafe class MatMul
{
    /// <summary>At or below this many rows, <see cref="Linear(float*, int, int, void*, DType, int, float*, float*, int)"/> streams the weight
    /// (matrix-vector kernel) instead of packing it for the GEMM.</summary>
    public const int GemvMaxRows = 16;

    // ---------------------------------------------------------------- GEMM

    /// <summary>
    /// C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C, all row-major with leading dimensions (row strides)
    /// lda, ldb, ldc. op(A) = A (stored M×K) or Aᵀ (stored K×M) when <paramref name="transA"/>; likewise B.
    /// beta == 0 overwrites C without reading it (NaNs in C do not propagate), as BLAS.
    /// </summary>
    public static void Gemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc, int maxThreads = 0)
    {
        CheckGemm(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            Gemm(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, maxThreads);
    }

    /// <inheritdoc cref="Gemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int, int)"/>
    public static void Gemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int maxThreads = 0)
    {
        // Pointer form: sizes and leading dimensions are checked, buffer lengths are the caller's responsibility.
        CheckGemm(transA, transB, m, n, k, long.MaxValue, lda, long.MaxValue, ldb, long.MaxValue, ldc);
        CheckPointers(m, n, k, a, b, c);
        GemmCore(transA, transB, m, n, k, alpha, a, lda, b, DType.F32, ldb, beta, c, ldc, maxThreads, GemmMicroKernels.BestIsa);
    }

    private static void CheckPointers(int m, int n, int k, void* a, void* b, void* c)
    {
        if (m > 0 && n > 0 && c == null) throw new ArgumentNullException("c");
        if (m > 0 && n > 0 && k > 0 && (a == null || b == null)) throw new ArgumentNullException(a == null ? "a" : "b");
    }

    /// <summary>
    /// <paramref name="batchCount"/> independent GEMMs; problem i reads A at a + i·strideA, B at b + i·strideB and
    /// writes C at c + i·strideC (cublasSgemmStridedBatched / torch.bmm semantics; a stride of 0 broadcasts).
    /// Many small problems are spread over threads one problem each; large ones are parallel inside.
    /// </summary>
    public static void GemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, long strideA, ReadOnlySpan<float> b, int ldb, long strideB, float beta,
        Span<float> c, int ldc, long strideC, int batchCount, int maxThreads = 0)
    {
        if (batchCount < 0) throw new ArgumentOutOfRangeException(nameof(batchCount), batchCount, "batchCount must be >= 0");
        if (batchCount == 0) return;
        if (strideA < 0 || strideB < 0 || strideC < 0) throw new ArgumentException("batch strides must be >= 0");
        long last = batchCount - 1;
        CheckGemm(transA, transB, m, n, k, a.Length - last * strideA, lda, b.Length - last * strideB, ldb, c.Length - last * strideC, ldc);
        if (batchCount > 1 && strideC < (long)(m - 1) * ldc + n && m > 0 && n > 0)
            throw new ArgumentException($"strideC {strideC} makes output batches overlap (need >= {(long)(m - 1) * ldc + n})", nameof(strideC));
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            GemmStridedBatched(transA, transB, m, n, k, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, strideC, batchCount, maxThreads);
    }

    /// <inheritdoc cref="GemmStridedBatched(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, long, ReadOnlySpan{float}, int, long, float, Span{float}, int, long, int, int)"/>
    public static void GemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, long strideA, float* b, int ldb, long strideB, float beta,
        float* c, int ldc, long strideC, int batchCount, int maxThreads = 0)
    {
        if (batchCount < 0) throw new ArgumentOutOfRangeException(nameof(batchCount), batchCount, "batchCount must be >= 0");
        if (strideA < 0 || strideB < 0 || strideC < 0) throw new ArgumentException("batch strides must be >= 0");
        CheckGemm(transA, transB, m, n, k, long.MaxValue, lda, long.MaxValue, ldb, long.MaxValue, ldc);
        CheckPointers(m, n, k, a, b, c);
        GemmStridedBatchedCore(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batchCount, maxThreads, GemmMicroKernels.BestIsa);
    }

    internal static void GemmStridedBatchedCore(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, long strideA, float* b, int ldb, long strideB, float beta,
        float* c, int ldc, long strideC, int batchCount, int maxThreads, GemmIsa isa)
    {
        if (batchCount <= 0) return;
        int threads = ParallelRuntime.InParallelRegion ? 1 : ParallelRuntime.ResolveThreads(maxThreads);
        double flops = 2.0 * m * n * k;
        // Below ~4 MFLOP a problem is too small to split well; run whole problems on each thread instead.
        if (threads > 1 && batchCount > 1 && flops < 4e6)
        {
            var job = new BatchJob
            {
                TransA = transA, TransB = transB, M = m, N = n, K = k, Alpha = alpha, Beta = beta,
                A = a, Lda = lda, StrideA = strideA, B = b, Ldb = ldb, StrideB = strideB, C = c, Ldc = ldc, StrideC = strideC, Isa = isa,
            };
            ParallelRuntime.For(batchCount, ref job, threads);
            return;
        }
        for (int i = 0; i < batchCount; i++)
            GemmCore(transA, transB, m, n, k, alpha, a + i * strideA, lda, b + i * strideB, DType.F32, ldb, beta, c + i * strideC, ldc, threads, isa);
    }

    private struct BatchJob : IParallelJob
    {
        public bool TransA, TransB;
        public int M, N, K;
        public float Alpha, Beta;
        public float* A, B, C;
        public int Lda, Ldb, Ldc;
        public long StrideA, StrideB, StrideC;
        public GemmIsa Isa;

        public void Execute(int i) =>
            GemmCore(TransA, TransB, M, N, K, Alpha, A + i * StrideA, Lda, B + i * StrideB, DType.F32, Ldb, Beta, C + i * StrideC, Ldc, 1, Isa);
    }

    internal static void GemmCore(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, void* b, DType bType, int ldb, float beta, float* c, int ldc, int maxThreads, GemmIsa isa)
    {
        // Few rows against a transposed B (decode-time q·Kᵀ, x·Wᵀ): stream B once with the matrix-vector kernel
        // instead of packing it. Only for plain C = op(A)·op(B) (alpha 1, beta 0), which is all it computes.
        if (m > 0 && m <= GemvMaxRows && transB && !transA && alpha == 1f && beta == 0f && k > 0 && isa == GemmIsa.Avx512)
        {
            GemvKernels.Run(bType, a, lda, m, b, ldb, n, k, null, c, ldc, maxThreads);
            return;
        }
        var prob = new GemmProblem
        {
            M = m, N = n, K = k, Alpha = alpha, Beta = beta,
            A = a, Lda = lda, TransA = transA, B = b, Ldb = ldb, TransB = transB, BType = bType, C = c, Ldc = ldc,
        };
        GemmDriver.Run(prob, isa, maxThreads);
    }

    // ---------------------------------------------------------------- Linear

    /// <summary>
    /// y[M,N] = x[M,K] · W[N,K]ᵀ + bias[N] (torch.nn.functional.linear), float32 weight. <paramref name="bias"/> may be empty.
    /// x, W and y are dense row-major.
    /// </summary>
    public static void Linear(ReadOnlySpan<float> x, int m, int k, ReadOnlySpan<float> weight, int n, ReadOnlySpan<float> bias, Span<float> y, int maxThreads = 0)
    {
        CheckLinear(x.Length, m, k, weight.Length, n, bias.Length, y.Length);
        fixed (float* px = x) fixed (float* pw = weight) fixed (float* pb = bias) fixed (float* py = y)
            Linear(px, m, k, pw, DType.F32, n, bias.IsEmpty ? null : pb, py, maxThreads);
    }

    /// <summary>
    /// y = x · Wᵀ + bias with W[N,K] stored as bfloat16 or float16 bits (<paramref name="weightType"/> = BF16 or F16).
    /// Weights are widened to float32 inside the kernels; no float32 copy of W is made.
    /// </summary>
    public static void Linear(ReadOnlySpan<float> x, int m, int k, ReadOnlySpan<ushort> weight, DType weightType, int n, ReadOnlySpan<float> bias, Span<float> y, int maxThreads = 0)
    {
        if (weightType is not (DType.BF16 or DType.F16))
            throw new ArgumentException($"weightType must be BF16 or F16 for a 16-bit weight span, got {weightType}", nameof(weightType));
        CheckLinear(x.Length, m, k, weight.Length, n, bias.Length, y.Length);
        fixed (float* px = x) fixed (ushort* pw = weight) fixed (float* pb = bias) fixed (float* py = y)
            Linear(px, m, k, pw, weightType, n, bias.IsEmpty ? null : pb, py, maxThreads);
    }

    /// <summary>
    /// Pointer form of Linear: x[M,K], W[N,K] of <paramref name="weightType"/> (F32, BF16, F16), bias[N] or null, y[M,N].
    /// M ≤ <see cref="GemvMaxRows"/> uses the weight-streaming matrix-vector kernel; larger M the packed GEMM.
    /// </summary>
    public static void Linear(float* x, int m, int k, void* weight, DType weightType, int n, float* bias, float* y, int maxThreads = 0)
    {
        CheckLinear(long.MaxValue, m, k, long.MaxValue, n, 0, long.MaxValue);
        if (m > 0 && n > 0 && (y == null || (k > 0 && (x == null || weight == null))))
            throw new ArgumentNullException(y == null ? "y" : x == null ? "x" : "weight");
        LinearCore(x, m, k, weight, weightType, n, bias, y, maxThreads, LinearPath.Auto, GemmMicroKernels.BestIsa);
    }

    /// <summary>Largest M of the unpacked dot-product kernel (<see cref="DotGemm"/>); above it the packed GEMM wins
    /// because x no longer fits in L2 while a band of W is swept over it.</summary>
    public const int DotMaxRows = 256;
    /// <summary>Longest weight row (bytes) for the dot-product kernel: its 6-row band must stay in L1/L2 while the M rows
    /// sweep over it. Measured (bench kernels, 2-core EPYC, M = 128): f32 K = 1024 +20% over the packed GEMM but K = 3072
    /// −15%; bf16 K = 3072 +20%.</summary>
    private const int DotMaxRowBytes = 8192;

    internal enum LinearPath { Auto, Gemv, Dot, Gemm }

    internal static void LinearCore(float* x, int m, int k, void* weight, DType weightType, int n, float* bias, float* y, int maxThreads, LinearPath path, GemmIsa isa)
    {
        if (weightType is not (DType.F32 or DType.BF16 or DType.F16))
            throw new NotSupportedException($"Linear weight dtype {weightType} is not supported (expected F32, BF16 or F16).");
        if (m <= 0 || n <= 0) return;
        if (path == LinearPath.Auto)
            path = !Avx512F.IsSupported || isa != GemmIsa.Avx512 ? LinearPath.Gemm
                : m <= GemvMaxRows ? LinearPath.Gemv
                : m <= DotMaxRows && k >= 64 && k * weightType.SizeOf() <= DotMaxRowBytes ? LinearPath.Dot
                : LinearPath.Gemm;
        if (path == LinearPath.Dot)
        {
            if (!Avx512F.IsSupported) throw new PlatformNotSupportedException("The dot-product GEMM kernel needs AVX-512F.");
            DotGemm.Run(weightType, x, m, k, weight, n, bias, y, maxThreads);
            return;
        }
        if (path == LinearPath.Gemv)
        {
            if (!Avx512F.IsSupported) throw new PlatformNotSupportedException("The GEMV kernel needs AVX-512F.");
            GemvKernels.Run(weightType, x, k, m, weight, k, n, k, bias, y, n, maxThreads);
            return;
        }
        float beta = 0f;
        if (bias != null)
        {
            var b = new ReadOnlySpan<float>(bias, n);
            for (int i = 0; i < m; i++) b.CopyTo(new Span<float>(y + (nint)i * n, n));
            beta = 1f;
        }
        GemmCore(false, true, m, n, k, 1f, x, k, weight, weightType, k, beta, y, n, maxThreads, isa);
    }

    // ---------------------------------------------------------------- argument checks

    internal static long RequiredLength(bool trans, int rows, int cols, int ld)
    {
        // Stored matrix is rows×cols of op(X) when not transposed, cols×rows when transposed.
        int storedRows = trans ? cols : rows, storedCols = trans ? rows : cols;
        if (storedRows == 0 || storedCols == 0) return 0;
        return (long)(storedRows - 1) * ld + storedCols;
    }

    private static void CheckGemm(bool transA, bool transB, int m, int n, int k, long aLen, int lda, long bLen, int ldb, long cLen, int ldc)
    {
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, "M must be >= 0");
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "N must be >= 0");
        if (k < 0) throw new ArgumentOutOfRangeException(nameof(k), k, "K must be >= 0");
        int aCols = transA ? m : k, bCols = transB ? k : n;
        if (lda < Math.Max(1, aCols)) throw new ArgumentOutOfRangeException(nameof(lda), lda, $"lda must be >= {Math.Max(1, aCols)} (columns of the stored A)");
        if (ldb < Math.Max(1, bCols)) throw new ArgumentOutOfRangeException(nameof(ldb), ldb, $"ldb must be >= {Math.Max(1, bCols)} (columns of the stored B)");
        if (ldc < Math.Max(1, n)) throw new ArgumentOutOfRangeException(nameof(ldc), ldc, $"ldc must be >= {Math.Max(1, n)} (N)");
        long needA = RequiredLength(transA, m, k, lda), needB = RequiredLength(transB, k, n, ldb), needC = RequiredLength(false, m, n, ldc);
        if (aLen < needA) throw new ArgumentException($"A has {aLen} elements, the {(transA ? "transposed " : "")}operand needs {needA} (M={m}, K={k}, lda={lda})", "a");
        if (bLen < needB) throw new ArgumentException($"B has {bLen} elements, the {(transB ? "transposed " : "")}operand needs {needB} (K={k}, N={n}, ldb={ldb})", "b");
        if (cLen < needC) throw new ArgumentException($"C has {cLen} elements, needs {needC} (M={m}, N={n}, ldc={ldc})", "c");
    }

    private static void CheckLinear(long xLen, int m, int k, long wLen, int n, long biasLen, long yLen)
    {
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, "M must be >= 0");
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "N (out_features) must be >= 0");
        if (k < 0) throw new ArgumentOutOfRangeException(nameof(k), k, "K (in_features) must be >= 0");
        if (xLen < (long)m * k) throw new ArgumentException($"x has {xLen} elements, expected M*K = {(long)m * k}", "x");
        if (wLen < (long)n * k) throw new ArgumentException($"weight has {wLen} elements, expected N*K = {(long)n * k} ([out_features, in_features])", "weight");
        if (biasLen != 0 && biasLen < n) throw new ArgumentException($"bias has {biasLen} elements, expected N = {n} or none", "bias");
        if (yLen < (long)m * n) throw new ArgumentException($"y has {yLen} elements, expected M*N = {(long)m * n}", "y");
    }
}
