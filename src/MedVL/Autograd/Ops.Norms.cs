using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Autograd;

/// <summary>
/// RMSNorm (HF LlamaRMSNorm / Phi3RMSNorm), LayerNorm (CLIP, StableLM, Phi-2) and GroupNorm (VQGAN: 32 groups,
/// eps 1e-6). Weights and biases may be float32, bf16 or f16 (widened to float32); their gradients are float32.
/// </summary>
public static partial class Ops
{
    /// <summary>y = weight ⊙ x · rsqrt(mean(x², last dim) + eps), all in float32 (HF computes the variance in float32).</summary>
    public static Tensor RmsNorm(Tensor x, Tensor? weight, float eps)
    {
        int d = LastDim(x, "RmsNorm");
        CheckParam(weight, d, "RmsNorm", "weight", x);
        int rows = (int)(x.Numel / Math.Max(d, 1));
        using var xc = ReadF32(x, "RmsNorm", "x");
        using var wc = weight is null ? null : ReadF32(weight, "RmsNorm", "weight");
        var y = NewLike(x);
        var rstd = Tensor.Empty(rows);
        unsafe
        {
            var job = new RowParallel.Job
            {
                Kind = RowParallel.Kernel.RmsNorm, X = (float*)xc.DataPointer, W = wc is null ? null : (float*)wc.DataPointer,
                Y = (float*)y.DataPointer, Stat1 = (float*)rstd.DataPointer, Rows = rows, D = d, Eps = eps,
            };
            RowParallel.Run(ref job);
        }
        if (ShouldRecord(x, weight))
            y.GradFn = new NormBackward(NormKind.Rms, x, weight, null, xc.Detach(), wc?.Detach(), rstd, rows, d, 0, 0);
        else rstd.Dispose();
        return y;
    }

    /// <summary>torch.nn.functional.layer_norm over the last dim: (x − mean)/sqrt(var + eps) ⊙ weight + bias (biased variance).</summary>
    public static Tensor LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps)
    {
        int d = LastDim(x, "LayerNorm");
        CheckParam(weight, d, "LayerNorm", "weight", x);
        CheckParam(bias, d, "LayerNorm", "bias", x);
        int rows = (int)(x.Numel / Math.Max(d, 1));
        using var xc = ReadF32(x, "LayerNorm", "x");
        using var wc = weight is null ? null : ReadF32(weight, "LayerNorm", "weight");
        using var bc = bias is null ? null : ReadF32(bias, "LayerNorm", "bias");
        var y = NewLike(x);
        var stats = Tensor.Empty(2, rows); // mean, rstd
        unsafe
        {
            var job = new RowParallel.Job
            {
                Kind = RowParallel.Kernel.LayerNorm, X = (float*)xc.DataPointer, W = wc is null ? null : (float*)wc.DataPointer,
                B = bc is null ? null : (float*)bc.DataPointer, Y = (float*)y.DataPointer, Stat1 = (float*)stats.DataPointer,
                Stat2 = (float*)stats.DataPointer + rows, Rows = rows, D = d, Eps = eps,
            };
            RowParallel.Run(ref job);
        }
        if (ShouldRecord(x, weight, bias))
            y.GradFn = new NormBackward(NormKind.Layer, x, weight, bias, xc.Detach(), wc?.Detach(), stats, rows, d, 0, 0);
        else stats.Dispose();
        return y;
    }

    /// <summary>torch.nn.functional.group_norm on x [N, C, *]: statistics per (sample, group of C/groups channels), per-channel affine.</summary>
    public static Tensor GroupNorm(Tensor x, int groups, Tensor? weight, Tensor? bias, float eps)
    {
        if (x.Rank < 2) throw new ArgumentException($"GroupNorm: x {x.Describe()} must be [N, C, ...]");
        int n = x.Size(0), c = x.Size(1);
        if (groups <= 0 || c % groups != 0)
            throw new ArgumentException($"GroupNorm: {c} channels of {x.Describe()} are not divisible into {groups} groups");
        CheckParam(weight, c, "GroupNorm", "weight", x);
        CheckParam(bias, c, "GroupNorm", "bias", x);
        int spatial = c == 0 || n == 0 ? 0 : (int)(x.Numel / ((long)n * c));
        using var xc = ReadF32(x, "GroupNorm", "x");
        using var wc = weight is null ? null : ReadF32(weight, "GroupNorm", "weight");
        using var bc = bias is null ? null : ReadF32(bias, "GroupNorm", "bias");
        var y = NewLike(x);
        int blocks = n * groups;
        var stats = Tensor.Empty(2, blocks);
        GroupNormParallel.Forward(xc, wc, bc, y, stats, n, c, spatial, groups, eps);
        if (ShouldRecord(x, weight, bias))
            y.GradFn = new NormBackward(NormKind.Group, x, weight, bias, xc.Detach(), wc?.Detach(), stats, n, c, spatial, groups);
        else stats.Dispose();
        return y;
    }

    private static int LastDim(Tensor x, string op)
    {
        if (x.Rank == 0) throw new ArgumentException($"{op}: x {x.Describe()} needs at least one dimension");
        return x.Size(-1);
    }

    private static void CheckParam(Tensor? p, int size, string op, string name, Tensor x)
    {
        if (p is not null && (p.Rank != 1 || p.Size(0) != size))
            throw new ArgumentException($"{op}: {name} {p.Describe()} must have shape [{size}] for x {x.Describe()}");
    }

    private enum NormKind { Rms, Layer, Group }

    private sealed class NormBackward : GradNode
    {
        private readonly NormKind _kind;
        private readonly int _a, _b, _c, _d; // Rms/Layer: rows, d; Group: n, c, spatial, groups
        private readonly int _wIndex, _bIndex;
        private Tensor? _x, _w, _stats;

        public NormBackward(NormKind kind, Tensor x, Tensor? weight, Tensor? bias, Tensor xSaved, Tensor? wSaved, Tensor stats,
            int a, int b, int c, int d) : base(Inputs3(x, weight, bias))
        {
            _kind = kind;
            _x = xSaved;
            _w = wSaved;
            _stats = stats;
            (_a, _b, _c, _d) = (a, b, c, d);
            _wIndex = weight is null ? -1 : 1;
            _bIndex = bias is null ? -1 : (weight is null ? 1 : 2);
        }

        private static Tensor[] Inputs3(Tensor x, Tensor? w, Tensor? b)
        {
            var l = new List<Tensor>(3) { x };
            if (w is not null) l.Add(w);
            if (b is not null) l.Add(b);
            return l.ToArray();
        }

        public override string Name => _kind + "NormBackward";

        public override Tensor?[] Backward(Tensor g)
        {
            var result = new Tensor?[Inputs.Length];
            Tensor? gx = NeedsGrad(0) ? Tensor.Empty(Inputs[0].ShapeArray()) : null;
            Tensor? gw = _wIndex > 0 && NeedsGrad(_wIndex) ? Tensor.Zeros(Inputs[_wIndex].ShapeArray()) : null;
            Tensor? gb = _bIndex > 0 && NeedsGrad(_bIndex) ? Tensor.Zeros(Inputs[_bIndex].ShapeArray()) : null;
            if (_kind == NormKind.Group) GroupNormParallel.Backward(_x!, _w, _stats!, g, gx, gw, gb, _a, _b, _c, _d);
            else NormBackwardParallel.Run(_kind == NormKind.Layer, _x!, _w, _stats!, g, gx, gw, gb, _a, _b);
            result[0] = gx;
            if (_wIndex > 0) result[_wIndex] = gw;
            if (_bIndex > 0) result[_bIndex] = gb;
            return result;
        }

        public override void ReleaseSaved()
        {
            _x?.Dispose(); _x = null;
            _w?.Dispose(); _w = null;
            _stats?.Dispose(); _stats = null;
        }
    }
}

/// <summary>
/// RMSNorm / LayerNorm backward over row chunks. dX rows are independent; the weight and bias gradients are sums over
/// rows, so each chunk accumulates its own partial and the partials are added in chunk order afterwards (deterministic
/// for a given thread count; the summation order differs from one thread, within float rounding).
/// </summary>
internal static unsafe class NormBackwardParallel
{
    private struct Job : IParallelJob
    {
        public bool Layer;
        public float* X, W, Stats, G, Gx, Partials;
        public int Rows, D, Chunk;
        public bool HasW, HasGx, HasGw, HasGb;

        public void Execute(int index)
        {
            int r0 = index * Chunk, rc = Math.Min(Chunk, Rows - r0);
            if (rc <= 0) return;
            long off = (long)r0 * D;
            int len = checked(rc * D);
            var x = new ReadOnlySpan<float>(X + off, len);
            var gy = new ReadOnlySpan<float>(G + off, len);
            var w = HasW ? new ReadOnlySpan<float>(W, D) : default;
            var gx = HasGx ? new Span<float>(Gx + off, len) : default;
            float* part = Partials + (long)index * 2 * D;
            var gw = HasGw ? new Span<float>(part, D) : default;
            var gb = HasGb ? new Span<float>(part + D, D) : default;
            if (Layer)
                Norms.LayerNormBackward(x, w, new ReadOnlySpan<float>(Stats + r0, rc), new ReadOnlySpan<float>(Stats + Rows + r0, rc), gy, gx, gw, gb, rc, D);
            else
                Norms.RmsNormBackward(x, w, new ReadOnlySpan<float>(Stats + r0, rc), gy, gx, gw, rc, D);
        }
    }

    public static void Run(bool layer, Tensor x, Tensor? w, Tensor stats, Tensor g, Tensor? gx, Tensor? gw, Tensor? gb, int rows, int d)
    {
        int chunks = WorkSplit.ChunkCount((long)rows * d, rows);
        int chunk = (rows + chunks - 1) / Math.Max(chunks, 1);
        int count = Math.Max(1, (rows + chunk - 1) / Math.Max(chunk, 1));
        using var partials = Tensor.Zeros(count, 2, d);
        var job = new Job
        {
            Layer = layer, X = (float*)x.DataPointer, W = w is null ? null : (float*)w.DataPointer, Stats = (float*)stats.DataPointer,
            G = (float*)g.DataPointer, Gx = gx is null ? null : (float*)gx.DataPointer, Partials = (float*)partials.DataPointer,
            Rows = rows, D = d, Chunk = Math.Max(chunk, 1), HasW = w is not null, HasGx = gx is not null, HasGw = gw is not null, HasGb = gb is not null,
        };
        if (count == 1) job.Execute(0);
        else ParallelRuntime.For(count, ref job);
        var ps = partials.Span<float>();
        for (int c = 0; c < count; c++)
        {
            if (gw is not null) System.Numerics.Tensors.TensorPrimitives.Add(gw.Span<float>(), ps.Slice(c * 2 * d, d), gw.Span<float>());
            if (gb is not null) System.Numerics.Tensors.TensorPrimitives.Add(gb.Span<float>(), ps.Slice(c * 2 * d + d, d), gb.Span<float>());
        }
    }
}

/// <summary>
/// GroupNorm split into its (sample, group) blocks, each run by the same kernel on one block. The backward goes group by
/// group, each task walking the samples in order, so every channel's weight/bias gradient is summed in the one-thread
/// order and tasks never share a channel: bit-identical to one call.
/// </summary>
internal static class GroupNormParallel
{
    public static void Forward(Tensor x, Tensor? w, Tensor? b, Tensor y, Tensor stats, int n, int c, int spatial, int groups, float eps)
    {
        int blocks = n * groups, cg = c / groups, len = cg * spatial;
        void Block(int i)
        {
            int c0 = (i % groups) * cg;
            var st = stats.Span<float>();
            Norms.GroupNormForward(x.Span<float>().Slice(i * len, len), w is null ? default : w.Span<float>().Slice(c0, cg),
                b is null ? default : b.Span<float>().Slice(c0, cg), y.Span<float>().Slice(i * len, len),
                st.Slice(i, 1), st.Slice(blocks + i, 1), 1, cg, spatial, 1, eps);
        }
        if (WorkSplit.ChunkCount(y.Numel, blocks) <= 1) { for (int i = 0; i < blocks; i++) Block(i); }
        else ParallelBlocks.For(blocks, Block);
    }

    public static void Backward(Tensor x, Tensor? w, Tensor stats, Tensor g, Tensor? gx, Tensor? gw, Tensor? gb, int n, int c, int spatial, int groups)
    {
        int blocks = n * groups, cg = c / groups, len = cg * spatial;
        void Group(int grp)
        {
            int c0 = grp * cg;
            var st = stats.Span<float>();
            for (int s = 0; s < n; s++)
            {
                int i = s * groups + grp;
                Norms.GroupNormBackward(x.Span<float>().Slice(i * len, len), w is null ? default : w.Span<float>().Slice(c0, cg),
                    st.Slice(i, 1), st.Slice(blocks + i, 1), g.Span<float>().Slice(i * len, len),
                    gx is null ? default : gx.Span<float>().Slice(i * len, len), gw is null ? default : gw.Span<float>().Slice(c0, cg),
                    gb is null ? default : gb.Span<float>().Slice(c0, cg), 1, cg, spatial, 1);
            }
        }
        if (WorkSplit.ChunkCount(x.Numel, groups) <= 1) { for (int grp = 0; grp < groups; grp++) Group(grp); }
        else ParallelBlocks.For(groups, Group);
    }
}
