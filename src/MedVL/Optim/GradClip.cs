using System.Numerics.Tensors;
using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Optim;

/// <summary>Thrown by <see cref="GradClip.ClipGradNorm"/> with errorIfNonfinite when the total norm is NaN or infinite.</summary>
public sealed class NonFiniteGradientNormException(string message) : InvalidOperationException(message);

/// <summary>Gradient clipping as torch.nn.utils.clip_grad_norm_ (torch 1.13, torch/nn/utils/clip_grad.py).</summary>
public static class GradClip
{
    /// <summary>
    /// Scale all gradients in place so that their joint p-norm is at most <paramref name="maxNorm"/>:
    /// total = ‖(‖g₁‖, ‖g₂‖, …)‖ (the norm of all gradients as one vector; normType ∞: max |g|),
    /// clip_coef = min(1, maxNorm / (total + 1e-6)), every g *= clip_coef (also when clip_coef is 1, as torch).
    /// Parameters without a gradient are ignored; with none at all the result is 0.
    /// Returns the total norm before clipping, as float32 like torch's. A NaN/∞ total is returned as is (and the
    /// gradients become NaN or 0, as torch's) unless <paramref name="errorIfNonfinite"/>, which throws instead and
    /// leaves the gradients untouched.
    /// </summary>
    public static float ClipGradNorm(IEnumerable<Tensor> parameters, double maxNorm, double normType = 2.0, bool errorIfNonfinite = false)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (double.IsNaN(normType) || normType <= 0) throw new ArgumentOutOfRangeException(nameof(normType), $"clip_grad_norm: norm type must be > 0 (or infinity), got {normType}");
        var grads = new List<Tensor>();
        foreach (var p in parameters)
        {
            if (p.Grad is null) continue;
            if (p.Grad.DType != DType.F32 || !p.Grad.IsContiguous)
                throw new ArgumentException($"clip_grad_norm: gradient {p.Grad.Describe()} of {p.Describe()} must be contiguous float32");
            grads.Add(p.Grad);
        }
        if (grads.Count == 0) return 0f;

        float total = TotalNorm(grads, normType);
        if (errorIfNonfinite && !float.IsFinite(total))
            throw new NonFiniteGradientNormException(
                $"The total norm of order {normType} for gradients of {grads.Count} parameters is non-finite ({total}), so it cannot be clipped; pass errorIfNonfinite: false to scale the gradients by it anyway");
        ScaleGradients(grads, total, maxNorm);
        return total;
    }

    /// <summary>
    /// The scaling half of clip_grad_norm_: multiply every gradient by min(1, maxNorm / (totalNorm + 1e-6)), computed in
    /// float32 as torch does (Tensor.__rtruediv__ is reciprocal(total + 1e-6) * max_norm). Useful when the total norm
    /// comes from elsewhere (e.g. already all-reduced across model-parallel shards).
    /// </summary>
    public static void ScaleGradients(IReadOnlyList<Tensor> grads, float totalNorm, double maxNorm)
    {
        float coef = 1f / (totalNorm + 1e-6f) * (float)maxNorm;
        if (coef > 1f) coef = 1f; // torch.clamp(max=1.0): NaN stays NaN
        foreach (var g in grads)
        {
            var s = g.Span<float>();
            TensorPrimitives.Multiply(s, coef, s);
        }
    }

    /// <summary>The joint p-norm of the gradients without changing them (float32, as clip_grad_norm_ reports it).</summary>
    public static float TotalNorm(IReadOnlyList<Tensor> grads, double normType = 2.0)
    {
        if (double.IsPositiveInfinity(normType))
        {
            float max = 0f;
            foreach (var g in grads)
            {
                var s = g.Span<float>();
                if (s.Length == 0) continue;
                float m = TensorPrimitives.MaxMagnitude(s);
                m = MathF.Abs(m);
                if (float.IsNaN(m) || m > max) max = m;
                if (float.IsNaN(max)) break;
            }
            return max;
        }
        // Each tensor's norm rounds to float32 (torch.norm of a float32 tensor), then the norm of those norms.
        double outer = 0;
        foreach (var g in grads)
        {
            var s = g.Span<float>();
            float norm = normType == 2.0 ? (float)Math.Sqrt(OptimKernels.SumOfSquares(s)) : (float)PNorm(s, normType);
            outer += normType == 2.0 ? (double)norm * norm : Math.Pow(norm, normType);
        }
        return (float)(normType == 2.0 ? Math.Sqrt(outer) : Math.Pow(outer, 1.0 / normType));
    }

    private static double PNorm(ReadOnlySpan<float> s, double p)
    {
        double acc = 0;
        if (p == 1.0) foreach (float v in s) acc += Math.Abs(v);
        else foreach (float v in s) acc += Math.Pow(Math.Abs(v), p);
        return p == 1.0 ? acc : Math.Pow(acc, 1.0 / p);
    }
}
