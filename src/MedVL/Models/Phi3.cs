using MedVL.Autograd;
using MedVL.Models.Blocks;
using MedVL.Models.Config;

namespace MedVL.Models;

/// <summary>modeling_phi3.Phi3Attention: one fused qkv_proj whose output rows are q | k | v (GQA in phi-4), no biases.</summary>
public sealed class Phi3Attention : CausalSelfAttention
{
    public Phi3Attention(DecoderConfig c, LinearLayer qkvProj, LinearLayer oProj) : base(c, oProj) => QkvProj = qkvProj;

    public LinearLayer QkvProj { get; set; }

    protected override (Tensor Q, Tensor K, Tensor V) ProjectQkv(Tensor x)
    {
        using var qkv = QkvProj.Forward(x);
        int q = NumHeads * HeadDim, kv = NumKeyValueHeads * HeadDim;
        var parts = Ops.Split(qkv, [q, kv, kv], -1);
        return (parts[0], parts[1], parts[2]);
    }
}

/// <summary>modeling_phi3.Phi3MLP: gate_up_proj (rows gate | up), down_proj(up ⊙ silu(gate)).</summary>
public sealed class Phi3Mlp(LinearLayer gateUp, LinearLayer down, string act) : FusedGatedMlp(gateUp, down, act);

/// <summary>modeling_phi3.Phi3DecoderLayer: RMSNorm pre-norm, sequential residuals.</summary>
public sealed class Phi3DecoderLayer(NormLayer inputLayernorm, NormLayer postAttentionLayernorm, Phi3Attention selfAttn, DecoderMlp mlp)
    : DecoderLayer(inputLayernorm, postAttentionLayernorm, selfAttn, mlp);

/// <summary>Phi3ForCausalLM (Phi-3-mini/medium incl. LongRoPE 128k variants, phi-4): HealthGPT's language model.</summary>
public sealed class Phi3ForCausalLM : CausalLM
{
    internal Phi3ForCausalLM(ModelConfig config, ModelWeights weights, string dir) : base(config, weights, dir) { }

    public static Phi3ForCausalLM FromPretrained(string dir, WeightPlacement placement = WeightPlacement.Mapped) => (Phi3ForCausalLM)AutoModelForCausalLM.Load(dir, DecoderFamily.Phi3, placement);

    protected override DecoderLayer CreateLayer(ModelWeights w, DecoderConfig c, string p, DecoderMlp? mlp) => new Phi3DecoderLayer(
        NormLayer.Load(w, p + ".input_layernorm", false, c.NormEps),
        NormLayer.Load(w, p + ".post_attention_layernorm", false, c.NormEps),
        new Phi3Attention(c, LinearLayer.Load(w, p + ".self_attn.qkv_proj", false), LinearLayer.Load(w, p + ".self_attn.o_proj", false)),
        mlp ?? new Phi3Mlp(LinearLayer.Load(w, p + ".mlp.gate_up_proj", false), LinearLayer.Load(w, p + ".mlp.down_proj", false), c.HiddenAct));
}
