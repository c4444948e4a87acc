using MedVL.Tensors;

namespace MedVL.Autograd;

/// <summary>Row gather and scatter (torch index_select(0, rows) and index_add_ into zeros), for MoE token dispatch.</summary>
public static partial class Ops
{
    /// <summary>y[i, :] = x[rows[i], :] for x [S, D] (float32); backward adds each g row back at rows[i] (repeats add up).</summary>
    public static Tensor IndexSelectRows(Tensor x, ReadOnlySpan<int> rows)
    {
        if (x.Rank != 2) throw new ArgumentException($"IndexSelectRows: x {x.Describe()} must be [S, D]");
        int s = x.Size(0), d = x.Size(1);
        var r = rows.ToArray();
        foreach (int i in r) if ((uint)i >= (uint)s) throw new ArgumentOutOfRangeException(nameof(rows), i, $"row outside [0, {s})");
        using var xc = OpsBInputs.F32Contiguous(x);
        var y = Tensor.Empty(r.Length, d);
        var src = xc.Span<float>();
        var dst = y.Span<float>();
        for (int i = 0; i < r.Length; i++) src.Slice(r[i] * d, d).CopyTo(dst.Slice(i * d, d));
        if (GradMode.IsEnabled && x.TracksGrad) y.GradFn = new IndexSelectRowsBackward(x, r);
        return y;
    }

    /// <summary>y [S, D] = zeros with y[rows[i], :] += x[i, :] (index_add_); backward gathers g at rows.</summary>
    public static Tensor ScatterAddRows(Tensor x, ReadOnlySpan<int> rows, int s)
    {
        if (x.Rank != 2 || x.Size(0) != rows.Length) throw new ArgumentException($"ScatterAddRows: x {x.Describe()} must be [{rows.Length}, D]");
        int d = x.Size(1);
        var r = rows.ToArray();
        foreach (int i in r) if ((uint)i >= (uint)s) throw new ArgumentOutOfRangeException(nameof(rows), i, $"row outside [0, {s})");
        using var xc = OpsBInputs.F32Contiguous(x);
        var y = Tensor.Zeros(s, d);
        var src = xc.Span<float>();
        var dst = y.Span<float>();
        for (int i = 0; i < r.Length; i++)
        {
            var o = dst.Slice(r[i] * d, d);
            System.Numerics.Tensors.TensorPrimitives.Add(o, src.Slice(i * d, d), o);
        }
        if (GradMode.IsEnabled && x.TracksGrad) y.GradFn = new ScatterAddRowsBackward(x, r);
        return y;
    }

    private sealed class IndexSelectRowsBackward(Tensor x, int[] rows) : GradNode(x)
    {
        public override Tensor?[] Backward(Tensor g)
        {
            int d = Inputs[0].Size(1);
            var gx = Tensor.Zeros(Inputs[0].ShapeArray());
            var gs = g.Span<float>();
            var dst = gx.Span<float>();
            for (int i = 0; i < rows.Length; i++)
            {
                var o = dst.Slice(rows[i] * d, d);
                System.Numerics.Tensors.TensorPrimitives.Add(o, gs.Slice(i * d, d), o);
            }
            return [gx];
        }
    }

    private sealed class ScatterAddRowsBackward(Tensor x, int[] rows) : GradNode(x)
    {
        public override Tensor?[] Backward(Tensor g)
        {
            int d = Inputs[0].Size(1);
            var gx = Tensor.Empty(rows.Length, d);
            var gs = g.Span<float>();
            var dst = gx.Span<float>();
            for (int i = 0; i < rows.Length; i++) gs.Slice(rows[i] * d, d).CopyTo(dst.Slice(i * d, d));
            return [gx];
        }
    }
}
