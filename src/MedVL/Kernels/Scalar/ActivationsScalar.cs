using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>Plain-loop twins of <see cref="Activations"/>, one formula per element.</summary>
public static class ActivationsScalar
{
    public enum Kind { Gelu, GeluTanh, QuickGelu, Silu }

    private static T Sigmoid<T>(T v) where T : IFloatingPointIeee754<T> => T.One / (T.One + T.Exp(-v));

    public static T Forward<T>(Kind kind, T v) where T : IFloatingPointIeee754<T>
    {
        T half = T.CreateChecked(0.5);
        switch (kind)
        {
            case Kind.Gelu:
                return half * v * (T.One + T.CreateChecked(SpecialFunctions.Erf(double.CreateChecked(v) * Activations.InvSqrt2)));
            case Kind.GeluTanh:
                {
                    T k = T.Sqrt(T.CreateChecked(2) / T.Pi), c = T.CreateChecked(0.044715);
                    return half * v * (T.One + T.Tanh(k * (v + c * v * v * v)));
                }
            case Kind.QuickGelu:
                return v * Sigmoid(T.CreateChecked(1.702) * v);
            default:
                return v * Sigmoid(v);
        }
    }

    public static T Derivative<T>(Kind kind, T v) where T : IFloatingPointIeee754<T>
    {
        T half = T.CreateChecked(0.5);
        switch (kind)
        {
            case Kind.Gelu:
                {
                    T cdf = half * (T.One + T.CreateChecked(SpecialFunctions.Erf(double.CreateChecked(v) * Activations.InvSqrt2)));
                    T pdf = T.Exp(-half * v * v) / T.Sqrt(T.CreateChecked(2) * T.Pi);
                    return cdf + v * pdf;
                }
            case Kind.GeluTanh:
                {
                    T k = T.Sqrt(T.CreateChecked(2) / T.Pi), c = T.CreateChecked(0.044715);
                    T inner = k * (v + c * v * v * v);
                    T sech2 = T.One / (T.Cosh(inner) * T.Cosh(inner));
                    return half * (T.One + T.Tanh(inner)) + half * v * sech2 * k * (T.One + T.CreateChecked(3) * c * v * v);
                }
            case Kind.QuickGelu:
                {
                    T a = T.CreateChecked(1.702);
                    T s = Sigmoid(a * v);
                    return s + a * v * s * (T.One - s);
                }
            default:
                {
                    T s = Sigmoid(v);
                    return s + v * s * (T.One - s);
                }
        }
    }

    public static void Forward<T>(Kind kind, ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < y.Length; i++) y[i] = Forward(kind, x[i]);
    }

    public static void Backward<T>(Kind kind, ReadOnlySpan<T> x, ReadOnlySpan<T> gy, Span<T> gx) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < gx.Length; i++) gx[i] = gy[i] * Derivative(kind, x[i]);
    }

    public static void SwiGluForward<T>(ReadOnlySpan<T> gate, ReadOnlySpan<T> up, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < y.Length; i++) y[i] = Forward(Kind.Silu, gate[i]) * up[i];
    }

    public static void SwiGluBackward<T>(ReadOnlySpan<T> gate, ReadOnlySpan<T> up, ReadOnlySpan<T> gy, Span<T> gGate, Span<T> gUp)
        where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < gy.Length; i++)
        {
            gGate[i] = gy[i] * up[i] * Derivative(Kind.Silu, gate[i]);
            gUp[i] = gy[i] * Forward(Kind.Silu, gate[i]);
        }
    }
}
