using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Autograd;

public static partial class Ops
{
    /// <summary>
    /// Rotary position embedding of x [B, H, T, D] (queries or keys after the head transpose), HF apply_rotary_pos_emb
    /// with rotate_half; the first <see cref="RotaryEmbedding.RotaryDim"/> dims of each head rotate, the rest pass
    /// through. <paramref name="positionIds"/> holds T positions shared by the batch, or B·T (HF's position_ids [B, T]).
    /// </summary>
    public static Tensor Rope(Tensor x, RotaryEmbedding rope, ReadOnlySpan<int> positionIds)
    {
        const string op = "rope";
        if (x.Rank != 4) throw new ArgumentException($"{op}: x must be [B, H, T, D], got {x.Describe()}");
        int B = x.Size(0), H = x.Size(1), T = x.Size(2), D = x.Size(3);
        if (D != rope.HeadDim) throw new ArgumentException($"{op}: x {x.Describe()} has head dim {D}, the rotary embedding expects {rope.HeadDim}");
        if (positionIds.Length != T && positionIds.Length != B * T)
            throw new ArgumentException($"{op}: {positionIds.Length} position ids for x {x.Describe()}; expected T={T} or B·T={B * T}");
        int half = rope.RotaryDim / 2;
        var cos = Tensor.Empty(positionIds.Length, half);
        var sin = Tensor.Empty(positionIds.Length, half);
        try { rope.CosSin(positionIds, cos.Span<float>(), sin.Span<float>()); }
        catch { cos.Dispose(); sin.Dispose(); throw; }
        bool perBatch = positionIds.Length != T || B == 1;
        using var xc = OpsBInputs.F32Contiguous(x);
        var y = Tensor.Empty(B, H, T, D);
        RopeBackward.Rotate(xc, y, cos, sin, rope.RotaryDim, perBatch, inverse: false);
        if (GradMode.IsEnabled && x.TracksGrad) y.GradFn = new RopeBackward(x, cos, sin, rope.RotaryDim, perBatch);
        else { cos.Dispose(); sin.Dispose(); }
        return y;
    }

    /// <summary>Rope with positions offset, offset+1, …, offset+T−1 for every batch row (prefill at 0, KV-cache decode after it).</summary>
    public static Tensor Rope(Tensor x, RotaryEmbedding rope, int positionOffset = 0)
    {
        if (x.Rank != 4) throw new ArgumentException($"rope: x must be [B, H, T, D], got {x.Describe()}");
        if (positionOffset < 0) throw new ArgumentException($"rope: position offset {positionOffset} is negative");
        int T = x.Size(2);
        var pos = T <= 1024 ? stackalloc int[T] : new int[T];
        for (int t = 0; t < T; t++) pos[t] = positionOffset + t;
        return Rope(x, rope, pos);
    }
}

internal sealed class RopeBackward : GradNode
{
    private Tensor? _cos, _sin;
    private readonly int _rotaryDim;
    private readonly bool _perBatch;

    public RopeBackward(Tensor x, Tensor cos, Tensor sin, int rotaryDim, bool perBatch) : base(x)
    {
        _cos = cos; _sin = sin; _rotaryDim = rotaryDim; _perBatch = perBatch;
    }

    /// <summary>Rotate every (b, h, t) head row with the (b, t) or t table row; inverse uses −sin (the transpose).</summary>
    internal static void Rotate(Tensor x, Tensor y, Tensor cos, Tensor sin, int rotaryDim, bool perBatch, bool inverse)
    {
        int B = x.Size(0), H = x.Size(1), T = x.Size(2), D = x.Size(3), half = rotaryDim / 2;
        var xs = x.Span<float>();
        var ys = y.Span<float>();
        var cs = cos.Span<float>();
        var ss = sin.Span<float>();
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int t = 0; t < T; t++)
                {
                    int row = (b * H + h) * T + t;
                    int p = perBatch ? b * T + t : t;
                    RopeKernels.Apply(xs.Slice(row * D, D), ys.Slice(row * D, D), cs.Slice(p * half, half), ss.Slice(p * half, half),
                        1, D, rotaryDim, inverse);
                }
    }

    public override Tensor?[] Backward(Tensor gradOutput)
    {
        if (_cos is null) throw new InvalidOperationException("rope backward ran after its saved tables were released");
        var dx = Tensor.Empty(gradOutput.ShapeArray());
        Rotate(gradOutput, dx, _cos, _sin!, _rotaryDim, _perBatch, inverse: true);
        return new Tensor?[] { dx };
    }

    public override void ReleaseSaved()
    {
        _cos?.Dispose(); _sin?.Dispose();
        _cos = _sin = null;
    }
}
