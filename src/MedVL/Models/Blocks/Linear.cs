using MedVL.Autograd;

namespace MedVL.Models.Blocks;

/// <summary>
/// torch.nn.Linear over a checkpoint weight [out, in] (f32/bf16/f16, read in place) and optional bias. Forward is
/// virtual so adapters (LoRA / H-LoRA) can wrap a frozen base projection without copying its weight.
/// </summary>
public class LinearLayer
{
    public LinearLayer(Tensor weight, Tensor? bias = null)
    {
        if (weight.Rank != 2) throw new ArgumentException($"Linear weight {weight.Describe()} must be [out_features, in_features]");
        Weight = weight;
        Bias = bias;
    }

    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    public int InFeatures => Weight.Size(1);
    public int OutFeatures => Weight.Size(0);

    public virtual Tensor Forward(Tensor x) => Ops.Linear(x, Weight, Bias);

    public static LinearLayer Load(ModelWeights w, string prefix, bool bias) =>
        new(w.Get(prefix + ".weight"), bias ? w.Get(prefix + ".bias") : null);
}
