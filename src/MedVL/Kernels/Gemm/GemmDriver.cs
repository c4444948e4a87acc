using System.Runtime.InteropServices;
using MedVL.Tensors;

namespace MedVL.Kernels.Gemm;

/// <summary>One GEMM call: C[M,N] = alpha·op(A)·op(B) + beta·C, row-major, B possibly bf16/f16.</summary>
internal unsafe struct GemmProblem
{
    public int M, N, K;
    public float Alpha, Beta;
    public float* A; public nint Lda; public bool TransA;
    public void* B; public nint Ldb; public bool TransB; public DType BType;
    public float* C; public nint Ldc;
}

/// <summary>
/// Aligned scratch for packed panels, one per thread that drives a GEMM, reused across calls (no allocation per op
/// once warm). The finalizer frees the native block when its thread dies.
/// </summary>
internal sealed unsafe class GemmScratch
{
    [ThreadStatic] private static GemmScratch? t_current;

    private float* _a;
    private nint _aFloats;
    private float* _b;
    private nint _bFloats;

    public static GemmScratch ForCurrentThread() => t_current ??= new GemmScratch();

    public float* A(nint floats) => Ensure(ref _a, ref _aFloats, floats);
    public float* B(nint floats) => Ensure(ref _b, ref _bFloats, floats);

    private static float* Ensure(ref float* p, ref nint have, nint need)
    {
        if (need <= have) return p;
        if (p != null) NativeMemory.AlignedFree(p);
        p = null; have = 0;
        // Grow geometrically so a sequence of slightly larger shapes does not reallocate every call.
        nint size = Math.Max(need, have + have / 2);
        p = (float*)NativeMemory.AlignedAlloc((nuint)(size * sizeof(float)), 64);
        have = size;
        return p;
    }

    ~GemmScratch()
    {
        if (_a != null) NativeMemory.AlignedFree(_a);
        if (_b != null) NativeMemory.AlignedFree(_b);
    }
}

/// <summary>
/// Blocked GEMM driver (BLIS loop structure, Van Zee &amp; van de Geijn 2015, "BLIS: A Framework for Rapidly
/// Instantiating BLAS Functionality", Fig. 2): for each KC slice of K, op(A) is packed once into MR-row micro-panels;
/// for each NC slice of N, op(B) is packed once into NR-column micro-panels; then tiles of C are computed in parallel.
/// Both packing and compute are spread over the worker threads, so every element of A and B is packed exactly once
/// per (KC, NC) block and no two threads write the same C element.
/// </summary>
internal static unsafe class GemmDriver
{
    // KC: depth of one packed slice. An A micro-panel (MR×KC = 6 KB) stays in L1 while the kernel sweeps the
    // B micro-panels of a tile (KC × tile width) out of L2.
    internal const int KC = 256;
    // NC: columns of B packed per round (KC×NC×4 bytes = 2 MB at most, shared by all threads through L3).
    internal const int NC = 2048;
    // MC: rows of C per compute tile (A block MC×KC = 144 KB in L2).
    internal const int MC = 144;
    private const int APanelsPerPackTask = 16;

    public static void Run(in GemmProblem prob, GemmIsa isa, int maxThreads)
    {
        int m = prob.M, n = prob.N, k = prob.K;
        if (m <= 0 || n <= 0) return;
        if (k <= 0 || prob.Alpha == 0f)
        {
            ScaleC(prob.C, prob.Ldc, m, n, prob.Beta);
            return;
        }

        const int MR = GemmMicroKernels.MR;
        int nr = GemmMicroKernels.NR(isa);
        int threads = ParallelRuntime.InParallelRegion ? 1 : ParallelRuntime.ResolveThreads(maxThreads);
        int mPanels = (m + MR - 1) / MR;
        int kcMax = Math.Min(KC, k);
        int ncMax = Math.Min(NC, (n + nr - 1) / nr * nr);

        var scratch = GemmScratch.ForCurrentThread();
        float* packA = scratch.A((nint)mPanels * MR * kcMax);
        float* packB = scratch.B((nint)ncMax * kcMax);

        var job = new GemmJob { P = prob, Isa = isa, Nr = nr, PackA = packA, PackB = packB, MPanels = mPanels };

        for (int p0 = 0; p0 < k; p0 += KC)
        {
            int kc = Math.Min(KC, k - p0);
            job.P0 = p0;
            job.Kc = kc;
            job.BetaNow = p0 == 0 ? prob.Beta : 1f;
            for (int j0 = 0; j0 < n; j0 += NC)
            {
                int nc = Math.Min(NC, n - j0);
                job.J0 = j0;
                job.Nc = nc;
                job.NPanels = (nc + nr - 1) / nr;

                // Phase 1: pack B[p0.., j0..] (and A[.., p0..] once per KC slice).
                job.Phase = 1;
                job.ATasks = j0 == 0 ? (mPanels + APanelsPerPackTask - 1) / APanelsPerPackTask : 0;
                int packTasks = job.ATasks + job.NPanels;
                ParallelRuntime.For(packTasks, ref job, threads);

                // Phase 2: C tiles. Split rows into MC tiles and, when that gives too few tiles to balance the
                // threads, split the columns too (in whole micro-panels).
                job.Phase = 2;
                int mTile = Math.Min(MC, mPanels * MR);
                int mTiles = (mPanels * MR + mTile - 1) / mTile;
                int nTiles = 1;
                while (threads > 1 && mTiles * nTiles < 4 * threads && nTiles * 2 <= job.NPanels) nTiles *= 2;
                if (threads > 1 && mTiles * nTiles < 4 * threads && mPanels > mTiles)
                {
                    // Still too few: shrink the row tiles (whole micro-panels).
                    int want = (4 * threads + nTiles - 1) / nTiles;
                    int panelsPerTile = Math.Max(1, (mPanels + want - 1) / want);
                    mTile = panelsPerTile * MR;
                    mTiles = (mPanels + panelsPerTile - 1) / panelsPerTile;
                }
                job.MTile = mTile;
                job.MTiles = mTiles;
                job.PanelsPerNTile = (job.NPanels + nTiles - 1) / nTiles;
                int nTilesReal = (job.NPanels + job.PanelsPerNTile - 1) / job.PanelsPerNTile;
                ParallelRuntime.For(mTiles * nTilesReal, ref job, threads);
            }
        }
    }

    internal static void ScaleC(float* c, nint ldc, int m, int n, float beta)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + i * ldc, n);
            if (beta == 0f) row.Clear();
            else if (beta != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    private struct GemmJob : IParallelJob
    {
        public GemmProblem P;
        public GemmIsa Isa;
        public int Nr;
        public float* PackA, PackB;
        public int MPanels, NPanels;
        public int P0, Kc, J0, Nc;
        public float BetaNow;
        public int Phase;
        public int ATasks;
        public int MTile, MTiles, PanelsPerNTile;

        public void Execute(int index)
        {
            if (Phase == 1) Pack(index);
            else Compute(index);
        }

        private void Pack(int index)
        {
            const int MR = GemmMicroKernels.MR;
            if (index < ATasks)
            {
                int first = index * APanelsPerPackTask;
                int last = Math.Min(first + APanelsPerPackTask, MPanels);
                for (int ip = first; ip < last; ip++)
                {
                    int i0 = ip * MR;
                    GemmPacking.PackA(P.A, P.Lda, P.TransA, i0, Math.Min(MR, P.M - i0), P0, Kc, PackA + (nint)ip * MR * Kc);
                }
            }
            else
            {
                int jp = index - ATasks;
                int jj = jp * Nr;
                GemmPacking.PackB(P.BType, P.B, P.Ldb, P.TransB, J0 + jj, Math.Min(Nr, Nc - jj), P0, Kc, Nr, PackB + (nint)jp * Nr * Kc);
            }
        }

        private void Compute(int index)
        {
            const int MR = GemmMicroKernels.MR;
            int mt = index % MTiles, nt = index / MTiles;
            int i0 = mt * MTile, i1 = Math.Min(i0 + MTile, P.M);
            int jpFirst = nt * PanelsPerNTile, jpLast = Math.Min(jpFirst + PanelsPerNTile, NPanels);
            int kc = Kc;
            nint ldc = P.Ldc;
            float alpha = P.Alpha, beta = BetaNow;
            var isa = Isa;
            int nr = Nr;
            for (int i = i0; i < i1; i += MR)
            {
                int mr = Math.Min(MR, P.M - i);
                float* pa = PackA + (nint)(i / MR) * MR * kc;
                for (int jp = jpFirst; jp < jpLast; jp++)
                {
                    int jj = jp * nr;
                    int nrValid = Math.Min(nr, Nc - jj);
                    float* pb = PackB + (nint)jp * nr * kc;
                    float* c = P.C + i * ldc + J0 + jj;
                    if (mr == MR && nrValid == nr) GemmMicroKernels.Run(isa, kc, pa, pb, c, ldc, alpha, beta);
                    else GemmMicroKernels.RunEdge(isa, kc, pa, pb, c, ldc, alpha, beta, mr, nrValid);
                }
            }
        }
    }
}
