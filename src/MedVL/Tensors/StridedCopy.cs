using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace MedVL.Tensors;

/// <summary>Element copies between tensors of any strides: the one place that walks strided layouts.</summary>
internal static unsafe class StridedCopy
{
    /// <summary>Copy src into dst (same shape and dtype, any strides).</summary>
    public static void Copy(Tensor src, Tensor dst)
    {
        if (src.DType != dst.DType) throw new ArgumentException("dtype mismatch");
        int es = src.DType.SizeOf();
        if (src.IsContiguous && dst.IsContiguous)
        {
            Buffer.MemoryCopy(src.DataPointer, dst.DataPointer, dst.Numel * es, src.Numel * es);
            return;
        }
        ForEachRow(src, dst, (s, d, n, ss, ds) =>
        {
            if (ss == 1 && ds == 1) Buffer.MemoryCopy(s, d, n * es, n * es);
            else
                for (long i = 0; i < n; i++)
                    Buffer.MemoryCopy(s + i * ss * es, d + i * ds * es, es, es);
        });
    }

    /// <summary>dst += src elementwise, float32; dst may be any strided view (stride 0 accumulates, as expand's backward).</summary>
    public static void AddInto(Tensor dst, Tensor src)
    {
        if (dst.DType != DType.F32 || src.DType != DType.F32) throw new ArgumentException("AddInto needs float32");
        if (!dst.Shape.SequenceEqual(src.Shape)) throw new ArgumentException($"AddInto shape {Tensor.FormatShape(src.Shape)} into {Tensor.FormatShape(dst.Shape)}");
        if (src.IsContiguous && dst.IsContiguous)
        {
            var d = dst.Span<float>();
            TensorPrimitives.Add(d, src.Span<float>(), d);
            return;
        }
        ForEachRow(src, dst, (s, d, n, ss, ds) =>
        {
            float* sf = (float*)s, df = (float*)d;
            for (long i = 0; i < n; i++) df[i * ds] += sf[i * ss];
        });
    }

    /// <summary>Convert contiguous src into contiguous dst of another dtype.</summary>
    public static void Convert(Tensor src, Tensor dst)
    {
        long n = src.Numel;
        if (n == 0) return;
        // float32 as the hub: src -> f32 -> dst.
        float[]? tmp = null;
        Span<float> f = src.DType == DType.F32
            ? src.Span<float>()
            : dst.DType == DType.F32 ? dst.Span<float>() : (tmp = new float[n]);
        switch (src.DType)
        {
            case DType.F32: break;
            case DType.BF16: FloatConvert.BF16ToF32(src.Span<ushort>(), f); break;
            case DType.F16: FloatConvert.F16ToF32(src.Span<ushort>(), f); break;
            case DType.F64: { var s = src.Span<double>(); for (int i = 0; i < s.Length; i++) f[i] = (float)s[i]; break; }
            case DType.I32: { var s = src.Span<int>(); for (int i = 0; i < s.Length; i++) f[i] = s[i]; break; }
            case DType.I64: { var s = src.Span<long>(); for (int i = 0; i < s.Length; i++) f[i] = s[i]; break; }
            case DType.U8: case DType.Bool: { var s = src.Span<byte>(); for (int i = 0; i < s.Length; i++) f[i] = s[i]; break; }
            case DType.I8: { var s = src.Span<sbyte>(); for (int i = 0; i < s.Length; i++) f[i] = s[i]; break; }
            default: throw new NotSupportedException($"conversion from {src.DType}");
        }
        switch (dst.DType)
        {
            case DType.F32: if (src.DType == DType.F32) f.CopyTo(dst.Span<float>()); break;
            case DType.BF16: FloatConvert.F32ToBF16(f, dst.Span<ushort>()); break;
            case DType.F16: FloatConvert.F32ToF16(f, dst.Span<ushort>()); break;
            case DType.F64: { var d = dst.Span<double>(); if (src.DType == DType.F64) src.Span<double>().CopyTo(d); else for (int i = 0; i < d.Length; i++) d[i] = f[i]; break; }
            case DType.I32: { var d = dst.Span<int>(); if (src.DType == DType.I64) { var s = src.Span<long>(); for (int i = 0; i < d.Length; i++) d[i] = checked((int)s[i]); } else for (int i = 0; i < d.Length; i++) d[i] = (int)f[i]; break; }
            case DType.I64: { var d = dst.Span<long>(); if (src.DType == DType.I32) { var s = src.Span<int>(); for (int i = 0; i < d.Length; i++) d[i] = s[i]; } else for (int i = 0; i < d.Length; i++) d[i] = (long)f[i]; break; }
            default: throw new NotSupportedException($"conversion to {dst.DType}");
        }
    }

    private delegate void RowAction(byte* src, byte* dst, long n, long srcStride, long dstStride);

    /// <summary>Walk all index tuples except the last dimension (an odometer), calling <paramref name="row"/> per innermost row.</summary>
    private static void ForEachRow(Tensor src, Tensor dst, RowAction row)
    {
        int rank = src.Rank;
        int es = src.DType.SizeOf();
        int eds = dst.DType.SizeOf();
        if (src.Numel == 0) return;
        if (rank == 0)
        {
            row(src.DataPointer, dst.DataPointer, 1, 1, 1);
            return;
        }
        long n = src.Shape[rank - 1];
        long ss = src.Strides[rank - 1], ds = dst.Strides[rank - 1];
        Span<int> idx = stackalloc int[rank];
        long rows = src.Numel / Math.Max(n, 1);
        byte* sBase = src.Storage.Pointer, dBase = dst.Storage.Pointer;
        for (long r = 0; r < rows; r++)
        {
            long so = src.Offset, dof = dst.Offset;
            for (int k = 0; k < rank - 1; k++)
            {
                so += idx[k] * src.Strides[k];
                dof += idx[k] * dst.Strides[k];
            }
            row(sBase + so * es, dBase + dof * eds, n, ss, ds);
            for (int k = rank - 2; k >= 0; k--)
            {
                if (++idx[k] < src.Shape[k]) break;
                idx[k] = 0;
            }
        }
    }
}
