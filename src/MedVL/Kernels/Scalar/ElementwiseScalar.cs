using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>
/// Plain-loop twins of <see cref="Elementwise"/>, generic so that T = double is the float64 reference for
/// finite-difference checks. Broadcasting recomputes every operand offset from the full index (no odometer).
/// </summary>
public static class ElementwiseScalar
{
    public static void Binary<T>(BinaryOp op, ReadOnlySpan<T> a, ReadOnlySpan<long> aStrides, ReadOnlySpan<T> b, ReadOnlySpan<long> bStrides,
        Span<T> y, ReadOnlySpan<int> shape) where T : IFloatingPointIeee754<T>
    {
        int rank = shape.Length;
        for (int e = 0; e < y.Length; e++)
        {
            long oa = 0, ob = 0;
            int rem = e;
            for (int k = rank - 1; k >= 0; k--)
            {
                int i = rem % shape[k];
                rem /= shape[k];
                oa += i * aStrides[k];
                ob += i * bStrides[k];
            }
            T av = a[(int)oa], bv = b[(int)ob];
            y[e] = op switch
            {
                BinaryOp.Add => av + bv,
                BinaryOp.Sub => av - bv,
                BinaryOp.Mul => av * bv,
                _ => av / bv,
            };
        }
    }

    public static void MaskedFill<T>(ReadOnlySpan<T> x, ReadOnlySpan<byte> mask, ReadOnlySpan<long> maskStrides, T value, Span<T> y,
        ReadOnlySpan<int> shape) where T : IFloatingPointIeee754<T>
    {
        for (int e = 0; e < y.Length; e++)
        {
            long om = 0;
            int rem = e;
            for (int k = shape.Length - 1; k >= 0; k--)
            {
                om += (rem % shape[k]) * maskStrides[k];
                rem /= shape[k];
            }
            y[e] = mask[(int)om] != 0 ? value : x[e];
        }
    }

    public static void Where<T>(ReadOnlySpan<byte> cond, ReadOnlySpan<long> cs, ReadOnlySpan<T> a, ReadOnlySpan<long> aStrides, ReadOnlySpan<T> b,
        ReadOnlySpan<long> bStrides, Span<T> y, ReadOnlySpan<int> shape) where T : IFloatingPointIeee754<T>
    {
        for (int e = 0; e < y.Length; e++)
        {
            long oc = 0, oa = 0, ob = 0;
            int rem = e;
            for (int k = shape.Length - 1; k >= 0; k--)
            {
                int i = rem % shape[k];
                rem /= shape[k];
                oc += i * cs[k];
                oa += i * aStrides[k];
                ob += i * bStrides[k];
            }
            y[e] = cond[(int)oc] != 0 ? a[(int)oa] : b[(int)ob];
        }
    }

    public enum Unary { Neg, Exp, Log, Sqrt, Square, Tanh, Sigmoid }

    public static void UnaryForward<T>(Unary op, ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < y.Length; i++)
        {
            T v = x[i];
            y[i] = op switch
            {
                Unary.Neg => -v,
                Unary.Exp => T.Exp(v),
                Unary.Log => T.Log(v),
                Unary.Sqrt => T.Sqrt(v),
                Unary.Square => v * v,
                Unary.Tanh => T.Tanh(v),
                _ => T.One / (T.One + T.Exp(-v)),
            };
        }
    }

    /// <summary>Backward from the input x alone (the derivative written directly in x, independently of the fast path).</summary>
    public static void UnaryBackward<T>(Unary op, ReadOnlySpan<T> x, ReadOnlySpan<T> gy, Span<T> gx) where T : IFloatingPointIeee754<T>
    {
        T two = T.CreateChecked(2);
        for (int i = 0; i < gx.Length; i++)
        {
            T v = x[i];
            T d = op switch
            {
                Unary.Neg => -T.One,
                Unary.Exp => T.Exp(v),
                Unary.Log => T.One / v,
                Unary.Sqrt => T.One / (two * T.Sqrt(v)),
                Unary.Square => two * v,
                Unary.Tanh => T.One / (T.Cosh(v) * T.Cosh(v)),
                _ => T.Exp(-v) / ((T.One + T.Exp(-v)) * (T.One + T.Exp(-v))),
            };
            gx[i] = gy[i] * d;
        }
    }

    public static void PowForward<T>(ReadOnlySpan<T> x, T p, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < y.Length; i++) y[i] = T.Pow(x[i], p);
    }

    public static void PowBackward<T>(ReadOnlySpan<T> x, T p, ReadOnlySpan<T> gy, Span<T> gx) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < gx.Length; i++) gx[i] = p == T.Zero ? T.Zero : gy[i] * p * T.Pow(x[i], p - T.One);
    }
}
