using MedVL.Tensors;

namespace MedVL.Autograd;

/// <summary>
/// Concat/Stack (copies, with backward slicing the gradient) and Split/Chunk (views, whose backward is the view
/// backward of <see cref="Tensor.Slice"/>): what splicing image features into text embeddings needs.
/// </summary>
public static partial class Ops
{
    /// <summary>torch.cat: all tensors share dtype, rank and every size except <paramref name="dim"/>.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> xs, int dim)
    {
        if (xs.Count == 0) throw new ArgumentException("Concat: no tensors");
        var first = xs[0];
        int rank = first.Rank;
        if (rank == 0) throw new ArgumentException($"Concat: {first.Describe()} is a scalar (no dim to concatenate)");
        dim = Tensor.NormalizeDim(dim, rank);
        var shape = first.ShapeArray();
        int total = 0;
        bool record = false;
        for (int i = 0; i < xs.Count; i++)
        {
            var x = xs[i];
            if (x.DType != first.DType || x.Rank != rank)
                throw new ArgumentException($"Concat: tensor {i} {x.Describe()} differs in dtype or rank from {first.Describe()}");
            for (int k = 0; k < rank; k++)
                if (k != dim && x.Size(k) != shape[k])
                    throw new ArgumentException($"Concat along dim {dim}: tensor {i} {x.Describe()} differs from {first.Describe()} in dim {k}");
            total = checked(total + x.Size(dim));
            record |= x.TracksGrad;
        }
        shape[dim] = total;
        var y = Tensor.Empty(first.DType, shape);
        using (GradMode.NoGrad())
        {
            int off = 0;
            foreach (var x in xs)
            {
                int len = x.Size(dim);
                using var dst = y.Slice(dim, off, len);
                using var src = x.Detach();
                dst.CopyFrom(src);
                off += len;
            }
        }
        if (record && GradMode.IsEnabled) y.GradFn = new ConcatBackward(xs.ToArray(), dim);
        return y;
    }

    private sealed class ConcatBackward : GradNode
    {
        private readonly int _dim;
        public ConcatBackward(Tensor[] xs, int dim) : base(xs) => _dim = dim;

        public override Tensor?[] Backward(Tensor g)
        {
            var r = new Tensor?[Inputs.Length];
            int off = 0;
            for (int i = 0; i < Inputs.Length; i++)
            {
                int len = Inputs[i].Size(_dim);
                if (NeedsGrad(i))
                {
                    using var s = g.Slice(_dim, off, len);
                    r[i] = s.Clone();
                }
                off += len;
            }
            return r;
        }
    }

    /// <summary>torch.stack: a new dim of size xs.Count at <paramref name="dim"/> (all shapes equal).</summary>
    public static Tensor Stack(IReadOnlyList<Tensor> xs, int dim)
    {
        if (xs.Count == 0) throw new ArgumentException("Stack: no tensors");
        for (int i = 1; i < xs.Count; i++)
            if (!xs[i].Shape.SequenceEqual(xs[0].Shape))
                throw new ArgumentException($"Stack: tensor {i} {xs[i].Describe()} differs in shape from {xs[0].Describe()}");
        dim = Tensor.NormalizeDim(dim, xs[0].Rank + 1);
        var views = new Tensor[xs.Count];
        try
        {
            for (int i = 0; i < xs.Count; i++) views[i] = xs[i].Unsqueeze(dim);
            return Concat(views, dim);
        }
        finally
        {
            foreach (var v in views) v?.Dispose();
        }
    }

    /// <summary>torch.split with explicit sizes (which must sum to the dim's size): views sharing x's storage.</summary>
    public static Tensor[] Split(Tensor x, int[] sizes, int dim)
    {
        dim = Tensor.NormalizeDim(dim, x.Rank);
        long sum = 0;
        foreach (int s in sizes)
        {
            if (s < 0) throw new ArgumentException($"Split: negative size {s}");
            sum += s;
        }
        if (sum != x.Size(dim))
            throw new ArgumentException($"Split: sizes [{string.Join(", ", sizes)}] sum to {sum}, not dim {dim} of {x.Describe()}");
        var r = new Tensor[sizes.Length];
        int off = 0;
        for (int i = 0; i < sizes.Length; i++)
        {
            r[i] = x.Slice(dim, off, sizes[i]);
            off += sizes[i];
        }
        return r;
    }

    /// <summary>torch.chunk: pieces of ceil(n/chunks) along dim, the last one smaller (and fewer pieces when n is small).</summary>
    public static Tensor[] Chunk(Tensor x, int chunks, int dim)
    {
        if (chunks <= 0) throw new ArgumentException($"Chunk: chunks = {chunks} must be positive");
        dim = Tensor.NormalizeDim(dim, x.Rank);
        int n = x.Size(dim);
        int size = (n + chunks - 1) / chunks;
        if (size == 0) return new[] { x.Slice(dim, 0, 0) };
        int count = (n + size - 1) / size;
        var sizes = new int[count];
        for (int i = 0; i < count; i++) sizes[i] = Math.Min(size, n - i * size);
        return Split(x, sizes, dim);
    }

    /// <summary>Reshape that copies when x is not contiguous (torch.reshape); one dim may be -1.</summary>
    public static Tensor Reshape(Tensor x, params int[] shape)
    {
        if (x.IsContiguous) return x.Reshape(shape);
        using var c = x.Contiguous();
        return c.Reshape(shape);
    }
}
