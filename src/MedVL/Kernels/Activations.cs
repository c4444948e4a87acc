using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

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
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= y.Length - 16; i += 16)
            {
                var v = Vector512.Create(x.Slice(i, 16));
                var (cdf, _) = NormalCdfPdf(v);
                (v * cdf).CopyTo(y.Slice(i, 16));
            }
            if (i < y.Length)
            {
                // The tail through the same vector formula (zero-padded), so any split of a tensor gives identical values.
                Span<float> buf = stackalloc float[16];
                x[i..].CopyTo(buf);
                var v = Vector512.Create((ReadOnlySpan<float>)buf);
                var (cdf, _) = NormalCdfPdf(v);
                (v * cdf).CopyTo(buf);
                buf[..(y.Length - i)].CopyTo(y[i..]);
                return;
            }
        }
        for (; i < y.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(0.5 * v * SpecialFunctions.Erfc(-v * InvSqrt2));
        }
    }

    /// <summary>d/dx = Φ(x) + x φ(x), Φ = 0.5 erfc(−x/√2), φ = exp(−x²/2)/√(2π).</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> gy, Span<float> gx)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= gx.Length - 16; i += 16)
            {
                var v = Vector512.Create(x.Slice(i, 16));
                var (cdf, pdf) = NormalCdfPdf(v);
                (Vector512.Create(gy.Slice(i, 16)) * (cdf + v * pdf)).CopyTo(gx.Slice(i, 16));
            }
            if (i < gx.Length)
            {
                Span<float> bx = stackalloc float[16];
                Span<float> bg = stackalloc float[16];
                x[i..].CopyTo(bx);
                gy[i..].CopyTo(bg);
                var v = Vector512.Create((ReadOnlySpan<float>)bx);
                var (cdf, pdf) = NormalCdfPdf(v);
                (Vector512.Create((ReadOnlySpan<float>)bg) * (cdf + v * pdf)).CopyTo(bx);
                bx[..(gx.Length - i)].CopyTo(gx[i..]);
                return;
            }
        }
        for (; i < gx.Length; i++)
        {
            double v = x[i];
            double cdf = 0.5 * SpecialFunctions.Erfc(-v * InvSqrt2);
            double pdf = Math.Exp(-0.5 * v * v) * InvSqrt2Pi;
            gx[i] = (float)(gy[i] * (cdf + v * pdf));
        }
    }

    /// <summary>
    /// Φ(x) and φ(x) for 16 lanes: erfc(z), z = |x|/√2, by Abramowitz &amp; Stegun 7.1.26 (|error| ≤ 1.5·10⁻⁷, the
    /// exponential shared with φ). The GELU outputs agree with the double-precision scalar path to ~1e-7·|x|.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> Cdf, Vector512<float> Pdf) NormalCdfPdf(Vector512<float> x)
    {
        var z = Vector512.Abs(x) * Vector512.Create((float)InvSqrt2);
        var t = Vector512<float>.One / (Vector512<float>.One + Vector512.Create(0.3275911f) * z);
        var poly = t * (Vector512.Create(0.254829592f) + t * (Vector512.Create(-0.284496736f) + t * (Vector512.Create(1.421413741f)
            + t * (Vector512.Create(-1.453152027f) + t * Vector512.Create(1.061405429f)))));
        var e = Vector512.Exp(-(z * z));
        var halfErfc = Vector512.Create(0.5f) * poly * e;               // 0.5 erfc(|x|/√2) = Φ(−|x|)
        var cdf = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, Vector512<float>.Zero), Vector512<float>.One - halfErfc, halfErfc);
        return (cdf, e * Vector512.Create((float)InvSqrt2Pi));
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
