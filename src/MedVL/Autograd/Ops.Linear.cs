using System.Numerics.Tensors;
using MedVL.Kernels;
using MedVL.Kernels.Gemm;
using MedVL.Tensors;

namespace MedVL.Autograd;

/// <summary>
/// Linear (nn.Linear: y = x·Wᵀ + b, W stored [out, in]) and batched MatMul with broadcasting over batch dims
/// (torch.matmul for rank ≥ 2). Every matrix product goes through <see cref="Gemm"/>, the one call to point at the
/// shared GEMM kernels (src/MedVL/Kernels/MatMul.cs).
/// </summary>
public static partial class Ops
{
    /// <summary>
    /// y[.., out] = x[.., in] · weightᵀ + bias. weight [out, in] may be float32, bf16 or f16 (widened to float32);
    /// backward: dX = dY·W, dW = dYᵀ·X (only when the weight tracks gradients, so frozen base weights never get one),
    /// db = Σ dY over rows.
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        if (weight.Rank != 2) throw new ArgumentException($"Linear: weight {weight.Describe()} must be [out_features, in_features]");
        int outF = weight.Size(0), inF = weight.Size(1);
        if (x.Rank == 0 || x.Size(-1) != inF)
            throw new ArgumentException($"Linear: input {x.Describe()} must end in in_features = {inF} for weight {weight.Describe()}");
        if (bias is not null && (bias.Rank != 1 || bias.Size(0) != outF))
            throw new ArgumentException($"Linear: bias {bias.Describe()} must be [{outF}] for weight {weight.Describe()}");
        int m = 1;
        for (int i = 0; i < x.Rank - 1; i++) m = checked(m * x.Size(i));
        if (weight.DType is not (DType.F32 or DType.BF16 or DType.F16))
            throw new ArgumentException($"Linear: weight {weight.Describe()} must be float32, bf16 or f16");
        using var xc = ReadF32(x, "Linear", "input");
        using var wc = weight.IsContiguous ? weight.Detach() : weight.Clone(); // kept in its dtype: the kernels widen bf16/f16
        using var bc = bias is null ? null : ReadF32(bias, "Linear", "bias");
        var shape = x.ShapeArray();
        shape[^1] = outF;
        var y = Tensor.Empty(shape);
        if (m > 0 && outF > 0)
        {
            if (inF == 0)
            {
                var ys = y.Span<float>();
                ys.Clear();
                if (bc is not null) for (int i = 0; i < m; i++) bc.Span<float>().CopyTo(ys.Slice(i * outF, outF));
            }
            else
                unsafe
                {
                    Kernels.MatMul.Linear((float*)xc.DataPointer, m, inF, wc.DataPointer, wc.DType, outF, bc is null ? null : (float*)bc.DataPointer,
                        (float*)y.DataPointer);
                }
        }
        if (ShouldRecord(x, weight, bias))
        {
            var inputs = bias is null ? new[] { x, weight } : new[] { x, weight, bias };
            y.GradFn = new LinearBackward(inputs, weight.TracksGrad ? xc.Detach() : null, x.TracksGrad ? wc.Detach() : null, m, inF, outF);
        }
        return y;
    }

    private sealed class LinearBackward : GradNode
    {
        private Tensor? _x, _w;
        private readonly int _m, _in, _out;

        public LinearBackward(Tensor[] inputs, Tensor? x, Tensor? w, int m, int inF, int outF) : base(inputs)
        {
            (_x, _w) = (x, w);
            (_m, _in, _out) = (m, inF, outF);
        }

        public override Tensor?[] Backward(Tensor g)
        {
            var r = new Tensor?[Inputs.Length];
            var gs = g.Span<float>();
            if (NeedsGrad(0))
            {
                var gx = Tensor.Empty(Inputs[0].ShapeArray());
                if (_m > 0 && _in > 0)
                {
                    if (_out == 0) gx.Span<float>().Clear();
                    else
                        unsafe
                        {
                            // dX[m,in] = dY[m,out]·W[out,in], W read in its stored dtype
                            Kernels.MatMul.GemmCore(false, false, _m, _in, _out, 1f, (float*)g.DataPointer, _out, _w!.DataPointer, _w.DType, _in, 0f,
                                (float*)gx.DataPointer, _in, 0, GemmMicroKernels.BestIsa);
                        }
                }
                r[0] = gx;
            }
            if (NeedsGrad(1))
            {
                var gw = Tensor.Empty(_out, _in);
                Gemm(true, false, _out, _in, _m, gs, _x!.Span<float>(), gw.Span<float>(), accumulate: false); // [out,m]·[m,in]
                r[1] = gw;
            }
            if (Inputs.Length == 3 && NeedsGrad(2))
            {
                var gb = Tensor.Zeros(_out);
                var bs = gb.Span<float>();
                for (int i = 0; i < _m; i++) TensorPrimitives.Add(bs, gs.Slice(i * _out, _out), bs);
                r[2] = gb;
            }
            return r;
        }

        public override void ReleaseSaved()
        {
            _x?.Dispose(); _x = null;
            _w?.Dispose(); _w = null;
        }
    }

    /// <summary>torch.matmul for a [.., M, K] and b [.., K, N] (both rank ≥ 2), batch dims broadcast NumPy-style.</summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        if (a.Rank < 2 || b.Rank < 2)
            throw new ArgumentException($"MatMul: a {a.Describe()} and b {b.Describe()} must both have rank ≥ 2 (unsqueeze vectors first)");
        int m = a.Size(-2), k = a.Size(-1), n = b.Size(-1);
        if (b.Size(-2) != k)
            throw new ArgumentException($"MatMul: a {a.Describe()} has {k} columns but b {b.Describe()} has {b.Size(-2)} rows");
        var batch = BroadcastShape(a.Shape[..^2], b.Shape[..^2], "MatMul");
        var shape = new int[batch.Length + 2];
        batch.CopyTo(shape, 0);
        shape[^2] = m;
        shape[^1] = n;
        using var ac = ReadF32(a, "MatMul", "a");
        using var bc = ReadF32(b, "MatMul", "b");
        var y = Tensor.Empty(shape);
        var (offA, offB, nb) = BatchOffsets(a.Shape[..^2], b.Shape[..^2], batch);
        var ys = y.Span<float>();
        for (int i = 0; i < nb; i++)
            Gemm(false, false, m, n, k, ac.Span<float>().Slice(offA[i] * m * k, m * k), bc.Span<float>().Slice(offB[i] * k * n, k * n),
                ys.Slice(i * m * n, m * n), accumulate: false);
        if (ShouldRecord(a, b))
            y.GradFn = new MatMulBackward(a, b, b.TracksGrad ? ac.Detach() : null, a.TracksGrad ? bc.Detach() : null, batch, m, k, n);
        return y;
    }

    /// <summary>For each batch index of the broadcast batch shape, the matrix index into a's and b's own batch.</summary>
    private static (int[] A, int[] B, int Count) BatchOffsets(ReadOnlySpan<int> aBatch, ReadOnlySpan<int> bBatch, int[] batch)
    {
        int nb = 1;
        foreach (int d in batch) nb *= d;
        var sa = BroadcastStrides(aBatch, batch);
        var sb = BroadcastStrides(bBatch, batch);
        var oa = new int[nb];
        var ob = new int[nb];
        for (int i = 0; i < nb; i++)
        {
            int rem = i;
            long x = 0, z = 0;
            for (int d = batch.Length - 1; d >= 0; d--)
            {
                int idx = rem % batch[d];
                rem /= batch[d];
                x += idx * sa[d];
                z += idx * sb[d];
            }
            oa[i] = (int)x;
            ob[i] = (int)z;
        }
        return (oa, ob, nb);
    }

    private sealed class MatMulBackward : GradNode
    {
        private Tensor? _a, _b;
        private readonly int[] _batch;
        private readonly int _m, _k, _n;

        public MatMulBackward(Tensor a, Tensor b, Tensor? sa, Tensor? sb, int[] batch, int m, int k, int n) : base(a, b)
        {
            (_a, _b) = (sa, sb);
            (_batch, _m, _k, _n) = (batch, m, k, n);
        }

        public override Tensor?[] Backward(Tensor g)
        {
            var aShape = Inputs[0].ShapeArray();
            var bShape = Inputs[1].ShapeArray();
            var (offA, offB, nb) = BatchOffsets(aShape.AsSpan(..^2), bShape.AsSpan(..^2), _batch);
            var gs = g.Span<float>();
            Tensor? ga = null, gb = null;
            int m = _m, k = _k, n = _n;
            if (NeedsGrad(0))
            {
                // dA = dY·Bᵀ per batch, then summed over a's broadcast batch dims
                var full = Tensor.Empty([.. _batch, m, k]);
                for (int i = 0; i < nb; i++)
                    Gemm(false, true, m, k, n, gs.Slice(i * m * n, m * n), _b!.Span<float>().Slice(offB[i] * k * n, k * n),
                        full.Span<float>().Slice(i * m * k, m * k), accumulate: false);
                using (full) ga = SumToShape(full, aShape);
            }
            if (NeedsGrad(1))
            {
                // dB = Aᵀ·dY per batch
                var full = Tensor.Empty([.. _batch, k, n]);
                for (int i = 0; i < nb; i++)
                    Gemm(true, false, k, n, m, _a!.Span<float>().Slice(offA[i] * m * k, m * k), gs.Slice(i * m * n, m * n),
                        full.Span<float>().Slice(i * k * n, k * n), accumulate: false);
                using (full) gb = SumToShape(full, bShape);
            }
            return new[] { ga, gb };
        }

        public override void ReleaseSaved()
        {
            _a?.Dispose(); _a = null;
            _b?.Dispose(); _b = null;
        }
    }

    /// <summary>
    /// C[m, n] (+)= op(A)·op(B) on dense row-major spans (op(A) = A [m, k], or Aᵀ of A stored [k, m] when transA;
    /// likewise B [k, n] or [n, k]): the shared packed SGEMM (<see cref="Kernels.MatMul.Gemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int, int)"/>).
    /// </summary>
    internal static void Gemm(bool transA, bool transB, int m, int n, int k, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, bool accumulate)
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) c[..(m * n)].Clear();
            return;
        }
        Kernels.MatMul.Gemm(transA, transB, m, n, k, 1f, a, transA ? m : k, b, transB ? k : n, accumulate ? 1f : 0f, c, n);
    }
}
