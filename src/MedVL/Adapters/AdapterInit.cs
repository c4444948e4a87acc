using MedVL.Tensors;

namespace MedVL.Adapters;

/// <summary>Seeded parameter initialisation shared by the adapters, routers and classifiers.</summary>
public static class AdapterInit
{
    /// <summary>
    /// torch.nn.Linear's default: U(−1/√fan_in, 1/√fan_in) (kaiming_uniform_ with a = √5 gives exactly this bound), a
    /// float32 [rows, cols] tensor with RequiresGrad, or [rows] for a bias (<paramref name="cols"/> is then the fan-in).
    /// </summary>
    public static Tensor Uniform(int rows, int cols, Random rng, bool bias = false)
    {
        float bound = 1f / MathF.Sqrt(cols);
        int n = bias ? rows : rows * cols;
        var data = new float[n];
        for (int i = 0; i < n; i++) data[i] = (float)(rng.NextDouble() * 2 - 1) * bound;
        var t = bias ? Tensor.FromArray(data, rows) : Tensor.FromArray(data, rows, cols);
        t.RequiresGrad = true;
        return t;
    }
}
