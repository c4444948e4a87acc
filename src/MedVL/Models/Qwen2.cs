using MedVL.Models.Blocks;
using MedVL.Models.Config;

namespace MedVL.Models;

/// <summary>modeling_qwen2.Qwen2Attention: Llama's with biases on q/k/v (not o); sliding window only with use_sliding_window.</summary>
public sealed class Qwen2Attention(DecoderConfig c, LinearLayer q, LinearLayer k, LinearLayer v, LinearLayer o)
    : SeparateQkvAttention(c, q, k, v, o);

/// <summary>modeling_qwen2.Qwen2MLP (= LlamaMLP without biases).</summary>
public sealed class Qwen2Mlp(LinearLayer gate, LinearLayer up, LinearLayer down, string act) : GatedMlp(gate, up, down, act);

/// <summary>modeling_qwen2.Qwen2DecoderLayer.</summary>
public sealed class Qwen2DecoderLayer(NormLayer inputLayernorm, NormLayer postAttentionLayernorm, Qwen2Attention selfAttn, DecoderMlp mlp)
    : DecoderLayer(inputLayernorm, postAttentionLayernorm, selfAttn, mlp);

/// <summary>Qwen2ForCausalLM (Qwen2 / Qwen2.5; HealthGPT-XL's language model).</summary>
public sealed class Qwen2ForCausalLM : CausalLM
{
    internal Qwen2ForCausalLM(ModelConfig config, ModelWeights weights, string dir) : base(config, weights, dir) { }

    public static Qwen2ForCausalLM FromPretrained(string dir, WeightPlacement placement = WeightPlacement.Mapped) => (Qwen2ForCausalLM)AutoModelForCausalLM.Load(dir, DecoderFamily.Qwen2, placement);

    protected override DecoderLayer CreateLayer(ModelWeights w, DecoderConfig c, string p, DecoderMlp? mlp)
    {
        var x = LlamaDecoderLayer.LoadParts(w, c, p, mlp is null);
        return new Qwen2DecoderLayer(x.In, x.Post, new Qwen2Attention(c, x.Q, x.K, x.V, x.O), mlp ?? new Qwen2Mlp(x.Gate!, x.Up!, x.Down!, c.HiddenAct));
    }
}
