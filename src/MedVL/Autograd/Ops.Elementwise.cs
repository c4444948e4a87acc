using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Autograd;

/// <summary>
/// Differentiable ops (the contract: validate shapes, pooled output, span kernel, GradFn when recording).
/// This file: NumPy-broadcasting binary ops, unary elementwise ops, masked fill, dropout, and the helpers the
/// other op families share (float32 reads, broadcast shapes/strides, the reduce-to-shape adjoint).
/// </summary>
public static partial class Ops
{
    // ================= shared helpers =================

    internal static bool ShouldRecord(Tensor a) => GradMode.IsEnabled && a.TracksGrad;
    internal static bool ShouldRecord(Tensor a, Tensor? b) => GradMode.IsEnabled && (a.TracksGrad || (b?.TracksGrad ?? false));
    internal static bool ShouldRecord(Tensor a, Tensor? b, Tensor? c) => GradMode.IsEnabled && (a.TracksGrad || (b?.TracksGrad ?? false) || (c?.TracksGrad ?? false));

    /// <summary>A float32 contiguous tensor with x's values and no graph link (a new reference or a converted copy; dispose it).</summary>
    internal static Tensor ReadF32(Tensor x, string op, string name)
    {
        if (!x.DType.IsFloatingPoint())
            throw new ArgumentException($"{op}: {name} {x.Describe()} must be a floating-point tensor");
        if (x.DType == DType.F32) return x.IsContiguous ? x.Detach() : x.Clone();
        return x.To(DType.F32);
    }

    /// <summary>Integer ids/targets as a contiguous int64 tensor (a new reference or a converted copy; dispose it).</summary>
    internal static Tensor ReadI64(Tensor ids, string op, string name)
    {
        if (ids.DType == DType.I64) return ids.IsContiguous ? ids.Detach() : ids.Clone();
        if (ids.DType is DType.I32 or DType.I16 or DType.U8 or DType.I8 or DType.U16 or DType.U32) return ids.To(DType.I64);
        throw new ArgumentException($"{op}: {name} {ids.Describe()} must be an integer tensor (int32 or int64)");
    }

    /// <summary>NumPy broadcasting: align right; each pair of sizes must be equal or one of them 1.</summary>
    internal static int[] BroadcastShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b, string op)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"{op}: shapes {Tensor.FormatShape(a)} and {Tensor.FormatShape(b)} do not broadcast (dim {i}: {da} vs {db})");
            r[i] = da == 1 ? db : da;
        }
        return r;
    }

    /// <summary>Element strides of a contiguous tensor of <paramref name="shape"/> read over <paramref name="outShape"/> (0 on broadcast dims).</summary>
    internal static long[] BroadcastStrides(ReadOnlySpan<int> shape, ReadOnlySpan<int> outShape)
    {
        var own = Tensor.ContiguousStrides(shape);
        var s = new long[outShape.Length];
        int lead = outShape.Length - shape.Length;
        for (int i = lead; i < outShape.Length; i++)
            s[i] = shape[i - lead] == 1 && outShape[i] != 1 ? 0 : own[i - lead];
        return s;
    }

    /// <summary>The adjoint of broadcasting: sum g (float32 contiguous, of the broadcast shape) down to <paramref name="shape"/>.</summary>
    internal static Tensor SumToShape(Tensor g, int[] shape)
    {
        if (g.Shape.SequenceEqual(shape)) return g.Clone();
        var r = Tensor.Zeros(shape);
        SumIntoParallel.Run(g, r, BroadcastStrides(shape, g.Shape));
        return r;
    }

    private static Tensor NewLike(Tensor x) => Tensor.Empty(x.ShapeArray());

    // ================= broadcasting binary ops =================

    public static Tensor Add(Tensor a, Tensor b) => Binary(BinaryOp.Add, a, b, "Add");
    public static Tensor Sub(Tensor a, Tensor b) => Binary(BinaryOp.Sub, a, b, "Sub");
    public static Tensor Mul(Tensor a, Tensor b) => Binary(BinaryOp.Mul, a, b, "Mul");
    public static Tensor Div(Tensor a, Tensor b) => Binary(BinaryOp.Div, a, b, "Div");

    private static Tensor Binary(BinaryOp op, Tensor a, Tensor b, string name)
    {
        var shape = BroadcastShape(a.Shape, b.Shape, name);
        using var ac = ReadF32(a, name, "a");
        using var bc = ReadF32(b, name, "b");
        var y = Tensor.Empty(shape);
        BinaryParallel.Run(op, ac, BroadcastStrides(a.Shape, shape), bc, BroadcastStrides(b.Shape, shape), y, shape);
        if (ShouldRecord(a, b))
        {
            bool save = op is BinaryOp.Mul or BinaryOp.Div;
            y.GradFn = new BinaryBackward(op, a, b, save ? ac.Detach() : null, save ? bc.Detach() : null);
        }
        return y;
    }

    private sealed class BinaryBackward : GradNode
    {
        private readonly BinaryOp _op;
        private Tensor? _a, _b; // float32 contiguous copies, for Mul/Div

        public BinaryBackward(BinaryOp op, Tensor a, Tensor b, Tensor? sa, Tensor? sb) : base(a, b)
        {
            _op = op;
            _a = sa;
            _b = sb;
        }

        public override string Name => _op + "Backward";

        public override Tensor?[] Backward(Tensor g)
        {
            var shape = g.ShapeArray();
            Tensor? ga = null, gb = null;
            if (NeedsGrad(0))
            {
                if (_op is BinaryOp.Add or BinaryOp.Sub) ga = SumToShape(g, Inputs[0].ShapeArray());
                else
                {
                    // Mul: g·b, Div: g / b — b read through its broadcast strides
                    using var full = Tensor.Empty(shape);
                    Elementwise.Binary(_op, g.Span<float>(), Tensor.ContiguousStrides(shape), _b!.Span<float>(), BroadcastStrides(_b.Shape, shape),
                        full.Span<float>(), shape);
                    ga = SumToShape(full, Inputs[0].ShapeArray());
                }
            }
            if (NeedsGrad(1))
            {
                using var full = Tensor.Empty(shape);
                var fs = full.Span<float>();
                var cs = Tensor.ContiguousStrides(shape);
                switch (_op)
                {
                    case BinaryOp.Add: g.Span<float>().CopyTo(fs); break;
                    case BinaryOp.Sub: Elementwise.NegForward(g.Span<float>(), fs); break;
                    case BinaryOp.Mul:
                        Elementwise.Binary(BinaryOp.Mul, g.Span<float>(), cs, _a!.Span<float>(), BroadcastStrides(_a.Shape, shape), fs, shape);
                        break;
                    default: // d(a/b)/db = −a/b²: ((g·a)/b)/b, negated
                        Elementwise.Binary(BinaryOp.Mul, g.Span<float>(), cs, _a!.Span<float>(), BroadcastStrides(_a.Shape, shape), fs, shape);
                        var bs = BroadcastStrides(_b!.Shape, shape);
                        Elementwise.Binary(BinaryOp.Div, fs, cs, _b.Span<float>(), bs, fs, shape);
                        Elementwise.Binary(BinaryOp.Div, fs, cs, _b.Span<float>(), bs, fs, shape);
                        Elementwise.NegForward(fs, fs);
                        break;
                }
                gb = SumToShape(full, Inputs[1].ShapeArray());
            }
            return new[] { ga, gb };
        }

        public override void ReleaseSaved()
        {
            _a?.Dispose(); _a = null;
            _b?.Dispose(); _b = null;
        }
    }

    // ================= unary elementwise ops =================

    internal enum UnaryKind { Neg, Scale, AddScalar, Exp, Log, Sqrt, Square, Pow, Tanh, Sigmoid }

    public static Tensor Neg(Tensor x) => Unary(UnaryKind.Neg, x, 0f);
    /// <summary>x · alpha.</summary>
    public static Tensor Scale(Tensor x, float alpha) => Unary(UnaryKind.Scale, x, alpha);
    /// <summary>x + alpha.</summary>
    public static Tensor AddScalar(Tensor x, float alpha) => Unary(UnaryKind.AddScalar, x, alpha);
    public static Tensor Exp(Tensor x) => Unary(UnaryKind.Exp, x, 0f);
    public static Tensor Log(Tensor x) => Unary(UnaryKind.Log, x, 0f);
    public static Tensor Sqrt(Tensor x) => Unary(UnaryKind.Sqrt, x, 0f);
    public static Tensor Square(Tensor x) => Unary(UnaryKind.Square, x, 0f);
    /// <summary>x^exponent elementwise (torch.pow with a scalar exponent).</summary>
    public static Tensor Pow(Tensor x, float exponent) => Unary(UnaryKind.Pow, x, exponent);
    public static Tensor Tanh(Tensor x) => Unary(UnaryKind.Tanh, x, 0f);
    public static Tensor Sigmoid(Tensor x) => Unary(UnaryKind.Sigmoid, x, 0f);

    private static Tensor Unary(UnaryKind kind, Tensor x, float p)
    {
        using var xc = ReadF32(x, kind.ToString(), "x");
        var y = NewLike(x);
        UnaryParallel.Run(kind, p, xc, y);
        if (ShouldRecord(x))
        {
            // Exp, Sqrt, Tanh, Sigmoid differentiate from their output; Log, Square, Pow from their input.
            Tensor? saved = kind switch
            {
                UnaryKind.Exp or UnaryKind.Sqrt or UnaryKind.Tanh or UnaryKind.Sigmoid => y.Detach(),
                UnaryKind.Log or UnaryKind.Square or UnaryKind.Pow => xc.Detach(),
                _ => null,
            };
            y.GradFn = new UnaryBackward(kind, x, saved, p);
        }
        return y;
    }

    private sealed class UnaryBackward : GradNode
    {
        private readonly UnaryKind _kind;
        private readonly float _p;
        private Tensor? _saved;

        public UnaryBackward(UnaryKind kind, Tensor x, Tensor? saved, float p) : base(x)
        {
            _kind = kind;
            _saved = saved;
            _p = p;
        }

        public override string Name => _kind + "Backward";

        public override Tensor?[] Backward(Tensor g)
        {
            var gx = Tensor.Empty(g.ShapeArray());
            var gy = g.Span<float>();
            var gs = gx.Span<float>();
            ReadOnlySpan<float> s = _saved is null ? default : _saved.Span<float>();
            switch (_kind)
            {
                case UnaryKind.Neg: Elementwise.NegBackward(gy, gs); break;
                case UnaryKind.Scale: Elementwise.ScaleBackward(gy, _p, gs); break;
                case UnaryKind.AddScalar: gy.CopyTo(gs); break;
                case UnaryKind.Exp: Elementwise.ExpBackward(s, gy, gs); break;
                case UnaryKind.Log: Elementwise.LogBackward(s, gy, gs); break;
                case UnaryKind.Sqrt: Elementwise.SqrtBackward(s, gy, gs); break;
                case UnaryKind.Square: Elementwise.SquareBackward(s, gy, gs); break;
                case UnaryKind.Pow: Elementwise.PowBackward(s, _p, gy, gs); break;
                case UnaryKind.Tanh: Elementwise.TanhBackward(s, gy, gs); break;
                case UnaryKind.Sigmoid: Elementwise.SigmoidBackward(s, gy, gs); break;
            }
            return new Tensor?[] { gx };
        }

        public override void ReleaseSaved()
        {
            _saved?.Dispose();
            _saved = null;
        }
    }

    // ================= masking and dropout =================

    /// <summary>
    /// torch.Tensor.masked_fill: value where mask (bool or uint8, broadcastable to x's shape) is set, x elsewhere.
    /// Used for attention masks (value = −inf or the dtype's min) and image-token splicing.
    /// </summary>
    public static Tensor MaskedFill(Tensor x, Tensor mask, float value)
    {
        if (mask.DType is not (DType.Bool or DType.U8))
            throw new ArgumentException($"MaskedFill: mask {mask.Describe()} must be bool or uint8");
        var shape = x.ShapeArray();
        var bshape = BroadcastShape(shape, mask.Shape, "MaskedFill");
        if (!bshape.AsSpan().SequenceEqual(shape))
            throw new ArgumentException($"MaskedFill: mask {mask.Describe()} must broadcast to x {x.Describe()} without enlarging it");
        using var xc = ReadF32(x, "MaskedFill", "x");
        var mc = mask.IsContiguous ? mask.Detach() : mask.Clone();
        var y = Tensor.Empty(shape);
        var ms = BroadcastStrides(mask.Shape, shape);
        LeadingSplit.MaskedFill(xc, mc, ms, value, y, shape);
        if (ShouldRecord(x)) y.GradFn = new MaskedFillBackward(x, mc, ms);
        else mc.Dispose();
        return y;
    }

    private sealed class MaskedFillBackward : GradNode
    {
        private Tensor? _mask;
        private readonly long[] _strides;

        public MaskedFillBackward(Tensor x, Tensor mask, long[] strides) : base(x)
        {
            _mask = mask;
            _strides = strides;
        }

        public override Tensor?[] Backward(Tensor g)
        {
            var gx = Tensor.Empty(g.ShapeArray());
            LeadingSplit.MaskedFill(g, _mask!, _strides, 0f, gx, g.ShapeArray());
            return new Tensor?[] { gx };
        }

        public override void ReleaseSaved()
        {
            _mask?.Dispose();
            _mask = null;
        }
    }

    /// <summary>
    /// torch.where(cond, a, b): a where cond (bool/uint8) is set, else b; the three shapes broadcast together. Useful
    /// for splicing projected image features into text embeddings at image-token positions.
    /// </summary>
    public static Tensor Where(Tensor cond, Tensor a, Tensor b)
    {
        if (cond.DType is not (DType.Bool or DType.U8))
            throw new ArgumentException($"Where: condition {cond.Describe()} must be bool or uint8");
        var shape = BroadcastShape(BroadcastShape(cond.Shape, a.Shape, "Where"), b.Shape, "Where");
        using var ac = ReadF32(a, "Where", "a");
        using var bc = ReadF32(b, "Where", "b");
        var cc = cond.IsContiguous ? cond.Detach() : cond.Clone();
        var cs = BroadcastStrides(cond.Shape, shape);
        var y = Tensor.Empty(shape);
        LeadingSplit.Where(cc, cs, ac, BroadcastStrides(a.Shape, shape), bc, BroadcastStrides(b.Shape, shape), y, shape);
        if (ShouldRecord(a, b)) y.GradFn = new WhereBackward(a, b, cc, cs);
        else cc.Dispose();
        return y;
    }

    private sealed class WhereBackward : GradNode
    {
        private Tensor? _cond;
        private readonly long[] _condStrides;

        public WhereBackward(Tensor a, Tensor b, Tensor cond, long[] condStrides) : base(a, b)
        {
            _cond = cond;
            _condStrides = condStrides;
        }

        public override Tensor?[] Backward(Tensor g)
        {
            var shape = g.ShapeArray();
            var full = Tensor.ContiguousStrides(shape);
            var zeroStrides = new long[shape.Length];
            ReadOnlySpan<float> zero = stackalloc float[1];
            var r = new Tensor?[2];
            for (int i = 0; i < 2; i++)
            {
                if (!NeedsGrad(i)) continue;
                using var t = Tensor.Empty(shape);
                // g flows to a where cond is set and to b elsewhere
                if (i == 0) Elementwise.Where(_cond!.Span<byte>(), _condStrides, g.Span<float>(), full, zero, zeroStrides, t.Span<float>(), shape);
                else Elementwise.Where(_cond!.Span<byte>(), _condStrides, zero, zeroStrides, g.Span<float>(), full, t.Span<float>(), shape);
                r[i] = SumToShape(t, Inputs[i].ShapeArray());
            }
            return r;
        }

        public override void ReleaseSaved()
        {
            _cond?.Dispose();
            _cond = null;
        }
    }

    /// <summary>
    /// Inverted dropout (torch.nn.functional.dropout): zero each element with probability p and scale the rest by
    /// 1/(1−p); identity (a new reference) when not training or p = 0. Randomness comes only from <paramref name="rng"/>.
    /// </summary>
    public static Tensor Dropout(Tensor x, float p, bool training, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (!(p >= 0f && p <= 1f)) throw new ArgumentOutOfRangeException(nameof(p), $"Dropout: p = {p} must be in [0, 1]");
        if (!training || p == 0f) return x.Contiguous();
        var mask = Tensor.Empty(x.ShapeArray());
        var m = mask.Span<float>();
        float keep = p == 1f ? 0f : 1f / (1f - p);
        for (int i = 0; i < m.Length; i++) m[i] = rng.NextSingle() < p ? 0f : keep;
        using var xc = ReadF32(x, "Dropout", "x");
        var y = NewLike(x);
        Elementwise.DropoutForward(xc.Span<float>(), m, y.Span<float>());
        if (ShouldRecord(x)) y.GradFn = new DropoutBackward(x, mask);
        else mask.Dispose();
        return y;
    }

    /// <summary>Dropout with a fresh System.Random(seed): the same seed gives the same mask.</summary>
    public static Tensor Dropout(Tensor x, float p, bool training, int seed) => Dropout(x, p, training, new Random(seed));

    private sealed class DropoutBackward : GradNode
    {
        private Tensor? _mask;
        public DropoutBackward(Tensor x, Tensor mask) : base(x) => _mask = mask;

        public override Tensor?[] Backward(Tensor g)
        {
            var gx = Tensor.Empty(g.ShapeArray());
            Elementwise.DropoutForward(g.Span<float>(), _mask!.Span<float>(), gx.Span<float>());
            return new Tensor?[] { gx };
        }

        public override void ReleaseSaved()
        {
            _mask?.Dispose();
            _mask = null;
        }
    }
}

/// <summary>
/// Elementwise ops spread over threads along the output's leading dimension (broadcasting binary) or in flat chunks
/// (unary): every element is computed by the same kernel as on one thread, so results are bit-identical. Work under
/// ~32k elements per chunk stays on the calling thread.
/// </summary>
internal static unsafe class BinaryParallel
{
    private struct Rows : IRowChunk
    {
        public BinaryOp Op;
        public float* A, B, Y;
        public long[] AStrides, BStrides;
        public int[] Shape;
        public long ALen, BLen, RowElems;

        public void Run(int r0, int rows)
        {
            var shape = (int[])Shape.Clone();
            shape[0] = rows;
            long ao = r0 * AStrides[0], bo = r0 * BStrides[0], yo = r0 * RowElems;
            Elementwise.Binary(Op, new ReadOnlySpan<float>(A + ao, (int)(ALen - ao)), AStrides, new ReadOnlySpan<float>(B + bo, (int)(BLen - bo)), BStrides,
                new Span<float>(Y + yo, checked((int)(rows * RowElems))), shape);
        }
    }

    public static void Run(BinaryOp op, Tensor a, long[] aStrides, Tensor b, long[] bStrides, Tensor y, int[] shape)
    {
        if (shape.Length == 0 || shape[0] == 0)
        {
            Elementwise.Binary(op, a.Span<float>(), aStrides, b.Span<float>(), bStrides, y.Span<float>(), shape);
            return;
        }
        var body = new Rows
        {
            Op = op, A = (float*)a.DataPointer, B = (float*)b.DataPointer, Y = (float*)y.DataPointer, AStrides = aStrides, BStrides = bStrides,
            Shape = shape, ALen = a.Numel, BLen = b.Numel, RowElems = y.Numel / shape[0],
        };
        WorkSplit.ForRows(shape[0], y.Numel, ref body);
    }
}

internal static unsafe class UnaryParallel
{
    private struct Elements : IRowChunk
    {
        public Ops.UnaryKind Kind;
        public float P;
        public float* X, Y;

        public void Run(int off, int len)
        {
            var xs = new ReadOnlySpan<float>(X + off, len);
            var ys = new Span<float>(Y + off, len);
            switch (Kind)
            {
                case Ops.UnaryKind.Neg: Elementwise.NegForward(xs, ys); break;
                case Ops.UnaryKind.Scale: Elementwise.ScaleForward(xs, P, ys); break;
                case Ops.UnaryKind.AddScalar: Elementwise.AddScalarForward(xs, P, ys); break;
                case Ops.UnaryKind.Exp: Elementwise.ExpForward(xs, ys); break;
                case Ops.UnaryKind.Log: Elementwise.LogForward(xs, ys); break;
                case Ops.UnaryKind.Sqrt: Elementwise.SqrtForward(xs, ys); break;
                case Ops.UnaryKind.Square: Elementwise.SquareForward(xs, ys); break;
                case Ops.UnaryKind.Pow: Elementwise.PowForward(xs, P, ys); break;
                case Ops.UnaryKind.Tanh: Elementwise.TanhForward(xs, ys); break;
                case Ops.UnaryKind.Sigmoid: Elementwise.SigmoidForward(xs, ys); break;
            }
        }
    }

    public static void Run(Ops.UnaryKind kind, float p, Tensor x, Tensor y)
    {
        var body = new Elements { Kind = kind, P = p, X = (float*)x.DataPointer, Y = (float*)y.DataPointer };
        WorkSplit.ForRows(checked((int)y.Numel), y.Numel, ref body);
    }
}

/// <summary>
/// Reduce.SumInto split over the source's leading dimension. When that dimension is kept (dst stride non-zero) the chunks
/// write disjoint outputs and each output element sums in the one-thread order; when it is reduced, see ReduceLeading.
/// </summary>
internal static unsafe class SumIntoParallel
{
    private struct Rows : IRowChunk
    {
        public float* Src, Dst;
        public int[] Shape;
        public long[] DstStrides;
        public long DstLen, SrcRow;

        public void Run(int r0, int rc)
        {
            var shape = (int[])Shape.Clone();
            shape[0] = rc;
            long so = r0 * SrcRow, dof = r0 * DstStrides[0];
            Reduce.SumInto(new ReadOnlySpan<float>(Src + so, checked((int)(rc * SrcRow))), shape,
                new Span<float>(Dst + dof, (int)(DstLen - dof)), DstStrides);
        }
    }

    /// <summary>dst[offset(i)] += src[i] over src's shape (src contiguous float32).</summary>
    public static void Run(Tensor src, Tensor dst, long[] dstStrides)
    {
        var shape = src.ShapeArray();
        int chunks = shape.Length == 0 ? 1 : WorkSplit.ChunkCount(src.Numel, shape[0]);
        if (chunks <= 1)
        {
            Reduce.SumInto(src.Span<float>(), shape, dst.Span<float>(), dstStrides);
            return;
        }
        if (dstStrides[0] == 0)
        {
            ReduceLeading(src, dst, dstStrides, shape, chunks);
            return;
        }
        var body = new Rows
        {
            Src = (float*)src.DataPointer, Dst = (float*)dst.DataPointer, Shape = shape, DstStrides = dstStrides,
            DstLen = dst.Numel, SrcRow = src.Numel / shape[0],
        };
        WorkSplit.ForRows(shape[0], src.Numel, ref body);
    }

    /// <summary>
    /// A reduction over the leading dimension: each chunk of leading rows sums into its own partial result, and the
    /// partials are added into dst in chunk order (deterministic for a thread count; the order of additions differs from
    /// one thread's, within float rounding).
    /// </summary>
    private static void ReduceLeading(Tensor src, Tensor dst, long[] dstStrides, int[] shape, int chunks)
    {
        int rows = shape[0], chunk = (rows + chunks - 1) / chunks, count = (rows + chunk - 1) / chunk;
        long rowElems = src.Numel / rows;
        int dstLen = checked((int)dst.Numel);
        var partials = new float[(long)count * dstLen];
        ParallelBlocks.For(count, c =>
        {
            int r0 = c * chunk, rc = Math.Min(chunk, rows - r0);
            var sub = (int[])shape.Clone();
            sub[0] = rc;
            Reduce.SumInto(src.Span<float>().Slice((int)(r0 * rowElems), (int)(rc * rowElems)), sub, partials.AsSpan(c * dstLen, dstLen), dstStrides);
        });
        var d = dst.Span<float>();
        for (int c = 0; c < count; c++) System.Numerics.Tensors.TensorPrimitives.Add(d, partials.AsSpan(c * dstLen, dstLen), d);
    }
}

/// <summary>
/// The broadcasting masked fill and where split over the output's leading dimension: each chunk is the same strided
/// kernel on a slab of rows (a size-1 broadcast leading dim has stride 0 and is read whole by every chunk).
/// </summary>
internal static class LeadingSplit
{
    private static void Run(int[] shape, long elements, Action<int, int> body)
    {
        int rows = shape.Length == 0 ? 1 : shape[0];
        int chunks = shape.Length == 0 ? 1 : WorkSplit.ChunkCount(elements, rows);
        if (chunks <= 1) { body(0, rows); return; }
        int chunk = (rows + chunks - 1) / chunks;
        ParallelBlocks.For((rows + chunk - 1) / chunk, i => body(i * chunk, Math.Min(chunk, rows - i * chunk)));
    }

    private static int[] Rows(int[] shape, int rows)
    {
        if (shape.Length == 0) return shape;
        var s = (int[])shape.Clone();
        s[0] = rows;
        return s;
    }

    private static long Lead(long[] strides, int r0) => strides.Length == 0 ? 0 : r0 * strides[0];

    public static void MaskedFill(Tensor x, Tensor mask, long[] maskStrides, float value, Tensor y, int[] shape)
    {
        long rowElems = shape.Length == 0 ? 1 : y.Numel / Math.Max(shape[0], 1);
        Run(shape, y.Numel, (r0, rows) => Elementwise.MaskedFill(x.Span<float>()[(int)(r0 * rowElems)..], mask.Span<byte>()[(int)Lead(maskStrides, r0)..],
            maskStrides, value, y.Span<float>().Slice((int)(r0 * rowElems), (int)(rows * rowElems)), Rows(shape, rows)));
    }

    public static void Where(Tensor cond, long[] condStrides, Tensor a, long[] aStrides, Tensor b, long[] bStrides, Tensor y, int[] shape)
    {
        long rowElems = shape.Length == 0 ? 1 : y.Numel / Math.Max(shape[0], 1);
        Run(shape, y.Numel, (r0, rows) => Elementwise.Where(cond.Span<byte>()[(int)Lead(condStrides, r0)..], condStrides,
            a.Span<float>()[(int)Lead(aStrides, r0)..], aStrides, b.Span<float>()[(int)Lead(bStrides, r0)..], bStrides,
            y.Span<float>().Slice((int)(r0 * rowElems), (int)(rows * rowElems)), Rows(shape, rows)));
    }
}
