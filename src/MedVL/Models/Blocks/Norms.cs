using MedVL.Autograd;

namespace MedVL.Models.Blocks;

/// <summary>A normalisation over the last dimension.</summary>
public abstract class NormLayer
{
    public abstract Tensor Forward(Tensor x);

    /// <summary>RMSNorm for the Llama-like families, LayerNorm (weight + bias) for StableLM / Phi-2 / CLIP.</summary>
    public static NormLayer Load(ModelWeights w, string prefix, bool layerNorm, double eps) => layerNorm
        ? new LayerNormLayer(w.Get(prefix + ".weight"), w.Get(prefix + ".bias"), (float)eps)
        : new RmsNormLayer(w.Get(prefix + ".weight"), (float)eps);
}

/// <summary>HF LlamaRMSNorm / Phi3RMSNorm / Qwen2RMSNorm: weight ⊙ x·rsqrt(mean(x²) + eps), computed in float32.</summary>
public sealed class RmsNormLayer(Tensor weight, float eps) : NormLayer
{
    public Tensor Weight { get; } = weight;
    public float Eps { get; } = eps;
    public override Tensor Forward(Tensor x) => Ops.RmsNorm(x, Weight, Eps);
}

/// <summary>torch.nn.LayerNorm (biased variance) with weight and bias.</summary>
public sealed class LayerNormLayer(Tensor weight, Tensor? bias, float eps) : NormLayer
{
    public Tensor Weight { get; } = weight;
    public Tensor? Bias { get; } = bias;
    public float Eps { get; } = eps;
    public override Tensor Forward(Tensor x) => Ops.LayerNorm(x, Weight, Bias, Eps);
}
