using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace MedVL.Kernels;

/// <summary>
/// Scaled-dot-product attention over contiguous q [B, H, T, D], k/v [B, Hkv, S, D] → o [B, H, T, D], with the
/// log-sum-exp of each query row saved for backward. Forward is FlashAttention-2's loop (Dao 2023, Algorithm 1):
/// for a block of 64 queries, stream blocks of 64 keys, keeping a running row max m and sum l and rescaling the
/// output accumulator, so memory is O(block²) rather than O(T·S). Backward recomputes the probabilities from the
/// saved log-sum-exp (Algorithm 2) in two passes — dQ over query blocks, then dK/dV over key blocks — so no two
/// threads ever write the same gradient row (no atomics, deterministic). Query head h reads key/value head
/// h / (H / Hkv), as HF's repeat_kv. Rows with no visible key give output 0 and log-sum-exp −∞ (torch's math
/// backend gives NaN there). Scalar twin: <see cref="Scalar.AttentionScalar"/>.
/// </summary>
public static unsafe class AttentionKernels
{
    public const int BlockQ = 64;
    public const int BlockK = 64;

    private static int RoundUp16(int x) => (x + 15) & ~15;

    private static void CheckLengths(in AttentionGeometry g, int q, int k, int v, int mask, int o, int lse)
    {
        g.Validate();
        if (q != g.QueryElements) throw new ArgumentException($"attention: q has {q} elements, expected B·H·T·D = {g.QueryElements}");
        if (k != g.KvSpanElements) throw new ArgumentException($"attention: k has {k} elements, expected {g.KvSpanElements} (B·Hkv·S·D = {g.KeyElements} when contiguous)");
        if (v != g.KvSpanElements) throw new ArgumentException($"attention: v has {v} elements, expected {g.KvSpanElements} (B·Hkv·S·D = {g.KeyElements} when contiguous)");
        if (mask != g.MaskElements) throw new ArgumentException($"attention: mask has {mask} elements, expected {g.MaskElements}");
        if (o != g.QueryElements) throw new ArgumentException($"attention: output has {o} elements, expected {g.QueryElements}");
        if (lse != g.LseElements) throw new ArgumentException($"attention: log-sum-exp has {lse} elements, expected B·H·T = {g.LseElements}");
    }

    // ------------------------------------------------------------------ forward

    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> mask,
        Span<float> o, Span<float> lse, in AttentionGeometry g, CancellationToken cancellationToken = default)
    {
        CheckLengths(g, q.Length, k.Length, v.Length, mask.Length, o.Length, lse.Length);
        if (g.QueryLength == 1)
        {
            DecodeForward(q, k, v, mask, o, lse, g, cancellationToken);
            return;
        }
        int spad = RoundUp16(g.KeyLength);
        long ktLen = (long)g.Batch * g.KvHeads * g.HeadDim * spad;
        var kt = ArrayPool<float>.Shared.Rent(checked((int)ktLen));
        try
        {
            fixed (float* qp = q, kp = k, vp = v, mp = mask, op = o, lp = lse, ktp = kt)
            {
                var job = new Job(g, qp, kp, vp, mp, op, lp, ktp, spad);
                ParallelBlocks.For(g.Batch * g.KvHeads, job.TransposeKeys, cancellationToken);
                ParallelBlocks.For(g.Batch * g.Heads * job.QueryBlocks, job.ForwardBlock, cancellationToken);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(kt);
        }
    }

    /// <summary>
    /// One new token against a long cache: per key/value head, every query head of its group is scored against each
    /// key row while the row is in L1, then each value row is read once for the whole group, so K and V stream from
    /// memory exactly once per step.
    /// </summary>
    public static void DecodeForward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> mask,
        Span<float> o, Span<float> lse, in AttentionGeometry g, CancellationToken cancellationToken = default)
    {
        CheckLengths(g, q.Length, k.Length, v.Length, mask.Length, o.Length, lse.Length);
        if (g.QueryLength != 1) throw new ArgumentException($"attention decode step needs one query, got T={g.QueryLength}");
        fixed (float* qp = q, kp = k, vp = v, mp = mask, op = o, lp = lse)
        {
            var job = new Job(g, qp, kp, vp, mp, op, lp, null, 0);
            ParallelBlocks.For(g.Batch * g.KvHeads, job.DecodeHead, cancellationToken);
        }
    }

    // ------------------------------------------------------------------ backward

    /// <summary>Gradients of q, k, v given the forward's o and log-sum-exp and dO. dk/dv are [B, Hkv, S, D] (summed over each group's query heads).</summary>
    public static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> mask,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, ReadOnlySpan<float> dO,
        Span<float> dq, Span<float> dk, Span<float> dv, in AttentionGeometry g, CancellationToken cancellationToken = default)
    {
        CheckLengths(g, q.Length, k.Length, v.Length, mask.Length, o.Length, lse.Length);
        if (g.KvStride != (long)g.KeyLength * g.HeadDim) throw new ArgumentException("attention backward needs contiguous K and V (no plane stride)");
        if (dO.Length != o.Length || dq.Length != q.Length || dk.Length != k.Length || dv.Length != v.Length)
            throw new ArgumentException("attention backward: gradient buffers must match q/o, k and v in length");
        int spad = RoundUp16(g.KeyLength);
        int ktLen = checked((int)((long)g.Batch * g.KvHeads * g.HeadDim * spad));
        var kt = ArrayPool<float>.Shared.Rent(ktLen);
        var vt = ArrayPool<float>.Shared.Rent(ktLen);
        var delta = ArrayPool<float>.Shared.Rent(checked((int)g.LseElements));
        try
        {
            fixed (float* qp = q, kp = k, vp = v, mp = mask, op = o, lp = lse, ktp = kt, vtp = vt, deltap = delta,
                   dop = dO, dqp = dq, dkp = dk, dvp = dv)
            {
                var job = new Job(g, qp, kp, vp, mp, op, lp, ktp, spad)
                {
                    Vt = vtp, Delta = deltap, DO = dop, DQ = dqp, DK = dkp, DV = dvp,
                };
                ParallelBlocks.For(g.Batch * g.KvHeads, job.TransposeKeysAndValues, cancellationToken);
                ParallelBlocks.For(g.Batch * g.Heads, job.ComputeDelta, cancellationToken);
                ParallelBlocks.For(g.Batch * g.Heads * job.QueryBlocks, job.BackwardQueryBlock, cancellationToken);
                ParallelBlocks.For(g.Batch * g.KvHeads * job.KeyBlocks, job.BackwardKeyBlock, cancellationToken);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(kt);
            ArrayPool<float>.Shared.Return(vt);
            ArrayPool<float>.Shared.Return(delta);
        }
    }

    /// <summary>Raw pointers for one call, shared read-only by the work items (each item writes disjoint rows).</summary>
    private sealed class Job
    {
        private readonly AttentionGeometry _g;
        private readonly float* _q, _k, _v, _mask, _o, _lse, _kt;
        private readonly int _spad;
        public float* Vt, Delta, DO, DQ, DK, DV;

        public Job(in AttentionGeometry g, float* q, float* k, float* v, float* mask, float* o, float* lse, float* kt, int spad)
        {
            _g = g; _q = q; _k = k; _v = v; _mask = g.HasMask ? mask : null; _o = o; _lse = lse; _kt = kt; _spad = spad;
        }

        public int QueryBlocks => (_g.QueryLength + BlockQ - 1) / BlockQ;
        public int KeyBlocks => (_g.KeyLength + BlockK - 1) / BlockK;

        private float* MaskRow(int b, int i) =>
            _mask == null ? null : _mask + ((_g.MaskPerBatch ? (long)b * _g.QueryLength : 0) + i) * _g.KeyLength;

        public void TransposeKeys(int bk) => TransposeInto(_k, _kt, bk);

        public void TransposeKeysAndValues(int bk)
        {
            TransposeInto(_k, _kt, bk);
            TransposeInto(_v, Vt, bk);
        }

        // dst[bk] is [D, spad]: column j holds key row j; the padding columns are zero so QKᵀ blocks need no tail.
        private void TransposeInto(float* src, float* dst, int bk)
        {
            int S = _g.KeyLength, D = _g.HeadDim;
            float* s = src + bk * _g.KvStride;
            float* d = dst + (long)bk * D * _spad;
            MicroGemm.Transpose(s, D, d, _spad, S, D);
            if (_spad > S)
                for (int c = 0; c < D; c++) new Span<float>(d + (long)c * _spad + S, _spad - S).Clear();
        }

        /// <summary>Scale a score row, add the mask, and set keys outside the causal / window range to −∞.</summary>
        private void PrepareScores(float* s, int cols, int b, int i, int j0)
        {
            var row = new Span<float>(s, cols);
            TensorPrimitives.Multiply(row, _g.Scale, row);
            float* mrow = MaskRow(b, i);
            if (mrow != null) TensorPrimitives.Add(row, new ReadOnlySpan<float>(mrow + j0, cols), row);
            int lo = Math.Clamp(_g.KeyStart(i) - j0, 0, cols);
            int hi = Math.Clamp(_g.KeyEnd(i) - j0, lo, cols);
            if (lo > 0) row[..lo].Fill(float.NegativeInfinity);
            if (hi < cols) row[hi..].Fill(float.NegativeInfinity);
        }

        public void ForwardBlock(int item)
        {
            var g = _g;
            int D = g.HeadDim, T = g.QueryLength;
            int qb = item % QueryBlocks;
            int bh = item / QueryBlocks;
            int b = bh / g.Heads, h = bh % g.Heads, kvh = h / g.GroupSize;
            int i0 = qb * BlockQ, rows = Math.Min(BlockQ, T - i0);
            float* qp = _q + ((long)bh * T + i0) * D;
            float* ktp = _kt + ((long)b * g.KvHeads + kvh) * D * _spad;
            float* vp = _v + ((long)b * g.KvHeads + kvh) * g.KvStride;

            var scoresArr = ArrayPool<float>.Shared.Rent(BlockQ * BlockK);
            var accArr = ArrayPool<float>.Shared.Rent(BlockQ * D);
            Span<float> m = stackalloc float[BlockQ];
            Span<float> l = stackalloc float[BlockQ];
            m.Fill(float.NegativeInfinity);
            l.Clear();
            try
            {
                fixed (float* sc = scoresArr, acc = accArr)
                {
                    new Span<float>(acc, rows * D).Clear();
                    int jlo = g.KeyStart(i0) & ~15, jhi = g.KeyEnd(i0 + rows - 1);
                    for (int j0 = jlo; j0 < jhi; j0 += BlockK)
                    {
                        int cols = Math.Min(BlockK, jhi - j0);
                        int colsPad = Math.Min(RoundUp16(cols), _spad - j0);
                        MicroGemm.Multiply(qp, D, ktp + j0, _spad, sc, BlockK, rows, colsPad, D, accumulate: false);
                        bool any = false;
                        for (int r = 0; r < rows; r++)
                        {
                            float* s = sc + r * BlockK;
                            PrepareScores(s, cols, b, i0 + r, j0);
                            var row = new Span<float>(s, cols);
                            float mNew = MathF.Max(m[r], TensorPrimitives.Max(row));
                            if (float.IsNegativeInfinity(mNew)) { row.Clear(); continue; }
                            any = true;
                            TensorPrimitives.Subtract(row, mNew, row);
                            TensorPrimitives.Exp(row, row);
                            float alpha = MathF.Exp(m[r] - mNew);
                            l[r] = l[r] * alpha + TensorPrimitives.Sum(row);
                            if (alpha != 1f)
                            {
                                var orow = new Span<float>(acc + r * D, D);
                                TensorPrimitives.Multiply(orow, alpha, orow);
                            }
                            m[r] = mNew;
                        }
                        if (any) MicroGemm.Multiply(sc, BlockK, vp + (long)j0 * D, D, acc, D, rows, D, cols, accumulate: true);
                    }
                    float* op = _o + ((long)bh * T + i0) * D;
                    float* lp = _lse + (long)bh * T + i0;
                    for (int r = 0; r < rows; r++)
                    {
                        var dst = new Span<float>(op + r * D, D);
                        if (l[r] > 0f)
                        {
                            TensorPrimitives.Multiply(new ReadOnlySpan<float>(acc + r * D, D), 1f / l[r], dst);
                            lp[r] = m[r] + MathF.Log(l[r]);
                        }
                        else
                        {
                            dst.Clear();
                            lp[r] = float.NegativeInfinity;
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scoresArr);
                ArrayPool<float>.Shared.Return(accArr);
            }
        }

        public void DecodeHead(int item)
        {
            var g = _g;
            int D = g.HeadDim, S = g.KeyLength, G = g.GroupSize;
            int b = item / g.KvHeads, kvh = item % g.KvHeads;
            float* kp = _k + item * g.KvStride;
            float* vp = _v + item * g.KvStride;
            int h0 = kvh * G;
            float* qp = _q + ((long)b * g.Heads + h0) * D; // T = 1: the group's query rows are consecutive
            int ks = g.KeyStart(0), ke = g.KeyEnd(0), n = ke - ks;
            var scoresArr = ArrayPool<float>.Shared.Rent(G * Math.Max(n, 1));
            var accArr = ArrayPool<float>.Shared.Rent(G * D);
            try
            {
                fixed (float* sc = scoresArr, acc = accArr)
                {
                    for (int j = 0; j < n; j++)
                    {
                        float* krow = kp + (long)(ks + j) * D;
                        for (int gi = 0; gi < G; gi++) sc[gi * n + j] = Dot(qp + gi * D, krow, D);
                    }
                    float* mrow = MaskRow(b, 0);
                    Span<float> lsum = stackalloc float[G];
                    for (int gi = 0; gi < G; gi++)
                    {
                        var row = new Span<float>(sc + gi * n, n);
                        TensorPrimitives.Multiply(row, g.Scale, row);
                        if (mrow != null) TensorPrimitives.Add(row, new ReadOnlySpan<float>(mrow + ks, n), row);
                        float mx = n > 0 ? TensorPrimitives.Max(row) : float.NegativeInfinity;
                        float* lp = _lse + (long)b * g.Heads + h0 + gi;
                        if (float.IsNegativeInfinity(mx)) { row.Clear(); lsum[gi] = 0; *lp = float.NegativeInfinity; continue; }
                        TensorPrimitives.Subtract(row, mx, row);
                        TensorPrimitives.Exp(row, row);
                        lsum[gi] = TensorPrimitives.Sum(row);
                        *lp = mx + MathF.Log(lsum[gi]);
                    }
                    new Span<float>(acc, G * D).Clear();
                    for (int j = 0; j < n; j++)
                    {
                        float* vrow = vp + (long)(ks + j) * D;
                        for (int gi = 0; gi < G; gi++) Axpy(sc[gi * n + j], vrow, acc + gi * D, D);
                    }
                    for (int gi = 0; gi < G; gi++)
                    {
                        var dst = new Span<float>(_o + ((long)b * g.Heads + h0 + gi) * D, D);
                        if (lsum[gi] > 0) TensorPrimitives.Multiply(new ReadOnlySpan<float>(acc + gi * D, D), 1f / lsum[gi], dst);
                        else dst.Clear();
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scoresArr);
                ArrayPool<float>.Shared.Return(accArr);
            }
        }

        public void ComputeDelta(int bh)
        {
            int T = _g.QueryLength, D = _g.HeadDim;
            for (int i = 0; i < T; i++)
            {
                long off = ((long)bh * T + i) * D;
                Delta[(long)bh * T + i] = Dot(DO + off, _o + off, D);
            }
        }

        /// <summary>Recompute P = exp(S − lse) for a block and dS = P ⊙ (dO·Vᵀ − delta); both [rows, BlockK].</summary>
        private void RecomputeBlock(int b, int bh, int kvIndex, int i0, int rows, int j0, int cols, float* p, float* ds)
        {
            var g = _g;
            int D = g.HeadDim, T = g.QueryLength;
            float* qp = _q + ((long)bh * T + i0) * D;
            float* dop = DO + ((long)bh * T + i0) * D;
            float* ktp = _kt + (long)kvIndex * D * _spad;
            float* vtp = Vt + (long)kvIndex * D * _spad;
            int colsPad = Math.Min(RoundUp16(cols), _spad - j0);
            MicroGemm.Multiply(qp, D, ktp + j0, _spad, p, BlockK, rows, colsPad, D, accumulate: false);
            MicroGemm.Multiply(dop, D, vtp + j0, _spad, ds, BlockK, rows, colsPad, D, accumulate: false);
            for (int r = 0; r < rows; r++)
            {
                int i = i0 + r;
                var prow = new Span<float>(p + r * BlockK, cols);
                var dsrow = new Span<float>(ds + r * BlockK, cols);
                float l = _lse[(long)bh * T + i];
                if (float.IsNegativeInfinity(l)) { prow.Clear(); dsrow.Clear(); continue; }
                PrepareScores(p + r * BlockK, cols, b, i, j0);
                TensorPrimitives.Subtract(prow, l, prow);
                TensorPrimitives.Exp(prow, prow);
                TensorPrimitives.Subtract(dsrow, Delta[(long)bh * T + i], dsrow);
                TensorPrimitives.Multiply(dsrow, prow, dsrow);
            }
        }

        public void BackwardQueryBlock(int item)
        {
            var g = _g;
            int D = g.HeadDim, T = g.QueryLength;
            int qb = item % QueryBlocks;
            int bh = item / QueryBlocks;
            int b = bh / g.Heads, h = bh % g.Heads, kvIndex = b * g.KvHeads + h / g.GroupSize;
            int i0 = qb * BlockQ, rows = Math.Min(BlockQ, T - i0);
            float* kp = _k + (long)kvIndex * g.KeyLength * D;
            var pArr = ArrayPool<float>.Shared.Rent(BlockQ * BlockK);
            var dsArr = ArrayPool<float>.Shared.Rent(BlockQ * BlockK);
            try
            {
                fixed (float* p = pArr, ds = dsArr)
                {
                    float* dq = DQ + ((long)bh * T + i0) * D;
                    new Span<float>(dq, rows * D).Clear();
                    int jlo = g.KeyStart(i0) & ~15, jhi = g.KeyEnd(i0 + rows - 1);
                    for (int j0 = jlo; j0 < jhi; j0 += BlockK)
                    {
                        int cols = Math.Min(BlockK, jhi - j0);
                        RecomputeBlock(b, bh, kvIndex, i0, rows, j0, cols, p, ds);
                        MicroGemm.Multiply(ds, BlockK, kp + (long)j0 * D, D, dq, D, rows, D, cols, accumulate: true);
                    }
                    var all = new Span<float>(dq, rows * D);
                    TensorPrimitives.Multiply(all, g.Scale, all);
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(pArr);
                ArrayPool<float>.Shared.Return(dsArr);
            }
        }

        public void BackwardKeyBlock(int item)
        {
            var g = _g;
            int D = g.HeadDim, T = g.QueryLength, S = g.KeyLength;
            int kb = item % KeyBlocks;
            int kvIndex = item / KeyBlocks;
            int b = kvIndex / g.KvHeads, kvh = kvIndex % g.KvHeads;
            int j0 = kb * BlockK, cols = Math.Min(BlockK, S - j0);
            float* dk = DK + ((long)kvIndex * S + j0) * D;
            float* dv = DV + ((long)kvIndex * S + j0) * D;
            new Span<float>(dk, cols * D).Clear();
            new Span<float>(dv, cols * D).Clear();
            int off = g.QueryOffset;
            int imin = g.Causal ? Math.Max(0, j0 - off) : 0;
            int imax = g.SlidingWindow > 0 ? Math.Min(T, g.SlidingWindow + j0 + cols - 1 - off) : T;
            if (imin >= imax) return;
            var pArr = ArrayPool<float>.Shared.Rent(BlockQ * BlockK);
            var dsArr = ArrayPool<float>.Shared.Rent(BlockQ * BlockK);
            var ptArr = ArrayPool<float>.Shared.Rent(BlockK * BlockQ);
            var dstArr = ArrayPool<float>.Shared.Rent(BlockK * BlockQ);
            try
            {
                fixed (float* p = pArr, ds = dsArr, pt = ptArr, dst = dstArr)
                {
                    for (int hg = 0; hg < g.GroupSize; hg++)
                    {
                        int bh = b * g.Heads + kvh * g.GroupSize + hg;
                        for (int i0 = imin; i0 < imax; i0 += BlockQ)
                        {
                            int rows = Math.Min(BlockQ, imax - i0);
                            RecomputeBlock(b, bh, kvIndex, i0, rows, j0, cols, p, ds);
                            MicroGemm.Transpose(p, BlockK, pt, BlockQ, rows, cols);
                            MicroGemm.Transpose(ds, BlockK, dst, BlockQ, rows, cols);
                            MicroGemm.Multiply(pt, BlockQ, DO + ((long)bh * T + i0) * D, D, dv, D, cols, D, rows, accumulate: true);
                            MicroGemm.Multiply(dst, BlockQ, _q + ((long)bh * T + i0) * D, D, dk, D, cols, D, rows, accumulate: true);
                        }
                    }
                    var all = new Span<float>(dk, cols * D);
                    TensorPrimitives.Multiply(all, g.Scale, all);
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(pArr);
                ArrayPool<float>.Shared.Return(dsArr);
                ArrayPool<float>.Shared.Return(ptArr);
                ArrayPool<float>.Shared.Return(dstArr);
            }
        }
    }

    internal static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        float s;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var acc0 = Vector512<float>.Zero;
            var acc1 = Vector512<float>.Zero;
            for (; i + 32 <= n; i += 32)
            {
                acc0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), acc0);
                acc1 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 16), Vector512.Load(b + i + 16), acc1);
            }
            for (; i + 16 <= n; i += 16) acc0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), acc0);
            s = Vector512.Sum(acc0 + acc1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc0 = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8) acc0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc0);
            s = Vector256.Sum(acc0);
        }
        else s = 0f;
        for (; i < n; i++) s = MathF.FusedMultiplyAdd(a[i], b[i], s);
        return s;
    }

    /// <summary>y += alpha·x.</summary>
    internal static void Axpy(float alpha, float* x, float* y, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(alpha);
            for (; i + 16 <= n; i += 16) Vector512.FusedMultiplyAdd(va, Vector512.Load(x + i), Vector512.Load(y + i)).Store(y + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(alpha);
            for (; i + 8 <= n; i += 8) Vector256.FusedMultiplyAdd(va, Vector256.Load(x + i), Vector256.Load(y + i)).Store(y + i);
        }
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd(alpha, x[i], y[i]);
    }
}
