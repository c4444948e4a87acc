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

    /// <summary>A float32 trainable copy (weight and bias cloned, RequiresGrad); the caller owns the new tensors.</summary>
    public LinearLayer TrainableCopy(string name)
    {
        var w = Weight.DType == Tensors.DType.F32 ? Weight.Clone() : Weight.To(Tensors.DType.F32);
        w.RequiresGrad = true;
        w.Name = name + ".weight";
        Tensor? b = null;
        if (Bias is not null)
        {
            b = Bias.DType == Tensors.DType.F32 ? Bias.Clone() : Bias.To(Tensors.DType.F32);
            b.RequiresGrad = true;
            b.Name = name + ".bias";
        }
        return new LinearLayer(w, b);
    }

    public static LinearLayer Load(ModelWeights w, string prefix, bool bias) =>
        new(w.Get(prefix + ".weight"), bias ? w.Get(prefix + ".bias") : null);
}
