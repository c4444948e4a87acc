using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>
/// Plain-loop references for <see cref="OptimKernels"/>, generic so that the same code is the float32 twin of the
/// SIMD kernels and a float64 reference. Same op order as the SIMD kernels (and as torch): where torch fuses a
/// multiply-add (add with alpha) this uses FusedMultiplyAdd too.
/// </summary>
public static class OptimKernelsScalar
{
    public static void AdamStep<T>(Span<T> param, ReadOnlySpan<T> grad, Span<T> expAvg, Span<T> expAvgSq, Span<T> maxExpAvgSq,
        double lr, double beta1, double beta2, double eps, double weightDecay, bool decoupled, long step)
        where T : IFloatingPointIeee754<T>
    {
        double bc1 = 1 - Math.Pow(beta1, step);
        double bc2 = 1 - Math.Pow(beta2, step);
        T scale = T.CreateChecked(decoupled ? 1 - lr * weightDecay : 1.0);
        T l2 = T.CreateChecked(decoupled ? 0.0 : weightDecay);
        T b1 = T.CreateChecked(beta1), omb1 = T.CreateChecked(1 - beta1);
        T b2 = T.CreateChecked(beta2), omb2 = T.CreateChecked(1 - beta2);
        T bc2Sqrt = T.CreateChecked(Math.Sqrt(bc2));
        T e = T.CreateChecked(eps);
        T negStep = T.CreateChecked(-(lr / bc1));
        bool ams = maxExpAvgSq.Length != 0;
        for (int i = 0; i < param.Length; i++)
        {
            T p = param[i] * scale;
            T g = grad[i];
            if (l2 != T.Zero) g = T.FusedMultiplyAdd(p, l2, g);
            T m = T.FusedMultiplyAdd(g, omb1, expAvg[i] * b1);
            T v = T.FusedMultiplyAdd(omb2 * g, g, expAvgSq[i] * b2); // addcmul_, contracted as ATen's build does
            expAvg[i] = m;
            expAvgSq[i] = v;
            if (ams)
            {
                v = T.Max(maxExpAvgSq[i], v);
                maxExpAvgSq[i] = v;
            }
            T denom = T.Sqrt(v) / bc2Sqrt + e;
            param[i] = p + negStep * m / denom;
        }
    }

    public static void SgdStep<T>(Span<T> param, ReadOnlySpan<T> grad, Span<T> momentumBuffer, bool firstStep,
        double lr, double momentum, double dampening, double weightDecay, bool nesterov)
        where T : IFloatingPointIeee754<T>
    {
        T wd = T.CreateChecked(weightDecay), mom = T.CreateChecked(momentum);
        T damp = T.CreateChecked(1 - dampening), negLr = T.CreateChecked(-lr);
        bool hasMomentum = momentumBuffer.Length != 0;
        for (int i = 0; i < param.Length; i++)
        {
            T p = param[i];
            T d = grad[i];
            if (wd != T.Zero) d = T.FusedMultiplyAdd(p, wd, d);
            if (hasMomentum)
            {
                T buf = firstStep ? d : T.FusedMultiplyAdd(d, damp, momentumBuffer[i] * mom);
                momentumBuffer[i] = buf;
                d = nesterov ? T.FusedMultiplyAdd(buf, mom, d) : buf;
            }
            param[i] = T.FusedMultiplyAdd(d, negLr, p);
        }
    }

    public static double SumOfSquares<T>(ReadOnlySpan<T> x) where T : IFloatingPointIeee754<T>
    {
        double total = 0;
        foreach (var v in x)
        {
            double d = double.CreateChecked(v);
            total += d * d;
        }
        return total;
    }
}
