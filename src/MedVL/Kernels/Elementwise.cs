using System.Numerics.Tensors;

namespace MedVL.Kernels;

/// <summary>The four broadcasting binary operators.</summary>
public enum BinaryOp : byte { Add, Sub, Mul, Div }

/// <summary>
/// Elementwise kernels on spans (llm.c style forward/backward pairs). Broadcasting follows NumPy: the operands
/// come with element strides over the output shape, 0 on broadcast dimensions. The innermost row is handed to
/// TensorPrimitives (Vector512/256 with scalar tails); <see cref="Scalar.ElementwiseScalar"/> is the plain-loop twin.
/// </summary>
public static class Elementwise
{
    /// <summary>y = a ∘ b over <paramref name="shape"/>; y is contiguous, a and b are read through their strides.</summary>
    public static void Binary(BinaryOp op, ReadOnlySpan<float> a, ReadOnlySpan<long> aStrides,
        ReadOnlySpan<float> b, ReadOnlySpan<long> bStrides, Span<float> y, ReadOnlySpan<int> shape)
    {
        int rank = shape.Length;
        if (y.Length == 0) return;
        if (rank == 0)
        {
            y[0] = Apply(op, a[0], b[0]);
            return;
        }
        int n = shape[rank - 1];
        long sa = aStrides[rank - 1], sb = bStrides[rank - 1];
        int rows = y.Length / n;
        Span<int> idx = stackalloc int[rank];
        long oa = 0, ob = 0;
        for (int r = 0; r < rows; r++)
        {
            var yr = y.Slice(r * n, n);
            if (n == 1) yr[0] = Apply(op, a[(int)oa], b[(int)ob]);
            else if (sa == 1 && sb == 1) RowVV(op, a.Slice((int)oa, n), b.Slice((int)ob, n), yr);
            else if (sa == 1 && sb == 0) RowVS(op, a.Slice((int)oa, n), b[(int)ob], yr);
            else if (sa == 0 && sb == 1) RowSV(op, a[(int)oa], b.Slice((int)ob, n), yr);
            else
                for (int i = 0; i < n; i++) yr[i] = Apply(op, a[(int)(oa + i * sa)], b[(int)(ob + i * sb)]);
            // odometer over the outer dimensions, moving both operand offsets incrementally
            for (int k = rank - 2; k >= 0; k--)
            {
                oa += aStrides[k];
                ob += bStrides[k];
                if (++idx[k] < shape[k]) break;
                oa -= aStrides[k] * shape[k];
                ob -= bStrides[k] * shape[k];
                idx[k] = 0;
            }
        }
    }

    private static float Apply(BinaryOp op, float a, float b) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Sub => a - b,
        BinaryOp.Mul => a * b,
        _ => a / b,
    };

    private static void RowVV(BinaryOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(a, b, y); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(a, b, y); break;
            case BinaryOp.Mul: TensorPrimitives.Multiply(a, b, y); break;
            default: TensorPrimitives.Divide(a, b, y); break;
        }
    }

    private static void RowVS(BinaryOp op, ReadOnlySpan<float> a, float b, Span<float> y)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(a, b, y); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(a, b, y); break;
            case BinaryOp.Mul: TensorPrimitives.Multiply(a, b, y); break;
            // a / b, not a * (1/b): the reciprocal would round differently from torch's true division
            default: TensorPrimitives.Divide(a, b, y); break;
        }
    }

    private static void RowSV(BinaryOp op, float a, ReadOnlySpan<float> b, Span<float> y)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(b, a, y); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(a, b, y); break;
            case BinaryOp.Mul: TensorPrimitives.Multiply(b, a, y); break;
            default: TensorPrimitives.Divide(a, b, y); break;
        }
    }

    /// <summary>y = x, except value where mask (read through maskStrides, 0 = broadcast) is non-zero.</summary>
    public static void MaskedFill(ReadOnlySpan<float> x, ReadOnlySpan<byte> mask, ReadOnlySpan<long> maskStrides,
        float value, Span<float> y, ReadOnlySpan<int> shape)
    {
        int rank = shape.Length;
        if (y.Length == 0) return;
        if (rank == 0) { y[0] = mask[0] != 0 ? value : x[0]; return; }
        int n = shape[rank - 1];
        long sm = maskStrides[rank - 1];
        int rows = y.Length / n;
        Span<int> idx = stackalloc int[rank];
        long om = 0;
        for (int r = 0; r < rows; r++)
        {
            int o = r * n;
            for (int i = 0; i < n; i++) y[o + i] = mask[(int)(om + i * sm)] != 0 ? value : x[o + i];
            for (int k = rank - 2; k >= 0; k--)
            {
                om += maskStrides[k];
                if (++idx[k] < shape[k]) break;
                om -= maskStrides[k] * shape[k];
                idx[k] = 0;
            }
        }
    }

    /// <summary>y = cond ? a : b over <paramref name="shape"/> (torch.where), each operand read through its own broadcast strides.</summary>
    public static void Where(ReadOnlySpan<byte> cond, ReadOnlySpan<long> condStrides, ReadOnlySpan<float> a, ReadOnlySpan<long> aStrides,
        ReadOnlySpan<float> b, ReadOnlySpan<long> bStrides, Span<float> y, ReadOnlySpan<int> shape)
    {
        int rank = shape.Length;
        if (y.Length == 0) return;
        if (rank == 0) { y[0] = cond[0] != 0 ? a[0] : b[0]; return; }
        int n = shape[rank - 1];
        long sc = condStrides[rank - 1], sa = aStrides[rank - 1], sb = bStrides[rank - 1];
        int rows = y.Length / n;
        Span<int> idx = stackalloc int[rank];
        long oc = 0, oa = 0, ob = 0;
        for (int r = 0; r < rows; r++)
        {
            int o = r * n;
            for (int i = 0; i < n; i++) y[o + i] = cond[(int)(oc + i * sc)] != 0 ? a[(int)(oa + i * sa)] : b[(int)(ob + i * sb)];
            for (int k = rank - 2; k >= 0; k--)
            {
                oc += condStrides[k]; oa += aStrides[k]; ob += bStrides[k];
                if (++idx[k] < shape[k]) break;
                oc -= condStrides[k] * shape[k]; oa -= aStrides[k] * shape[k]; ob -= bStrides[k] * shape[k];
                idx[k] = 0;
            }
        }
    }

    // ---- unary forward / backward pairs (contiguous spans; gx may alias gy) ----

    public static void NegForward(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Negate(x, y);
    public static void NegBackward(ReadOnlySpan<float> gy, Span<float> gx) => TensorPrimitives.Negate(gy, gx);

    public static void ScaleForward(ReadOnlySpan<float> x, float alpha, Span<float> y) => TensorPrimitives.Multiply(x, alpha, y);
    public static void ScaleBackward(ReadOnlySpan<float> gy, float alpha, Span<float> gx) => TensorPrimitives.Multiply(gy, alpha, gx);

    public static void AddScalarForward(ReadOnlySpan<float> x, float alpha, Span<float> y) => TensorPrimitives.Add(x, alpha, y);

    public static void ExpForward(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Exp(x, y);
    /// <summary>d exp(x) = exp(x) = y.</summary>
    public static void ExpBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> gy, Span<float> gx) => TensorPrimitives.Multiply(gy, y, gx);

    public static void LogForward(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Log(x, y);
    public static void LogBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> gy, Span<float> gx) => TensorPrimitives.Divide(gy, x, gx);

    public static void SqrtForward(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Sqrt(x, y);
    /// <summary>d sqrt(x) = 1 / (2 sqrt(x)) = 1 / (2y), as torch's sqrt_backward.</summary>
    public static void SqrtBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> gy, Span<float> gx)
    {
        TensorPrimitives.Divide(gy, y, gx);
        TensorPrimitives.Multiply(gx, 0.5f, gx);
    }

    public static void SquareForward(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Multiply(x, x, y);
    public static void SquareBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> gy, Span<float> gx)
    {
        TensorPrimitives.Multiply(gy, x, gx);
        TensorPrimitives.Multiply(gx, 2f, gx);
    }

    public static void PowForward(ReadOnlySpan<float> x, float exponent, Span<float> y) => TensorPrimitives.Pow(x, exponent, y);
    /// <summary>d x^p = p x^(p-1); p = 0 gives 0 everywhere (torch's pow_backward special case).</summary>
    public static void PowBackward(ReadOnlySpan<float> x, float exponent, ReadOnlySpan<float> gy, Span<float> gx)
    {
        if (exponent == 0f) { gx.Clear(); return; }
        if (gx.Overlaps(gy))
        {
            for (int i = 0; i < gx.Length; i++) gx[i] = gy[i] * exponent * MathF.Pow(x[i], exponent - 1f);
            return;
        }
        TensorPrimitives.Pow(x, exponent - 1f, gx);
        TensorPrimitives.Multiply(gx, gy, gx);
        TensorPrimitives.Multiply(gx, exponent, gx);
    }

    public static void TanhForward(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Tanh(x, y);
    /// <summary>d tanh = 1 - y².</summary>
    public static void TanhBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> gy, Span<float> gx)
    {
        for (int i = 0; i < gx.Length; i++) gx[i] = gy[i] * (1f - y[i] * y[i]);
    }

    public static void SigmoidForward(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Sigmoid(x, y);
    /// <summary>d σ = y (1 - y).</summary>
    public static void SigmoidBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> gy, Span<float> gx)
    {
        for (int i = 0; i < gx.Length; i++) gx[i] = gy[i] * (y[i] * (1f - y[i]));
    }

    /// <summary>Inverted dropout: y = x * mask where mask holds 0 or 1/(1-p).</summary>
    public static void DropoutForward(ReadOnlySpan<float> x, ReadOnlySpan<float> mask, Span<float> y) => TensorPrimitives.Multiply(x, mask, y);
}
