using MedVL.Models.Blocks;
using MedVL.Models.Config;

namespace MedVL.Models;

/// <summary>modeling_llama.LlamaAttention: q/k/v/o_proj (attention_bias), GQA by repeat_kv.</summary>
public sealed class LlamaAttention(DecoderConfig c, LinearLayer q, LinearLayer k, LinearLayer v, LinearLayer o)
    : SeparateQkvAttention(c, q, k, v, o);

/// <summary>modeling_llama.LlamaMLP: down_proj(silu(gate_proj(x)) ⊙ up_proj(x)) (mlp_bias).</summary>
public sealed class LlamaMlp(LinearLayer gate, LinearLayer up, LinearLayer down, string act) : GatedMlp(gate, up, down, act);

/// <summary>modeling_llama.LlamaDecoderLayer: RMSNorm pre-norm, sequential residuals.</summary>
public sealed class LlamaDecoderLayer(NormLayer inputLayernorm, NormLayer postAttentionLayernorm, CausalSelfAttention selfAttn, DecoderMlp mlp)
    : DecoderLayer(inputLayernorm, postAttentionLayernorm, selfAttn, mlp)
{
    /// <summary>The Llama layer layout, shared by Qwen2 (which differs only in the q/k/v biases the config turns on).</summary>
    internal static (NormLayer In, NormLayer Post, LinearLayer Q, LinearLayer K, LinearLayer V, LinearLayer O, LinearLayer? Gate, LinearLayer? Up, LinearLayer? Down)
        LoadParts(ModelWeights w, DecoderConfig c, string p, bool loadMlp)
    {
        var (q, k, v, o) = SeparateQkvAttention.LoadProjections(w, c, p + ".self_attn");
        return (NormLayer.Load(w, p + ".input_layernorm", c.UsesLayerNorm, c.NormEps),
            NormLayer.Load(w, p + ".post_attention_layernorm", c.UsesLayerNorm, c.NormEps), q, k, v, o,
            loadMlp ? LinearLayer.Load(w, p + ".mlp.gate_proj", c.MlpBias) : null, loadMlp ? LinearLayer.Load(w, p + ".mlp.up_proj", c.MlpBias) : null,
            loadMlp ? LinearLayer.Load(w, p + ".mlp.down_proj", c.MlpBias) : null);
    }
}

/// <summary>LlamaForCausalLM, tied or untied lm_head.</summary>
public sealed class LlamaForCausalLM : CausalLM
{
    internal LlamaForCausalLM(ModelConfig config, ModelWeights weights, string dir) : base(config, weights, dir) { }

    public static LlamaForCausalLM FromPretrained(string dir, WeightPlacement placement = WeightPlacement.Mapped) => (LlamaForCausalLM)AutoModelForCausalLM.Load(dir, DecoderFamily.Llama, placement);

    protected override DecoderLayer CreateLayer(ModelWeights w, DecoderConfig c, string p, DecoderMlp? mlp)
    {
        var x = LlamaDecoderLayer.LoadParts(w, c, p, mlp is null);
        return new LlamaDecoderLayer(x.In, x.Post, new LlamaAttention(c, x.Q, x.K, x.V, x.O), mlp ?? new LlamaMlp(x.Gate!, x.Up!, x.Down!, c.HiddenAct));
    }
}
