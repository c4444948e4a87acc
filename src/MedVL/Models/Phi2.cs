using MedVL.Models.Blocks;
using MedVL.Models.Config;

namespace MedVL.Models;

/// <summary>modeling_phi.PhiAttention: q/k/v_proj and dense, all with bias; partial rotary (Phi-2: 32 of 80 channels).</summary>
public sealed class PhiAttention(DecoderConfig c, LinearLayer q, LinearLayer k, LinearLayer v, LinearLayer dense)
    : SeparateQkvAttention(c, q, k, v, dense)
{
    /// <summary>HF's name for the output projection.</summary>
    public LinearLayer Dense => OProj;
}

/// <summary>modeling_phi.PhiMLP: fc2(gelu_new(fc1(x))) with biases.</summary>
public sealed class PhiMlp(LinearLayer fc1, LinearLayer fc2, string act) : FcMlp(fc1, fc2, act);

/// <summary>modeling_phi.PhiDecoderLayer: one input_layernorm feeds attention and MLP in parallel.</summary>
public sealed class PhiDecoderLayer(NormLayer inputLayernorm, PhiAttention selfAttn, DecoderMlp mlp)
    : DecoderLayer(inputLayernorm, null, selfAttn, mlp);

/// <summary>PhiForCausalLM (Phi-2; Med-MoE's Phi-2 variant): model.final_layernorm and lm_head with bias.</summary>
public sealed class PhiForCausalLM : CausalLM
{
    internal PhiForCausalLM(ModelConfig config, ModelWeights weights, string dir) : base(config, weights, dir) { }

    public static PhiForCausalLM FromPretrained(string dir, WeightPlacement placement = WeightPlacement.Mapped) => (PhiForCausalLM)AutoModelForCausalLM.Load(dir, DecoderFamily.Phi, placement);

    protected override DecoderLayer CreateLayer(ModelWeights w, DecoderConfig c, string p, DecoderMlp? mlp)
    {
        var (q, k, v, dense) = SeparateQkvAttention.LoadProjections(w, c, p + ".self_attn", "dense");
        return new PhiDecoderLayer(NormLayer.Load(w, p + ".input_layernorm", true, c.NormEps), new PhiAttention(c, q, k, v, dense),
            mlp ?? new PhiMlp(LinearLayer.Load(w, p + ".mlp.fc1", true), LinearLayer.Load(w, p + ".mlp.fc2", true), c.HiddenAct));
    }
}
