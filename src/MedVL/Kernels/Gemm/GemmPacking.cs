using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MedVL.Tensors;

namespace MedVL.Kernels.Gemm;

/// <summary>Reads element i of a weight buffer as float32 (the conversion happens while packing, never as a whole copy).</summary>
internal unsafe interface IElementReader
{
    static abstract float Read(void* p, nint i);
}

internal unsafe struct F32Reader : IElementReader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Read(void* p, nint i) => ((float*)p)[i];
}

internal unsafe struct BF16Reader : IElementReader
{
    // bf16 is the upper half of an IEEE float32: widening is a 16-bit shift.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Read(void* p, nint i) => BitConverter.Int32BitsToSingle(((ushort*)p)[i] << 16);
}

internal unsafe struct F16Reader : IElementReader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Read(void* p, nint i) => (float)BitConverter.UInt16BitsToHalf(((ushort*)p)[i]);
}

/// <summary>
/// Packing of A and B panels into the k-major, zero-padded layout the micro-kernels read
/// (Goto &amp; van de Geijn 2008 §5: contiguous micro-panels so the kernel streams them with unit stride).
/// </summary>
internal static unsafe class GemmPacking
{
    /// <summary>
    /// Pack rows [i0, i0+mr) (mr ≤ MR), columns [p0, p0+kc) of op(A) into dst[p*MR + r], zero-padding rows mr..MR-1.
    /// op(A)(i,p) = transA ? a[p*lda + i] : a[i*lda + p].
    /// </summary>
    public static void PackA(float* a, nint lda, bool transA, int i0, int mr, int p0, int kc, float* dst)
    {
        const int MR = GemmMicroKernels.MR;
        if (!transA)
        {
            if (mr == MR)
            {
                float* s0 = a + i0 * lda + p0, s1 = s0 + lda, s2 = s1 + lda, s3 = s2 + lda, s4 = s3 + lda, s5 = s4 + lda;
                for (int p = 0; p < kc; p++, dst += MR)
                {
                    dst[0] = s0[p]; dst[1] = s1[p]; dst[2] = s2[p]; dst[3] = s3[p]; dst[4] = s4[p]; dst[5] = s5[p];
                }
                return;
            }
            for (int p = 0; p < kc; p++, dst += MR)
            {
                int r = 0;
                for (; r < mr; r++) dst[r] = a[(i0 + r) * lda + p0 + p];
                for (; r < MR; r++) dst[r] = 0f;
            }
        }
        else
        {
            for (int p = 0; p < kc; p++, dst += MR)
            {
                float* s = a + (p0 + p) * lda + i0;
                int r = 0;
                for (; r < mr; r++) dst[r] = s[r];
                for (; r < MR; r++) dst[r] = 0f;
            }
        }
    }

    /// <summary>
    /// Pack columns [j0, j0+nrValid) (≤ nr), rows [p0, p0+kc) of op(B) into dst[p*nr + j], zero-padding columns.
    /// op(B)(p,j) = transB ? b[j*ldb + p] : b[p*ldb + j]; elements are widened to float32 by <typeparamref name="TRead"/>.
    /// </summary>
    public static void PackB<TRead>(void* b, nint ldb, bool transB, int j0, int nrValid, int p0, int kc, int nr, float* dst)
        where TRead : struct, IElementReader
    {
        if (!transB)
        {
            for (int p = 0; p < kc; p++, dst += nr)
            {
                nint row = (p0 + p) * ldb + j0;
                int j = 0;
                if (typeof(TRead) == typeof(F32Reader) && Vector512.IsHardwareAccelerated)
                {
                    float* s = (float*)b + row;
                    for (; j <= nrValid - 16; j += 16) Vector512.Store(Vector512.Load(s + j), dst + j);
                }
                else if (typeof(TRead) == typeof(BF16Reader) && Avx512F.IsSupported)
                {
                    ushort* s = (ushort*)b + row;
                    for (; j <= nrValid - 16; j += 16)
                        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load(s + j)), 16).AsSingle().Store(dst + j);
                }
                for (; j < nrValid; j++) dst[j] = TRead.Read(b, row + j);
                for (; j < nr; j++) dst[j] = 0f;
            }
        }
        else
        {
            // op(B) column j is row j of the stored matrix (nn.Linear's W[N,K]); walk each source row contiguously.
            for (int j = 0; j < nrValid; j++)
            {
                nint row = (j0 + j) * ldb + p0;
                float* d = dst + j;
                for (int p = 0; p < kc; p++) d[p * nr] = TRead.Read(b, row + p);
            }
            for (int j = nrValid; j < nr; j++)
                for (int p = 0; p < kc; p++) dst[p * nr + j] = 0f;
        }
    }

    public static void PackB(DType type, void* b, nint ldb, bool transB, int j0, int nrValid, int p0, int kc, int nr, float* dst)
    {
        switch (type)
        {
            case DType.F32: PackB<F32Reader>(b, ldb, transB, j0, nrValid, p0, kc, nr, dst); break;
            case DType.BF16: PackB<BF16Reader>(b, ldb, transB, j0, nrValid, p0, kc, nr, dst); break;
            case DType.F16: PackB<F16Reader>(b, ldb, transB, j0, nrValid, p0, kc, nr, dst); break;
            default: throw new NotSupportedException($"GEMM B operand of dtype {type} is not supported (expected F32, BF16 or F16).");
        }
    }
}
