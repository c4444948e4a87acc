using MedVL.Autograd;

namespace MedVL.Models.Blocks;

/// <summary>
/// One pre-norm decoder block. Sequential (LlamaDecoderLayer): h + attn(ln1 h), then + mlp(ln2 ·).
/// Parallel (PhiDecoderLayer, StableLM use_parallel_residual): one norm feeds both, h + attn(ln h) + mlp(ln h).
/// </summary>
public class DecoderLayer
{
    public DecoderLayer(NormLayer inputLayernorm, NormLayer? postAttentionLayernorm, CausalSelfAttention selfAttn, DecoderMlp mlp)
    {
        InputLayernorm = inputLayernorm;
        PostAttentionLayernorm = postAttentionLayernorm;
        SelfAttn = selfAttn;
        Mlp = mlp;
    }

    public NormLayer InputLayernorm { get; }
    /// <summary>Null for the parallel block (Phi-2 has a single input_layernorm).</summary>
    public NormLayer? PostAttentionLayernorm { get; }
    public CausalSelfAttention SelfAttn { get; }
    public DecoderMlp Mlp { get; set; }

    public Tensor Forward(Tensor h, DecoderStep step, int layerIndex)
    {
        if (PostAttentionLayernorm is null)
        {
            // modeling_phi.PhiDecoderLayer: attn_outputs + feed_forward_hidden_states + residual.
            using var x = InputLayernorm.Forward(h);
            using var a = SelfAttn.Forward(x, step, layerIndex);
            using var m = Mlp.Forward(x);
            using var am = Ops.Add(a, m);
            return Ops.Add(am, h);
        }
        Tensor h1;
        using (var x = InputLayernorm.Forward(h))
        using (var a = SelfAttn.Forward(x, step, layerIndex))
            h1 = Ops.Add(h, a);
        using (h1)
        using (var y = PostAttentionLayernorm.Forward(h1))
        using (var m = Mlp.Forward(y))
            return Ops.Add(h1, m);
    }
}
