using System.Numerics.Tensors;

namespace MedVL.Kernels;

/// <summary>
/// Activation forward/backward pairs on contiguous spans. Names follow HF's ACT2FN: "gelu" (erf form, nn.GELU),
/// "gelu_new" / "gelu_pytorch_tanh" (tanh form, NewGELUActivation), "quick_gelu" (CLIP), "silu" (= swish),
/// and SwiGLU (LlamaMLP/Phi3MLP: silu(gate) ⊙ up). Twin: <see cref="Scalar.ActivationsScalar"/>.
/// </summary>
public static class Activations
{
    internal const double InvSqrt2 = 0.70710678118654752440;
    internal const double InvSqrt2Pi = 0.39894228040143267794;
    /// <summary>√(2/π) and 0.044715: the tanh approximation of GELU (Hendrycks & Gimpel 2016, eq. in §2).</summary>
    internal const float TanhK = 0.7978845608028654f;
    internal const float TanhC = 0.044715f;
    /// <summary>CLIP's quick_gelu: x·σ(1.702x).</summary>
    internal const float QuickK = 1.702f;

    // ---- GELU, erf form: 0.5 x (1 + erf(x/√2)) = 0.5 x erfc(−x/√2) ----

    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < y.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(0.5 * v * SpecialFunctions.Erfc(-v * InvSqrt2));
        }
    }

    /// <summary>d/dx = Φ(x) + x φ(x), Φ = 0.5 erfc(−x/√2), φ = exp(−x²/2)/√(2π).</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> gy, Span<float> gx)
    {
        for (int i = 0; i < gx.Length; i++)
        {
            double v = x[i];
            double cdf = 0.5 * SpecialFunctions.Erfc(-v * InvSqrt2);
            double pdf = Math.Exp(-0.5 * v * v) * InvSqrt2Pi;
            gx[i] = (float)(gy[i] * (cdf + v * pdf));
        }
    }

    // ---- GELU, tanh form: 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))) ----

    public static void GeluTanhForward(ReadOnlySpan<float> x, Span<float> y)
    {
        // y = x³ → inner = (x + c·x³)·k → tanh → 0.5·x·(1 + t); all TensorPrimitives passes, y as the only buffer.
        TensorPrimitives.Multiply(x, x, y);
        TensorPrimitives.Multiply(y, x, y);
        TensorPrimitives.MultiplyAdd(y, TanhC, x, y);
        TensorPrimitives.Multiply(y, TanhK, y);
        TensorPrimitives.Tanh(y, y);
        TensorPrimitives.Add(y, 1f, y);
        TensorPrimitives.Multiply(y, x, y);
        TensorPrimitives.Multiply(y, 0.5f, y);
    }

    public static void GeluTanhBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> gy, Span<float> gx)
    {
        for (int i = 0; i < gx.Length; i++)
        {
            float v = x[i];
            float t = MathF.Tanh(TanhK * (v + TanhC * v * v * v));
            float dInner = TanhK * (1f + 3f * TanhC * v * v);
            gx[i] = gy[i] * (0.5f * (1f + t) + 0.5f * v * (1f - t * t) * dInner);
        }
    }

    // ---- quick GELU: x σ(1.702 x) ----

    public static void QuickGeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        TensorPrimitives.Multiply(x, QuickK, y);
        TensorPrimitives.Sigmoid(y, y);
        TensorPrimitives.Multiply(y, x, y);
    }

    public static void QuickGeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> gy, Span<float> gx)
    {
        for (int i = 0; i < gx.Length; i++)
        {
            float s = 1f / (1f + MathF.Exp(-QuickK * x[i]));
            gx[i] = gy[i] * (s + QuickK * x[i] * s * (1f - s));
        }
    }

    // ---- SiLU: x σ(x) ----

    public static void SiluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        TensorPrimitives.Sigmoid(x, y);
        TensorPrimitives.Multiply(y, x, y);
    }

    /// <summary>d silu = σ(x) (1 + x (1 − σ(x))).</summary>
    public static void SiluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> gy, Span<float> gx)
    {
        for (int i = 0; i < gx.Length; i++)
        {
            float s = 1f / (1f + MathF.Exp(-x[i]));
            gx[i] = gy[i] * (s * (1f + x[i] * (1f - s)));
        }
    }

    // ---- SwiGLU: silu(gate) ⊙ up over rows; gate and up are read with a row pitch so the fused Phi-3
    // gate_up [.., 2F] layout (first half gate, second half up: HF Phi3MLP's chunk(2, dim=-1)) needs no copy ----

    /// <summary>y[r, i] = silu(gate[r·pitch + i]) · up[r·pitch + i], i &lt; f; y is [rows, f].</summary>
    public static void SwiGluForward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, int pitch, Span<float> y, int rows, int f)
    {
        for (int r = 0; r < rows; r++)
        {
            var yr = y.Slice(r * f, f);
            var gr = gate.Slice(r * pitch, f);
            TensorPrimitives.Sigmoid(gr, yr);
            TensorPrimitives.Multiply(yr, gr, yr);
            TensorPrimitives.Multiply(yr, up.Slice(r * pitch, f), yr);
        }
    }

    /// <summary>gGate = gy · up · silu'(gate), gUp = gy · silu(gate); written with the same pitch as the inputs.</summary>
    public static void SwiGluBackward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, int pitch, ReadOnlySpan<float> gy,
        Span<float> gGate, Span<float> gUp, int rows, int f)
    {
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < f; i++)
            {
                float g = gate[r * pitch + i];
                float s = 1f / (1f + MathF.Exp(-g));
                float dy = gy[r * f + i];
                if (!gUp.IsEmpty) gUp[r * pitch + i] = dy * g * s;
                if (!gGate.IsEmpty) gGate[r * pitch + i] = dy * up[r * pitch + i] * (s * (1f + g * (1f - s)));
            }
    }
}

/// <summary>erf / erfc in double precision (no Math.Erf in .NET).</summary>
public static class SpecialFunctions
{
    private const double TwoOverSqrtPi = 1.1283791670955125739;
    private const double InvSqrtPi = 0.56418958354775628695;

    /// <summary>
    /// erfc(x). |x| &lt; 2.5: 1 − erf from the series erf(x) = 2/√π e^(−x²) Σ (2x²)ⁿ x / (1·3·…·(2n+1)) (all terms
    /// positive, no cancellation; Abramowitz &amp; Stegun 7.1.6). |x| ≥ 2.5: the continued fraction
    /// erfc(x) = e^(−x²)/√π · 1/(x + ½/(x + 1/(x + 3/2/(x + …)))) (A&amp;S 7.1.14), 60 levels: both agree with
    /// Python's math.erfc to a few ulps of double on [−8, 8].
    /// </summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double ax = Math.Abs(x);
        double r;
        if (ax < 2.5)
        {
            double e = ErfSeries(ax);
            r = 1.0 - e;
        }
        else
        {
            double t = ax;
            for (int k = 60; k >= 1; k--) t = ax + 0.5 * k / t;
            r = Math.Exp(-ax * ax) * InvSqrtPi / t;
        }
        return x >= 0 ? r : 2.0 - r;
    }

    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double ax = Math.Abs(x);
        double r = ax < 2.5 ? ErfSeries(ax) : 1.0 - Erfc(ax);
        return x >= 0 ? r : -r;
    }

    private static double ErfSeries(double ax)
    {
        double x2 = 2 * ax * ax, term = ax, sum = ax;
        for (int n = 1; n < 200 && term > 1e-17 * sum; n++)
        {
            term *= x2 / (2 * n + 1);
            sum += term;
        }
        return TwoOverSqrtPi * Math.Exp(-ax * ax) * sum;
    }
}
