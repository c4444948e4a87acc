using MedVL.Kernels;

namespace MedVL.Tests.Kernels;

public unsafe class MatMulParallelRuntimeTests
{
    private struct SquareJob : IParallelJob
    {
        public long* Out;
        public void Execute(int i) => Out[i] = (long)i * i + Environment.CurrentManagedThreadId * 0;
    }

    private struct NestedJob : IParallelJob
    {
        public long* Out;
        public int Inner;
        public void Execute(int i)
        {
            var inner = new SquareJob { Out = Out + (long)i * Inner };
            ParallelRuntime.For(Inner, ref inner); // nested: must run inline, not deadlock
        }
    }

    private struct ThrowJob : IParallelJob
    {
        public void Execute(int i)
        {
            if (i == 37) throw new InvalidOperationException("boom 37");
        }
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(7, 0)]
    [InlineData(1000, 0)]
    [InlineData(1000, 1)]
    [InlineData(1000, 2)]
    [InlineData(1000, 5)]
    public void EveryIndexRunsExactlyOnce(int count, int threads)
    {
        var buf = new long[count];
        fixed (long* p = buf)
        {
            for (int rep = 0; rep < 50; rep++)
            {
                Array.Fill(buf, -1);
                var job = new SquareJob { Out = p };
                ParallelRuntime.For(count, ref job, threads);
                for (int i = 0; i < count; i++) Assert.Equal((long)i * i, buf[i]);
            }
        }
    }

    [Fact]
    public void NestedCalls_RunInline()
    {
        var buf = new long[64 * 32];
        fixed (long* p = buf)
        {
            var job = new NestedJob { Out = p, Inner = 32 };
            ParallelRuntime.For(64, ref job);
            for (int i = 0; i < 64; i++)
                for (int j = 0; j < 32; j++) Assert.Equal((long)j * j, buf[i * 32 + j]);
        }
    }

    [Fact]
    public void ConcurrentCallers_EachGetCorrectResults()
    {
        const int callers = 4, count = 513;
        var results = new long[callers][];
        var threads = Enumerable.Range(0, callers).Select(t => new Thread(() =>
        {
            var buf = new long[count];
            fixed (long* p = buf)
                for (int rep = 0; rep < 200; rep++)
                {
                    var job = new SquareJob { Out = p };
                    ParallelRuntime.For(count, ref job);
                }
            results[t] = buf;
        })).ToArray();
        foreach (var t in threads) t.Start();
        Assert.All(threads, t => Assert.True(t.Join(TimeSpan.FromSeconds(60)), "deadlock"));
        foreach (var r in results)
            for (int i = 0; i < count; i++) Assert.Equal((long)i * i, r[i]);
    }

    [Fact]
    public void ConcurrentGemms_FromTwoThreads_MatchReference()
    {
        int m = 70, n = 90, k = 110;
        var a = MatMulTestUtil.Random(m * k, 1); var b = MatMulTestUtil.Random(k * n, 2);
        var want = new float[m * n];
        MedVL.Kernels.Scalar.MatMulReference.Gemm(false, false, m, n, k, 1f, a, k, b, n, 0f, want, n);
        var outs = new float[2][];
        var ts = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            var c = new float[m * n];
            for (int rep = 0; rep < 30; rep++) MatMul.Gemm(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n);
            outs[t] = c;
        })).ToArray();
        foreach (var t in ts) t.Start();
        foreach (var t in ts) Assert.True(t.Join(TimeSpan.FromSeconds(60)));
        foreach (var c in outs) MatMulTestUtil.AssertClose(want, c, 1e-5, "concurrent gemm");
    }

    [Fact]
    public void ExceptionInJob_IsRethrownToCaller_AndRuntimeStaysUsable()
    {
        var job = new ThrowJob();
        var e = Assert.Throws<InvalidOperationException>(() => ParallelRuntime.For(100, ref job, 2));
        Assert.Equal("boom 37", e.Message);
        EveryIndexRunsExactlyOnce(100, 2);
    }
}
