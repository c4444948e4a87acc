using MedVL.Kernels;
using MedVL.Kernels.Gemm;
using MedVL.Kernels.Scalar;
using static MedVL.Tests.Kernels.MatMulTestUtil;

namespace MedVL.Tests.Kernels;

public unsafe class MatMulGemmTests
{
    private static readonly int[] Sizes = { 1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129 };

    public static IEnumerable<object[]> Isas()
    {
        yield return new object[] { nameof(GemmIsa.Scalar) };
        if (System.Runtime.Intrinsics.X86.Fma.IsSupported) yield return new object[] { nameof(GemmIsa.Avx2) };
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) yield return new object[] { nameof(GemmIsa.Avx512) };
    }

    private static void CheckOne(GemmIsa isa, bool ta, bool tb, int m, int n, int k, float alpha, float beta, int pad, int seed, int threads = 0)
    {
        int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
        var a = Random((ta ? k : m) * lda, seed);
        var b = Random((tb ? n : k) * ldb, seed + 1);
        var c0 = Random(m * ldc, seed + 2);
        var expected = (float[])c0.Clone();
        var actual = (float[])c0.Clone();
        MatMulReference.Gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc);
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = actual)
            MatMul.GemmCore(ta, tb, m, n, k, alpha, pa, lda, pb, MedVL.Tensors.DType.F32, ldb, beta, pc, ldc, threads, isa);
        AssertClose(expected, actual, 1e-5, $"{isa} ta={ta} tb={tb} m={m} n={n} k={k} alpha={alpha} beta={beta} pad={pad}");
        // Padding between rows must be untouched.
        for (int i = 0; i < m; i++)
            for (int j = n; j < ldc; j++)
                Assert.Equal(c0[i * ldc + j], actual[i * ldc + j]);
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void OddSizes_AllTransposes_MatchScalarReference(string isaName)
    {
        var isa = Enum.Parse<GemmIsa>(isaName);
        var r = new Random(7);
        int seed = 100;
        foreach (int s in Sizes)
        {
            // each size appears as M, N and K, with the other two drawn from the list
            for (int role = 0; role < 3; role++)
            {
                int m = role == 0 ? s : Sizes[r.Next(Sizes.Length)];
                int n = role == 1 ? s : Sizes[r.Next(Sizes.Length)];
                int k = role == 2 ? s : Sizes[r.Next(Sizes.Length)];
                bool ta = (seed & 1) != 0, tb = (seed & 2) != 0;
                CheckOne(isa, ta, tb, m, n, k, 1f, 0f, pad: seed % 3, seed: seed++);
            }
        }
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                CheckOne(isa, ta, tb, 65, 129, 33, 1f, 0f, 0, seed++);
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void AlphaBeta_AndBlockBoundaries(string isaName)
    {
        var isa = Enum.Parse<GemmIsa>(isaName);
        CheckOne(isa, false, false, 17, 31, 5, 0.5f, 2f, 1, 1);
        CheckOne(isa, true, true, 33, 65, 15, -1.25f, 1f, 0, 2);
        CheckOne(isa, false, true, 7, 127, 129, 2f, -0.5f, 3, 3);
        // K crosses the KC=256 slice (beta applied only once), N crosses NC=2048, M crosses several MC tiles.
        CheckOne(isa, false, false, 13, 70, GemmDriver.KC * 2 + 3, 1f, 0.25f, 0, 4);
        CheckOne(isa, true, false, 3, GemmDriver.NC + 77, 9, 1f, 1f, 2, 5);
        CheckOne(isa, false, true, GemmDriver.MC * 3 + 5, 40, 20, 1f, 0f, 0, 6);
    }

    [Fact]
    public void BetaZero_OverwritesNaN_AndAlphaZero_ScalesOnly()
    {
        int m = 9, n = 20, k = 11;
        var a = Random(m * k, 1); var b = Random(k * n, 2);
        var c = Enumerable.Repeat(float.NaN, m * n).ToArray();
        var expected = new float[m * n];
        MatMulReference.Gemm(false, false, m, n, k, 1f, a, k, b, n, 0f, expected, n);
        MatMul.Gemm(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n);
        AssertClose(expected, c, 1e-5, "beta=0 over NaN");

        var c2 = Random(m * n, 3);
        var want = c2.Select(v => v * 3f).ToArray();
        MatMul.Gemm(false, false, m, n, k, 0f, a, k, b, n, 3f, c2, n);
        Assert.Equal(want, c2);
        var c3 = Random(m * n, 4);
        MatMul.Gemm(false, false, m, n, 0, 1f, a, 1, b, n, 0f, c3, n); // K = 0: C = beta*C = 0
        Assert.All(c3, v => Assert.Equal(0f, v));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void LargerSquare_ThreadCounts_MatchReference(int threads)
    {
        CheckOne(GemmMicroKernels.BestIsa, false, false, 200, 190, 300, 1f, 0f, 0, 11, threads);
        CheckOne(GemmMicroKernels.BestIsa, true, true, 150, 301, 257, 1f, 0.5f, 1, 12, threads);
    }

    [Theory]
    [InlineData(false, false, 5, 7, 9, 4)]      // small problems: one whole problem per thread
    [InlineData(true, true, 17, 33, 65, 3)]
    [InlineData(false, true, 130, 140, 150, 2)] // large problems: parallel inside each
    public void StridedBatched_MatchesReference(bool ta, bool tb, int m, int n, int k, int batch)
    {
        int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
        long sa = (long)m * k + 3, sb = (long)k * n + 1, sc = (long)m * n + 2;
        var a = Random((int)(sa * batch), 1); var b = Random((int)(sb * batch), 2); var c = Random((int)(sc * batch), 3);
        var expected = (float[])c.Clone();
        MatMulReference.GemmStridedBatched(ta, tb, m, n, k, 1.5f, a, lda, sa, b, ldb, sb, 0.5f, expected, ldc, sc, batch);
        MatMul.GemmStridedBatched(ta, tb, m, n, k, 1.5f, a, lda, sa, b, ldb, sb, 0.5f, c, ldc, sc, batch);
        AssertClose(expected, c, 1e-5, "batched");
    }

    [Fact]
    public void StridedBatched_BroadcastB_WithStrideZero()
    {
        int m = 4, n = 5, k = 6, batch = 3;
        var a = Random(m * k * batch, 1); var b = Random(k * n, 2);
        var c = new float[m * n * batch]; var expected = new float[m * n * batch];
        MatMulReference.GemmStridedBatched(false, false, m, n, k, 1f, a, k, m * k, b, n, 0, 0f, expected, n, m * n, batch);
        MatMul.GemmStridedBatched(false, false, m, n, k, 1f, a, k, m * k, b, n, 0, 0f, c, n, m * n, batch);
        AssertClose(expected, c, 1e-5, "broadcast B");
    }

    [Fact]
    public void BadArguments_ThrowClearErrors()
    {
        var a = new float[10]; var b = new float[12]; var c = new float[12];
        var e1 = Assert.Throws<ArgumentException>(() => MatMul.Gemm(false, false, 3, 4, 4, 1f, a, 4, b, 4, 0f, c, 4));
        Assert.Contains("A has 10 elements", e1.Message);
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.Gemm(false, false, 2, 4, 3, 1f, a, 2, b, 4, 0f, c, 4));
        Assert.Equal("lda", e2.ParamName);
        var e3 = Assert.Throws<ArgumentException>(() => MatMul.Gemm(false, true, 2, 5, 3, 1f, a, 3, b, 3, 0f, c, 5));
        Assert.Contains("B has 12 elements", e3.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.Gemm(false, false, -1, 4, 3, 1f, a, 3, b, 4, 0f, c, 4));
        var e4 = Assert.Throws<ArgumentException>(() => MatMul.GemmStridedBatched(false, false, 2, 2, 2, 1f, a, 2, 4, b, 2, 4, 0f, c, 2, 1, 2));
        Assert.Contains("overlap", e4.Message);
    }

    [Fact]
    public void PyTorch_Addmm_TransposedA()
    {
        var (at, _) = MatMulTestNpy.Read<float>(MatMulTestNpy.Fixture("matmul_addmm_at.npy"));
        var (b, bs) = MatMulTestNpy.Read<float>(MatMulTestNpy.Fixture("matmul_addmm_b.npy"));
        var (c, cs) = MatMulTestNpy.Read<float>(MatMulTestNpy.Fixture("matmul_addmm_c0.npy"));
        var (want, _) = MatMulTestNpy.Read<float>(MatMulTestNpy.Fixture("matmul_addmm_out.npy"));
        int m = cs[0], n = cs[1], k = bs[0];
        MatMul.Gemm(true, false, m, n, k, 0.75f, at, m, b, n, -0.5f, c, n);
        AssertClose(want, c, 1e-4, "torch addmm");
    }

    [Fact]
    public void PyTorch_Bmm_TransposedB()
    {
        var (a, ash) = MatMulTestNpy.Read<float>(MatMulTestNpy.Fixture("matmul_bmm_a.npy"));
        var (bt, bsh) = MatMulTestNpy.Read<float>(MatMulTestNpy.Fixture("matmul_bmm_bt.npy"));
        var (want, _) = MatMulTestNpy.Read<float>(MatMulTestNpy.Fixture("matmul_bmm_out.npy"));
        int batch = ash[0], m = ash[1], k = ash[2], n = bsh[1];
        var c = new float[batch * m * n];
        MatMul.GemmStridedBatched(false, true, m, n, k, 1f, a, k, m * k, bt, k, n * k, 0f, c, n, m * n, batch);
        AssertClose(want, c, 1e-4, "torch bmm");
    }
}
