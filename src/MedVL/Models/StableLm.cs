using MedVL.Models.Blocks;
using MedVL.Models.Config;

namespace MedVL.Models;

/// <summary>modeling_stablelm.StableLmAttention: q/k/v with use_qkv_bias, o_proj without bias, RoPE on the first
/// int(head_dim · partial_rotary_factor) channels.</summary>
public sealed class StableLmAttention(DecoderConfig c, LinearLayer q, LinearLayer k, LinearLayer v, LinearLayer o)
    : SeparateQkvAttention(c, q, k, v, o);

/// <summary>modeling_stablelm.StableLmMLP (SwiGLU, no biases).</summary>
public sealed class StableLmMlp(LinearLayer gate, LinearLayer up, LinearLayer down, string act) : GatedMlp(gate, up, down, act);

/// <summary>modeling_stablelm.StableLmDecoderLayer with use_parallel_residual = false (StableLM-2): LayerNorm pre-norm.</summary>
public sealed class StableLmDecoderLayer(NormLayer inputLayernorm, NormLayer postAttentionLayernorm, StableLmAttention selfAttn, DecoderMlp mlp)
    : DecoderLayer(inputLayernorm, postAttentionLayernorm, selfAttn, mlp);

/// <summary>StableLmForCausalLM (StableLM-2-1.6B; Med-MoE's StableLMEpoch config names are read too).</summary>
public sealed class StableLmForCausalLM : CausalLM
{
    internal StableLmForCausalLM(ModelConfig config, ModelWeights weights, string dir) : base(config, weights, dir) { }

    public static StableLmForCausalLM FromPretrained(string dir, WeightPlacement placement = WeightPlacement.Mapped) => (StableLmForCausalLM)AutoModelForCausalLM.Load(dir, DecoderFamily.StableLm, placement);

    protected override DecoderLayer CreateLayer(ModelWeights w, DecoderConfig c, string p, DecoderMlp? mlp)
    {
        var x = LlamaDecoderLayer.LoadParts(w, c, p, mlp is null);
        return new StableLmDecoderLayer(x.In, x.Post, new StableLmAttention(c, x.Q, x.K, x.V, x.O), mlp ?? new StableLmMlp(x.Gate!, x.Up!, x.Down!, c.HiddenAct));
    }
}
