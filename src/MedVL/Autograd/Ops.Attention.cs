using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Autograd;

public static partial class Ops
{
    /// <summary>
    /// softmax(q·kᵀ·scale + mask)·v over q [B, H, T, D] and k, v [B, Hkv, S, D] (HF's layout after transpose(1, 2)),
    /// as torch.nn.functional.scaled_dot_product_attention with HF's repeat_kv for grouped-query / multi-query
    /// attention (query head h reads kv head h / (H / Hkv)). Query i is at absolute position S − T + i, so with a KV
    /// cache of S keys the T new queries are masked bottom-right (see <see cref="AttentionGeometry"/>).
    /// </summary>
    /// <param name="mask">Optional additive float mask [T, S] (shared), [B, T, S] or [B, 1, T, S] (per batch); −∞ hides a key.</param>
    /// <param name="causal">Hide keys after each query's position.</param>
    /// <param name="scale">Softmax scale; default 1/√D.</param>
    /// <param name="slidingWindow">If &gt; 0 (causal only), query at position p sees keys p − window &lt; j ≤ p (Mistral, Phi-3).</param>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, Tensor? mask = null, bool causal = false,
        float? scale = null, int slidingWindow = 0, CancellationToken cancellationToken = default)
    {
        const string op = "scaled_dot_product_attention";
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4)
            throw new ArgumentException($"{op}: q, k, v must be [B, H, T, D]; got q {q.Describe()}, k {k.Describe()}, v {v.Describe()}");
        int B = q.Size(0), H = q.Size(1), T = q.Size(2), D = q.Size(3);
        int Hkv = k.Size(1), S = k.Size(2);
        if (k.Size(0) != B || k.Size(3) != D || !k.Shape.SequenceEqual(v.Shape))
            throw new ArgumentException($"{op}: k and v must both be [B={B}, Hkv, S, D={D}]; got q {q.Describe()}, k {k.Describe()}, v {v.Describe()}");
        if (Hkv == 0 || H % Hkv != 0)
            throw new ArgumentException($"{op}: query heads {H} must be a multiple of key/value heads {Hkv} (q {q.Describe()}, k {k.Describe()})");
        bool maskPerBatch = false;
        if (mask is not null)
        {
            var ms = mask.Shape;
            bool shared = mask.Rank == 2 && ms[0] == T && ms[1] == S;
            bool perBatch3 = mask.Rank == 3 && ms[0] == B && ms[1] == T && ms[2] == S;
            bool perBatch4 = mask.Rank == 4 && ms[0] == B && ms[1] == 1 && ms[2] == T && ms[3] == S;
            bool shared4 = mask.Rank == 4 && ms[0] == 1 && ms[1] == 1 && ms[2] == T && ms[3] == S;
            if (!(shared || perBatch3 || perBatch4 || shared4))
                throw new ArgumentException($"{op}: mask {mask.Describe()} must be [T={T}, S={S}], [B={B}, T, S], [B, 1, T, S] or [1, 1, T, S]");
            maskPerBatch = (perBatch3 || perBatch4) && B > 1;
        }
        bool record = GradMode.IsEnabled && (q.TracksGrad || k.TracksGrad || v.TracksGrad);
        // Inference on a KV-cache view ([B, Hkv, capacity, D] sliced to S rows): read it in place, planes KvStride apart,
        // instead of copying the whole cache into a contiguous tensor every step.
        long plane = !record ? PlaneStride(k, v) : 0;
        var geometry = new AttentionGeometry(B, H, Hkv, T, S, D, scale ?? 1f / MathF.Sqrt(D), causal, slidingWindow,
            mask is not null, maskPerBatch, plane);
        try { geometry.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"{e.Message} (q {q.Describe()}, k {k.Describe()})", e); }

        var qc = OpsBInputs.F32Contiguous(q);
        var kc = plane > 0 ? k.Detach() : OpsBInputs.F32Contiguous(k);
        var vc = plane > 0 ? v.Detach() : OpsBInputs.F32Contiguous(v);
        var mc = mask is null ? null : OpsBInputs.F32Contiguous(mask);
        var output = Tensor.Empty(B, H, T, D);
        var lse = Tensor.Empty(B, H, T);
        try
        {
            AttentionKernels.Forward(qc.Span<float>(), KvSpan(kc, geometry), KvSpan(vc, geometry),
                mc is null ? default : mc.Span<float>(), output.Span<float>(), lse.Span<float>(), geometry, cancellationToken);
        }
        catch
        {
            output.Dispose();
            DisposeAll(qc, kc, vc, mc, lse);
            throw;
        }
        if (record)
            output.GradFn = new AttentionBackward(q, k, v, qc, kc, vc, mc, output.Detach(), lse, geometry);
        else
            DisposeAll(qc, kc, vc, mc, lse);
        return output;
    }

    /// <summary>The plane stride of k and v when both are float32 views with rows D apart and planes evenly spaced
    /// (a KV cache slice); 0 when they must be made contiguous.</summary>
    private static long PlaneStride(Tensor k, Tensor v)
    {
        if (k.DType != DType.F32 || v.DType != DType.F32 || k.IsContiguous || v.IsContiguous) return 0;
        var ks = k.Strides; var vs = v.Strides;
        int hkv = k.Size(1), d = k.Size(3);
        if (!ks.SequenceEqual(vs) || ks[3] != 1 || ks[2] != d || ks[1] < (long)k.Size(2) * d) return 0;
        if (k.Size(0) > 1 && ks[0] != hkv * ks[1]) return 0;
        return ks[1];
    }

    /// <summary>A span over a contiguous tensor, or over a plane-strided view from its first element.</summary>
    private static unsafe ReadOnlySpan<float> KvSpan(Tensor t, in AttentionGeometry g) => g.KvPlaneStride == 0
        ? t.Span<float>()
        : new ReadOnlySpan<float>((float*)t.DataPointer, checked((int)g.KvSpanElements));

    private static void DisposeAll(params Tensor?[] ts)
    {
        foreach (var t in ts) t?.Dispose();
    }
}

/// <summary>Input conversion shared by the part-B ops: a graph-free float32 contiguous reference the op owns.</summary>
internal static class OpsBInputs
{
    public static Tensor F32Contiguous(Tensor t)
    {
        if (t.DType == DType.F32) return t.IsContiguous ? t.Detach() : t.Clone();
        return t.To(DType.F32);
    }
}

/// <summary>FlashAttention-2 style backward: recomputes the probabilities from the saved per-row log-sum-exp.</summary>
internal sealed class AttentionBackward : GradNode
{
    private Tensor? _q, _k, _v, _mask, _o, _lse;
    private readonly AttentionGeometry _geometry;

    public AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor qc, Tensor kc, Tensor vc, Tensor? mask, Tensor o, Tensor lse,
        AttentionGeometry geometry) : base(q, k, v)
    {
        _q = qc; _k = kc; _v = vc; _mask = mask; _o = o; _lse = lse;
        _geometry = geometry;
    }

    public override Tensor?[] Backward(Tensor gradOutput)
    {
        if (_q is null) throw new InvalidOperationException("attention backward ran after its saved tensors were released (use retainGraph to backward twice)");
        var dq = Tensor.Empty(_q.ShapeArray());
        var dk = Tensor.Empty(_k!.ShapeArray());
        var dv = Tensor.Empty(_v!.ShapeArray());
        AttentionKernels.Backward(_q.Span<float>(), _k.Span<float>(), _v.Span<float>(),
            _mask is null ? default : _mask.Span<float>(), _o!.Span<float>(), _lse!.Span<float>(), gradOutput.Span<float>(),
            dq.Span<float>(), dk.Span<float>(), dv.Span<float>(), _geometry);
        var result = new Tensor?[] { dq, dk, dv };
        for (int i = 0; i < 3; i++)
            if (!NeedsGrad(i)) { result[i]!.Dispose(); result[i] = null; }
        return result;
    }

    public override void ReleaseSaved()
    {
        _q?.Dispose(); _k?.Dispose(); _v?.Dispose(); _mask?.Dispose(); _o?.Dispose(); _lse?.Dispose();
        _q = _k = _v = _mask = _o = _lse = null;
    }
}
