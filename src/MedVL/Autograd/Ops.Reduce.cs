using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Autograd;

/// <summary>Reductions (torch.sum/mean/max(dim)), the global sum of squares, and the no-grad Argmax/TopK.</summary>
public static partial class Ops
{
    /// <summary>Sum of all elements: a tensor of shape [].</summary>
    public static Tensor Sum(Tensor x) => SumMean(x, null, false, mean: false, "Sum");
    /// <summary>Sum over <paramref name="dims"/> (negative dims count from the end), keeping them as size 1 if asked.</summary>
    public static Tensor Sum(Tensor x, int[] dims, bool keepDim = false) => SumMean(x, dims, keepDim, mean: false, "Sum");
    public static Tensor Mean(Tensor x) => SumMean(x, null, false, mean: true, "Mean");
    public static Tensor Mean(Tensor x, int[] dims, bool keepDim = false) => SumMean(x, dims, keepDim, mean: true, "Mean");

    private static Tensor SumMean(Tensor x, int[]? dims, bool keepDim, bool mean, string name)
    {
        int rank = x.Rank;
        var reduced = new bool[rank];
        if (dims is null) Array.Fill(reduced, true);
        else
            foreach (int d in dims)
            {
                int nd;
                try { nd = Tensor.NormalizeDim(d, rank); }
                catch (ArgumentOutOfRangeException) { throw new ArgumentException($"{name}: dim {d} out of range for {x.Describe()}"); }
                if (reduced[nd]) throw new ArgumentException($"{name}: dim {d} repeated");
                reduced[nd] = true;
            }
        var kept = x.ShapeArray();
        long count = 1;
        var outShape = new List<int>(rank);
        for (int i = 0; i < rank; i++)
        {
            if (reduced[i])
            {
                count *= kept[i];
                kept[i] = 1;
                if (keepDim) outShape.Add(1);
            }
            else outShape.Add(kept[i]);
        }
        using var xc = ReadF32(x, name, "x");
        // The output has the memory layout of the kept shape, whether or not the size-1 dims are shown.
        var y = Tensor.Zeros(outShape.ToArray());
        SumIntoParallel.Run(xc, y, BroadcastStrides(kept, x.Shape));
        float scale = mean ? 1f / count : 1f;
        if (mean) Elementwise.ScaleForward(y.Span<float>(), scale, y.Span<float>()); // count 0: 0·inf = NaN, as torch's mean of nothing
        if (ShouldRecord(x)) y.GradFn = new SumBackward(x, kept, scale, mean ? "MeanBackward" : "SumBackward");
        return y;
    }

    /// <summary>Broadcast the gradient back over the reduced dims (times 1/count for Mean).</summary>
    private sealed class SumBackward : GradNode
    {
        private readonly int[] _kept;
        private readonly float _scale;
        private readonly string _name;

        public SumBackward(Tensor x, int[] kept, float scale, string name) : base(x)
        {
            _kept = kept;
            _scale = scale;
            _name = name;
        }

        public override string Name => _name;

        public override Tensor?[] Backward(Tensor g)
        {
            var shape = Inputs[0].ShapeArray();
            var gx = Tensor.Empty(shape);
            using var s = Tensor.Full(_scale);
            // gx = g (broadcast from the kept shape) · scale
            Elementwise.Binary(BinaryOp.Mul, g.Span<float>(), BroadcastStrides(_kept, shape), s.Span<float>(), new long[shape.Length],
                gx.Span<float>(), shape);
            return new Tensor?[] { gx };
        }
    }

    /// <summary>torch.max(x, dim): the values and the int64 index of the first maximum; gradient flows to that index.</summary>
    public static unsafe (Tensor Values, Tensor Indices) Max(Tensor x, int dim, bool keepDim = false)
    {
        dim = Tensor.NormalizeDim(dim, x.Rank);
        var (outer, n, inner) = SplitAt(x.Shape, dim);
        if (n == 0) throw new ArgumentException($"Max: dim {dim} of {x.Describe()} is empty");
        var shape = x.ShapeArray().ToList();
        if (keepDim) shape[dim] = 1; else shape.RemoveAt(dim);
        var outShape = shape.ToArray();
        using var xc = ReadF32(x, "Max", "x");
        var values = Tensor.Empty(outShape);
        var indices = Tensor.Empty(DType.I64, outShape);
        SelectParallel.Max((float*)xc.DataPointer, outer, n, inner, (float*)values.DataPointer, (long*)indices.DataPointer);
        if (ShouldRecord(x)) values.GradFn = new MaxBackward(x, indices.Detach(), outer, n, inner);
        return (values, indices);
    }

    private static (int Outer, int N, int Inner) SplitAt(ReadOnlySpan<int> shape, int dim)
    {
        int outer = 1, inner = 1;
        for (int i = 0; i < dim; i++) outer *= shape[i];
        for (int i = dim + 1; i < shape.Length; i++) inner *= shape[i];
        return (outer, shape[dim], inner);
    }

    private sealed class MaxBackward : GradNode
    {
        private Tensor? _indices;
        private readonly int _outer, _n, _inner;

        public MaxBackward(Tensor x, Tensor indices, int outer, int n, int inner) : base(x)
        {
            _indices = indices;
            (_outer, _n, _inner) = (outer, n, inner);
        }

        public override Tensor?[] Backward(Tensor g)
        {
            var gx = Tensor.Zeros(Inputs[0].ShapeArray());
            Reduce.MaxBackward(_indices!.Span<long>(), g.Span<float>(), _outer, _n, _inner, gx.Span<float>());
            return new Tensor?[] { gx };
        }

        public override void ReleaseSaved()
        {
            _indices?.Dispose();
            _indices = null;
        }
    }

    /// <summary>Σ x² over all elements (shape []), e.g. for the global gradient norm; d/dx = 2x.</summary>
    public static Tensor SumOfSquares(Tensor x)
    {
        using var xc = ReadF32(x, "SumOfSquares", "x");
        var y = Tensor.Empty(Array.Empty<int>());
        y.Span<float>()[0] = Reduce.SumOfSquares(xc.Span<float>());
        if (ShouldRecord(x)) y.GradFn = new SumOfSquaresBackward(x, xc.Detach());
        return y;
    }

    private sealed class SumOfSquaresBackward : GradNode
    {
        private Tensor? _x;
        public SumOfSquaresBackward(Tensor x, Tensor saved) : base(x) => _x = saved;

        public override Tensor?[] Backward(Tensor g)
        {
            var gx = Tensor.Empty(Inputs[0].ShapeArray());
            Elementwise.ScaleForward(_x!.Span<float>(), 2f * g.Span<float>()[0], gx.Span<float>());
            return new Tensor?[] { gx };
        }

        public override void ReleaseSaved()
        {
            _x?.Dispose();
            _x = null;
        }
    }

    // ================= no-grad selection over the last dim =================

    /// <summary>Index (int64) of the first maximum along the last dim; NaN counts as the maximum (torch.argmax).</summary>
    public static unsafe Tensor Argmax(Tensor x)
    {
        if (x.Rank == 0 || x.Size(-1) == 0) throw new ArgumentException($"Argmax: {x.Describe()} needs a non-empty last dim");
        int n = x.Size(-1);
        using var xc = ReadF32(x, "Argmax", "x");
        var shape = x.ShapeArray()[..^1];
        var idx = Tensor.Empty(DType.I64, shape);
        SelectParallel.Run(topK: false, (float*)xc.DataPointer, (int)(x.Numel / n), n, 0, null, (long*)idx.DataPointer);
        return idx;
    }

    /// <summary>The k largest values along the last dim, sorted descending, and their int64 indices (torch.topk; ties: lower index first).</summary>
    public static unsafe (Tensor Values, Tensor Indices) TopK(Tensor x, int k)
    {
        if (x.Rank == 0) throw new ArgumentException($"TopK: {x.Describe()} has no last dim");
        int n = x.Size(-1);
        if (k < 0 || k > n) throw new ArgumentOutOfRangeException(nameof(k), $"TopK: k = {k} for last dim of size {n} in {x.Describe()}");
        using var xc = ReadF32(x, "TopK", "x");
        var shape = x.ShapeArray();
        shape[^1] = k;
        var values = Tensor.Empty(shape);
        var indices = Tensor.Empty(DType.I64, shape);
        if (k > 0) SelectParallel.Run(topK: true, (float*)xc.DataPointer, (int)(x.Numel / Math.Max(n, 1)), n, k, (float*)values.DataPointer, (long*)indices.DataPointer);
        return (values, indices);
    }
}

/// <summary>Argmax, top-k and max over a dim, over row (outer) chunks: rows are independent, so bit-identical to one call.</summary>
internal static unsafe class SelectParallel
{
    private struct SelectRows : IRowChunk
    {
        public bool TopK;
        public float* X, Values;
        public long* Indices;
        public int N, K;

        public void Run(int r0, int rc)
        {
            var x = new ReadOnlySpan<float>(X + (long)r0 * N, checked(rc * N));
            if (!TopK) { Select.Argmax(x, new Span<long>(Indices + r0, rc), rc, N); return; }
            Select.TopK(x, rc, N, K, new Span<float>(Values + (long)r0 * K, checked(rc * K)), new Span<long>(Indices + (long)r0 * K, checked(rc * K)));
        }
    }

    private struct MaxRows : IRowChunk
    {
        public float* X, Values;
        public long* Indices;
        public int N, Inner;

        public void Run(int o0, int oc)
        {
            long inOff = (long)o0 * N * Inner, outOff = (long)o0 * Inner;
            Reduce.MaxForward(new ReadOnlySpan<float>(X + inOff, checked(oc * N * Inner)), oc, N, Inner,
                new Span<float>(Values + outOff, checked(oc * Inner)), new Span<long>(Indices + outOff, checked(oc * Inner)));
        }
    }

    /// <summary>Max over the middle axis of [outer, n, inner], split over outer (each output written by one chunk).</summary>
    public static void Max(float* x, int outer, int n, int inner, float* values, long* indices)
    {
        var body = new MaxRows { X = x, Values = values, Indices = indices, N = n, Inner = inner };
        if (inner > 0) WorkSplit.ForRows(outer, (long)outer * n * inner, ref body);
    }

    public static void Run(bool topK, float* x, int rows, int n, int k, float* values, long* indices)
    {
        var body = new SelectRows { TopK = topK, X = x, Values = values, Indices = indices, N = n, K = k };
        WorkSplit.ForRows(rows, (long)rows * n, ref body);
    }
}
