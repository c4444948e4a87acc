using MedVL.Kernels;
using MedVL.Kernels.Gemm;
using MedVL.Kernels.Scalar;
using MedVL.Tensors;
using static MedVL.Tests.Kernels.MatMulTestUtil;

namespace MedVL.Tests.Kernels;

public unsafe class MatMulLinearTests
{
    public static IEnumerable<object[]> Cases()
    {
        foreach (var path in new[] { MatMul.LinearPath.Gemv, MatMul.LinearPath.Dot, MatMul.LinearPath.Gemm })
            foreach (var dt in new[] { DType.F32, DType.BF16, DType.F16 })
            {
                if (path is MatMul.LinearPath.Gemv or MatMul.LinearPath.Dot && !System.Runtime.Intrinsics.X86.Avx512F.IsSupported) continue;
                yield return new object[] { path.ToString(), dt };
            }
    }

    private static void CheckOne(MatMul.LinearPath path, DType dt, int m, int n, int k, bool withBias, int seed, GemmIsa isa, int threads = 0)
    {
        var x = Random(m * k, seed);
        var wf = Random(n * k, seed + 1, 0.5f);
        var bias = withBias ? Random(n, seed + 2) : Array.Empty<float>();
        var expected = new float[m * n];
        var actual = Enumerable.Repeat(float.NaN, m * n).ToArray();
        ushort[] bits = dt switch
        {
            DType.BF16 => wf.Select(FloatConvert.F32ToBF16).ToArray(),
            DType.F16 => wf.Select(FloatConvert.F32ToF16).ToArray(),
            _ => Array.Empty<ushort>(),
        };
        if (dt == DType.F32) MatMulReference.Linear(x, m, k, wf, n, bias, expected);
        else MatMulReference.Linear(x, m, k, bits, dt, n, bias, expected);
        fixed (float* px = x) fixed (float* pwf = wf) fixed (ushort* pwb = bits) fixed (float* pbias = bias) fixed (float* py = actual)
        {
            void* w = dt == DType.F32 ? pwf : pwb;
            MatMul.LinearCore(px, m, k, w, dt, n, withBias ? pbias : null, py, threads, path, isa);
        }
        AssertClose(expected, actual, 1e-5, $"{path} {dt} m={m} n={n} k={k} bias={withBias}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void OddSizes_MatchScalarReference(string pathName, DType dt)
    {
        var path = Enum.Parse<MatMul.LinearPath>(pathName);
        int seed = 1;
        int[] ms = { 1, 2, 3, 4, 5, 7, 16 };
        int[] ns = { 1, 3, 4, 5, 17, 65 };
        int[] ks = { 1, 15, 16, 17, 31, 33, 64, 100 };
        var r = new Random(3);
        foreach (int m in ms)
            foreach (int n in ns)
            {
                int k = ks[r.Next(ks.Length)];
                CheckOne(path, dt, m, n, k, withBias: (seed & 1) == 0, seed++, GemmMicroKernels.BestIsa);
            }
        foreach (int k in ks) CheckOne(path, dt, 3, 9, k, true, seed++, GemmMicroKernels.BestIsa);
        CheckOne(path, dt, 33, 130, 300, true, seed++, GemmMicroKernels.BestIsa);
    }

    [Fact]
    public void GemmPath_AllIsas_BF16AndF16()
    {
        foreach (var isa in new[] { GemmIsa.Scalar, GemmIsa.Avx2, GemmIsa.Avx512 })
        {
            if (isa == GemmIsa.Avx2 && !System.Runtime.Intrinsics.X86.Fma.IsSupported) continue;
            if (isa == GemmIsa.Avx512 && !System.Runtime.Intrinsics.X86.Avx512F.IsSupported) continue;
            CheckOne(MatMul.LinearPath.Gemm, DType.BF16, 19, 37, 41, true, 5, isa);
            CheckOne(MatMul.LinearPath.Gemm, DType.F16, 19, 37, 41, false, 6, isa);
        }
    }

    [Fact]
    public void Dot_PrefillSizes_AreTheAutoPathAndSplitOverThreads()
    {
        // 17..256 rows go to the unpacked dot-product kernel; odd N and K exercise the aliased edge rows and the K tail.
        CheckOne(MatMul.LinearPath.Auto, DType.F32, 17, 131, 1000, true, 11, GemmMicroKernels.BestIsa, 2);
        CheckOne(MatMul.LinearPath.Auto, DType.BF16, 128, 77, 96, false, 12, GemmMicroKernels.BestIsa, 2);
        CheckOne(MatMul.LinearPath.Auto, DType.F16, 255, 13, 70, true, 13, GemmMicroKernels.BestIsa, 3);
        CheckOne(MatMul.LinearPath.Dot, DType.F32, 300, 7, 1, true, 14, GemmMicroKernels.BestIsa, 2);
    }

    [Fact]
    public void Gemv_ManyRows_SplitOverThreads()
    {
        CheckOne(MatMul.LinearPath.Auto, DType.BF16, 1, 1037, 515, true, 9, GemmMicroKernels.BestIsa, 2);
        CheckOne(MatMul.LinearPath.Auto, DType.F32, 1, 2051, 64, false, 10, GemmMicroKernels.BestIsa, 3);
        CheckOne(MatMul.LinearPath.Auto, DType.F16, 9, 777, 130, true, 11, GemmMicroKernels.BestIsa, 0);
    }

    [Fact]
    public void F16VectorWidening_MatchesHalf_ForAllBitPatterns()
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return; // the vector loader is AVX-512 only
        var all = new ushort[65536];
        for (int i = 0; i < all.Length; i++) all[i] = (ushort)i;
        fixed (ushort* p = all)
            for (int i = 0; i < all.Length; i += 16)
            {
                var v = F16VecLoader.Load16(p, i);
                for (int j = 0; j < 16; j++)
                {
                    float want = (float)BitConverter.UInt16BitsToHalf((ushort)(i + j));
                    float got = v[j];
                    if (float.IsNaN(want)) Assert.True(float.IsNaN(got), $"bits {i + j:X4}");
                    else Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(got), $"bits {i + j:X4}: want {want}, got {got}");
                }
            }
    }

    [Fact]
    public void BadArguments_ThrowClearErrors()
    {
        var e = Assert.Throws<ArgumentException>(() => MatMul.Linear(new float[6], 2, 3, new float[5], 2, default, new float[4]));
        Assert.Contains("weight has 5 elements", e.Message);
        e = Assert.Throws<ArgumentException>(() => MatMul.Linear(new float[6], 2, 3, new ushort[6], DType.F32, 2, default, new float[4]));
        Assert.Equal("weightType", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => MatMul.Linear(new float[6], 2, 3, new float[6], 2, new float[1], new float[4]));
        Assert.Contains("bias", e.Message);
    }

    public static IEnumerable<object[]> TorchCases()
    {
        foreach (var dt in new[] { "f32", "bf16", "f16" })
            foreach (int m in new[] { 1, 5, 40 })
                yield return new object[] { dt, m };
    }

    [Theory]
    [MemberData(nameof(TorchCases))]
    public void PyTorch_Linear(string dt, int m)
    {
        var (x, xs) = MatMulTestNpy.Read<float>(MatMulTestNpy.Fixture($"matmul_linear_x_m{m}.npy"));
        var (want, ys) = MatMulTestNpy.Read<float>(MatMulTestNpy.Fixture($"matmul_linear_out_{dt}_m{m}.npy"));
        var (bias, _) = MatMulTestNpy.Read<float>(MatMulTestNpy.Fixture("matmul_linear_bias.npy"));
        int k = xs[1], n = ys[1];
        var y = new float[m * n];
        if (dt == "f32")
        {
            var (w, _) = MatMulTestNpy.Read<float>(MatMulTestNpy.Fixture("matmul_linear_w_f32.npy"));
            MatMul.Linear(x, m, k, w, n, bias, y);
        }
        else
        {
            var (w, _) = MatMulTestNpy.Read<ushort>(MatMulTestNpy.Fixture($"matmul_linear_w_{dt}.npy"));
            MatMul.Linear(x, m, k, w, dt == "bf16" ? DType.BF16 : DType.F16, n, dt == "f16" ? default : bias, y);
        }
        AssertClose(want, y, 1e-4, $"torch F.linear {dt} m={m}");
    }
}
