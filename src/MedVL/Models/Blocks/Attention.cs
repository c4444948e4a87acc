using MedVL.Autograd;
using MedVL.Models.Config;

namespace MedVL.Models.Blocks;

/// <summary>
/// Causal multi-head self-attention shared by the decoder families (HF LlamaAttention.forward / eager_attention_forward):
/// project q, k, v; split heads [B, T, n·D] → [B, n, T, D]; RoPE on the first rotary_dim channels of q and k; append
/// k, v to the cache; softmax(q·kᵀ/√D + causal/sliding/padding mask)·v with GQA (repeat_kv); merge heads; o_proj.
/// Every step is an <see cref="Ops"/> call, so the same code runs inference (NoGrad, cache) and training (autograd).
/// </summary>
public abstract class CausalSelfAttention
{
    protected CausalSelfAttention(DecoderConfig c, LinearLayer oProj)
    {
        NumHeads = c.NumAttentionHeads!.Value;
        NumKeyValueHeads = c.NumKeyValueHeads;
        HeadDim = c.HeadDim;
        SlidingWindow = c.SlidingWindow ?? 0;
        OProj = oProj;
    }

    public int NumHeads { get; }
    public int NumKeyValueHeads { get; }
    public int HeadDim { get; }
    /// <summary>0 = none. Query at p sees keys p − window &lt; j ≤ p (transformers ≥ 4.48 sliding_window_overlay).</summary>
    public int SlidingWindow { get; }
    /// <summary>Output projection (o_proj; Phi-2's dense).</summary>
    public LinearLayer OProj { get; set; }

    /// <summary>q [B, T, NumHeads·D], k and v [B, T, NumKeyValueHeads·D]; the caller disposes them.</summary>
    protected abstract (Tensor Q, Tensor K, Tensor V) ProjectQkv(Tensor x);

    public Tensor Forward(Tensor x, DecoderStep step, int layerIndex)
    {
        var (q3, k3, v3) = ProjectQkv(x);
        Tensor q, k, v;
        using (q3) using (k3) using (v3)
        {
            q = SplitHeadsRope(q3, NumHeads, step, rope: true);
            k = SplitHeadsRope(k3, NumKeyValueHeads, step, rope: true);
            v = SplitHeadsRope(v3, NumKeyValueHeads, step, rope: false);
        }
        Tensor o;
        using (q)
        {
            if (step.Cache is { } cache)
            {
                var (kAll, vAll) = cache.Append(layerIndex, k, v);
                k.Dispose(); v.Dispose();
                k = kAll; v = vAll;
            }
            using (k) using (v)
                o = Ops.ScaledDotProductAttention(q, k, v, step.Mask, causal: true, scale: 1f / MathF.Sqrt(HeadDim),
                    slidingWindow: SlidingWindow, cancellationToken: step.CancellationToken);
        }
        Tensor merged;
        using (o)
        using (var ot = o.Transpose(1, 2))
            merged = Ops.Reshape(ot, step.Batch, step.Length, NumHeads * HeadDim);
        using (merged) return OProj.Forward(merged);
    }

    private static Tensor SplitHeadsRope(Tensor x, int heads, DecoderStep step, bool rope)
    {
        int hd = x.Size(-1) / heads;
        using var r = Ops.Reshape(x, step.Batch, step.Length, heads, hd);
        var t = r.Transpose(1, 2);
        if (!rope) return t;
        using (t) return Ops.Rope(t, step.Rope, step.PositionIds);
    }
}

/// <summary>Separate q_proj / k_proj / v_proj (Llama, Qwen2, StableLM, Phi-2).</summary>
public class SeparateQkvAttention : CausalSelfAttention
{
    public SeparateQkvAttention(DecoderConfig c, LinearLayer q, LinearLayer k, LinearLayer v, LinearLayer o) : base(c, o)
    {
        QProj = q; KProj = k; VProj = v;
    }

    public LinearLayer QProj { get; set; }
    public LinearLayer KProj { get; set; }
    public LinearLayer VProj { get; set; }

    protected override (Tensor Q, Tensor K, Tensor V) ProjectQkv(Tensor x) => (QProj.Forward(x), KProj.Forward(x), VProj.Forward(x));

    /// <summary>Loads {prefix}.q_proj/k_proj/v_proj and the output projection named <paramref name="outName"/>.</summary>
    public static (LinearLayer Q, LinearLayer K, LinearLayer V, LinearLayer O) LoadProjections(ModelWeights w, DecoderConfig c, string prefix, string outName = "o_proj") =>
        (LinearLayer.Load(w, prefix + ".q_proj", c.QkvBias), LinearLayer.Load(w, prefix + ".k_proj", c.QkvBias),
         LinearLayer.Load(w, prefix + ".v_proj", c.QkvBias), LinearLayer.Load(w, prefix + "." + outName, c.OutputBias));
}
