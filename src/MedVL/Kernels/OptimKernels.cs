using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MedVL.Kernels;

/// <summary>
/// Per-element coefficients of one Adam/AdamW step, rounded to float32 exactly where PyTorch rounds them: torch 1.13
/// computes the scalars (1 - lr*wd, 1 - beta, lr / bias_correction1, sqrt(bias_correction2)) in Python double and
/// the tensor op casts each to float32 (torch/optim/adamw.py and adam.py, _single_tensor_*).
/// </summary>
public readonly struct AdamCoefficients
{
    /// <summary>Decoupled decay factor 1 - lr*wd (AdamW); 1 for Adam.</summary>
    public float ParamScale { get; init; }
    /// <summary>L2 coefficient added to the gradient (Adam's weight_decay); 0 for AdamW.</summary>
    public float L2 { get; init; }
    public float Beta1 { get; init; }
    public float OneMinusBeta1 { get; init; }
    public float Beta2 { get; init; }
    public float OneMinusBeta2 { get; init; }
    /// <summary>sqrt(1 - beta2^step).</summary>
    public float BiasCorrection2Sqrt { get; init; }
    public float Eps { get; init; }
    /// <summary>-lr / (1 - beta1^step).</summary>
    public float NegStepSize { get; init; }

    /// <summary>Coefficients for optimizer step <paramref name="step"/> (1-based, after torch's step_t += 1).</summary>
    public static AdamCoefficients For(double lr, double beta1, double beta2, double eps, double weightDecay, bool decoupled, long step)
    {
        double bc1 = 1 - Math.Pow(beta1, step);
        double bc2 = 1 - Math.Pow(beta2, step);
        return new AdamCoefficients
        {
            ParamScale = decoupled ? (float)(1 - lr * weightDecay) : 1f,
            L2 = decoupled ? 0f : (float)weightDecay,
            Beta1 = (float)beta1,
            OneMinusBeta1 = (float)(1 - beta1),
            Beta2 = (float)beta2,
            OneMinusBeta2 = (float)(1 - beta2),
            BiasCorrection2Sqrt = (float)Math.Sqrt(bc2),
            Eps = (float)eps,
            NegStepSize = (float)(-(lr / bc1)),
        };
    }
}

/// <summary>
/// Optimizer update kernels (llm.c style: spans and scalars in, no tensors). Each element follows PyTorch's op
/// sequence in the same order and with the same fused multiply-adds as ATen's vectorised CPU kernels: add with alpha
/// = fma(other, alpha, self); addcmul = fma(value*t1, t2, self); addcdiv = self + (value*t1)/t2 unfused. Given the
/// same inputs the results are bit-identical to torch 1.13 (TorchParityTests). Scalar twin: <see cref="Scalar.OptimKernelsScalar"/>.
/// </summary>
public static class OptimKernels
{
    /// <summary>
    /// One Adam/AdamW step in place. <paramref name="maxExpAvgSq"/> empty: amsgrad off. Otherwise, per element:
    /// p *= ParamScale; g += L2*p; m = m*b1 + (1-b1)*g; v = v*b2 + (1-b2)*g*g; [vmax = max(vmax, v)];
    /// p += NegStepSize * m / (sqrt(v or vmax) / BiasCorrection2Sqrt + eps).
    /// </summary>
    public static void AdamStep(Span<float> param, ReadOnlySpan<float> grad, Span<float> expAvg, Span<float> expAvgSq,
        Span<float> maxExpAvgSq, in AdamCoefficients c)
    {
        int n = param.Length;
        if (grad.Length != n || expAvg.Length != n || expAvgSq.Length != n || (maxExpAvgSq.Length != 0 && maxExpAvgSq.Length != n))
            throw new ArgumentException($"AdamStep: span lengths differ (param {n}, grad {grad.Length}, exp_avg {expAvg.Length}, exp_avg_sq {expAvgSq.Length}, max_exp_avg_sq {maxExpAvgSq.Length})");
        bool ams = maxExpAvgSq.Length != 0;
        bool l2 = c.L2 != 0f;
        ref float p = ref MemoryMarshal.GetReference(param);
        ref float g = ref MemoryMarshal.GetReference(grad);
        ref float m = ref MemoryMarshal.GetReference(expAvg);
        ref float v = ref MemoryMarshal.GetReference(expAvgSq);
        ref float vm = ref MemoryMarshal.GetReference(maxExpAvgSq);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var scale = Vector512.Create(c.ParamScale); var wd = Vector512.Create(c.L2);
            var b1 = Vector512.Create(c.Beta1); var omb1 = Vector512.Create(c.OneMinusBeta1);
            var b2 = Vector512.Create(c.Beta2); var omb2 = Vector512.Create(c.OneMinusBeta2);
            var bc2 = Vector512.Create(c.BiasCorrection2Sqrt); var eps = Vector512.Create(c.Eps);
            var step = Vector512.Create(c.NegStepSize);
            for (; i <= n - 16; i += 16)
            {
                var pv = Vector512.LoadUnsafe(ref p, (nuint)i) * scale;
                var gv = Vector512.LoadUnsafe(ref g, (nuint)i);
                if (l2) gv = Vector512.FusedMultiplyAdd(pv, wd, gv);
                var mv = Vector512.FusedMultiplyAdd(gv, omb1, Vector512.LoadUnsafe(ref m, (nuint)i) * b1);
                var vv = Vector512.FusedMultiplyAdd(omb2 * gv, gv, Vector512.LoadUnsafe(ref v, (nuint)i) * b2);
                mv.StoreUnsafe(ref m, (nuint)i);
                vv.StoreUnsafe(ref v, (nuint)i);
                if (ams)
                {
                    vv = Vector512.Max(Vector512.LoadUnsafe(ref vm, (nuint)i), vv);
                    vv.StoreUnsafe(ref vm, (nuint)i);
                }
                var denom = Vector512.Sqrt(vv) / bc2 + eps;
                (pv + step * mv / denom).StoreUnsafe(ref p, (nuint)i);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var scale = Vector256.Create(c.ParamScale); var wd = Vector256.Create(c.L2);
            var b1 = Vector256.Create(c.Beta1); var omb1 = Vector256.Create(c.OneMinusBeta1);
            var b2 = Vector256.Create(c.Beta2); var omb2 = Vector256.Create(c.OneMinusBeta2);
            var bc2 = Vector256.Create(c.BiasCorrection2Sqrt); var eps = Vector256.Create(c.Eps);
            var step = Vector256.Create(c.NegStepSize);
            for (; i <= n - 8; i += 8)
            {
                var pv = Vector256.LoadUnsafe(ref p, (nuint)i) * scale;
                var gv = Vector256.LoadUnsafe(ref g, (nuint)i);
                if (l2) gv = Vector256.FusedMultiplyAdd(pv, wd, gv);
                var mv = Vector256.FusedMultiplyAdd(gv, omb1, Vector256.LoadUnsafe(ref m, (nuint)i) * b1);
                var vv = Vector256.FusedMultiplyAdd(omb2 * gv, gv, Vector256.LoadUnsafe(ref v, (nuint)i) * b2);
                mv.StoreUnsafe(ref m, (nuint)i);
                vv.StoreUnsafe(ref v, (nuint)i);
                if (ams)
                {
                    vv = Vector256.Max(Vector256.LoadUnsafe(ref vm, (nuint)i), vv);
                    vv.StoreUnsafe(ref vm, (nuint)i);
                }
                var denom = Vector256.Sqrt(vv) / bc2 + eps;
                (pv + step * mv / denom).StoreUnsafe(ref p, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            float pv = Unsafe.Add(ref p, i) * c.ParamScale;
            float gv = Unsafe.Add(ref g, i);
            if (l2) gv = MathF.FusedMultiplyAdd(pv, c.L2, gv);
            float mv = MathF.FusedMultiplyAdd(gv, c.OneMinusBeta1, Unsafe.Add(ref m, i) * c.Beta1);
            float vv = MathF.FusedMultiplyAdd(c.OneMinusBeta2 * gv, gv, Unsafe.Add(ref v, i) * c.Beta2);
            Unsafe.Add(ref m, i) = mv;
            Unsafe.Add(ref v, i) = vv;
            if (ams)
            {
                vv = MathF.Max(Unsafe.Add(ref vm, i), vv);
                Unsafe.Add(ref vm, i) = vv;
            }
            float denom = MathF.Sqrt(vv) / c.BiasCorrection2Sqrt + c.Eps;
            Unsafe.Add(ref p, i) = pv + c.NegStepSize * mv / denom;
        }
    }

    /// <summary>
    /// One SGD step in place, as torch.optim.SGD's _single_tensor_sgd: d = g + wd*p; with momentum,
    /// buf = (first ? d : buf*momentum + (1-dampening)*d) and d = nesterov ? d + momentum*buf : buf; p -= lr*d.
    /// <paramref name="momentumBuffer"/> is empty when momentum is 0.
    /// </summary>
    public static void SgdStep(Span<float> param, ReadOnlySpan<float> grad, Span<float> momentumBuffer, bool firstStep,
        float weightDecay, float momentum, float oneMinusDampening, bool nesterov, float negLr)
    {
        int n = param.Length;
        bool hasMomentum = momentumBuffer.Length != 0;
        if (grad.Length != n || (hasMomentum && momentumBuffer.Length != n))
            throw new ArgumentException($"SgdStep: span lengths differ (param {n}, grad {grad.Length}, momentum_buffer {momentumBuffer.Length})");
        bool wd = weightDecay != 0f;
        ref float p = ref MemoryMarshal.GetReference(param);
        ref float g = ref MemoryMarshal.GetReference(grad);
        ref float b = ref MemoryMarshal.GetReference(momentumBuffer);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var wdv = Vector512.Create(weightDecay); var mom = Vector512.Create(momentum);
            var damp = Vector512.Create(oneMinusDampening); var lr = Vector512.Create(negLr);
            for (; i <= n - 16; i += 16)
            {
                var pv = Vector512.LoadUnsafe(ref p, (nuint)i);
                var d = Vector512.LoadUnsafe(ref g, (nuint)i);
                if (wd) d = Vector512.FusedMultiplyAdd(pv, wdv, d);
                if (hasMomentum)
                {
                    var buf = firstStep ? d : Vector512.FusedMultiplyAdd(d, damp, Vector512.LoadUnsafe(ref b, (nuint)i) * mom);
                    buf.StoreUnsafe(ref b, (nuint)i);
                    d = nesterov ? Vector512.FusedMultiplyAdd(buf, mom, d) : buf;
                }
                Vector512.FusedMultiplyAdd(d, lr, pv).StoreUnsafe(ref p, (nuint)i);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var wdv = Vector256.Create(weightDecay); var mom = Vector256.Create(momentum);
            var damp = Vector256.Create(oneMinusDampening); var lr = Vector256.Create(negLr);
            for (; i <= n - 8; i += 8)
            {
                var pv = Vector256.LoadUnsafe(ref p, (nuint)i);
                var d = Vector256.LoadUnsafe(ref g, (nuint)i);
                if (wd) d = Vector256.FusedMultiplyAdd(pv, wdv, d);
                if (hasMomentum)
                {
                    var buf = firstStep ? d : Vector256.FusedMultiplyAdd(d, damp, Vector256.LoadUnsafe(ref b, (nuint)i) * mom);
                    buf.StoreUnsafe(ref b, (nuint)i);
                    d = nesterov ? Vector256.FusedMultiplyAdd(buf, mom, d) : buf;
                }
                Vector256.FusedMultiplyAdd(d, lr, pv).StoreUnsafe(ref p, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            float pv = Unsafe.Add(ref p, i);
            float d = Unsafe.Add(ref g, i);
            if (wd) d = MathF.FusedMultiplyAdd(pv, weightDecay, d);
            if (hasMomentum)
            {
                float buf = firstStep ? d : MathF.FusedMultiplyAdd(d, oneMinusDampening, Unsafe.Add(ref b, i) * momentum);
                Unsafe.Add(ref b, i) = buf;
                d = nesterov ? MathF.FusedMultiplyAdd(buf, momentum, d) : buf;
            }
            Unsafe.Add(ref p, i) = MathF.FusedMultiplyAdd(d, negLr, pv);
        }
    }

    /// <summary>Sum of squares in double (the per-tensor part of the global L2 gradient norm).</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x)
    {
        ref float r = ref MemoryMarshal.GetReference(x);
        int n = x.Length, i = 0;
        double total = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            // Widen to double before squaring so large tensors lose no precision in the running sum.
            var acc0 = Vector512<double>.Zero; var acc1 = Vector512<double>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref r, (nuint)i));
                acc0 = Vector512.FusedMultiplyAdd(lo, lo, acc0);
                acc1 = Vector512.FusedMultiplyAdd(hi, hi, acc1);
            }
            total = Vector512.Sum(acc0 + acc1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc0 = Vector256<double>.Zero; var acc1 = Vector256<double>.Zero;
            for (; i <= n - 8; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref r, (nuint)i));
                acc0 = Vector256.FusedMultiplyAdd(lo, lo, acc0);
                acc1 = Vector256.FusedMultiplyAdd(hi, hi, acc1);
            }
            total = Vector256.Sum(acc0 + acc1);
        }
        for (; i < n; i++)
        {
            double d = Unsafe.Add(ref r, i);
            total += d * d;
        }
        return total;
    }
}
