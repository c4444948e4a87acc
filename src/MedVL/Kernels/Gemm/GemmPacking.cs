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
            // op(B) column j is row j of the stored matrix (nn.Linear's W[N,K]).
            int jDone = 0, pDone = 0;
            if (Avx512F.IsSupported && kc >= 16)
            {
                jDone = nrValid / 16 * 16;
                pDone = kc / 16 * 16;
                for (int jb = 0; jb < jDone; jb += 16)
                {
                    if (typeof(TRead) == typeof(F32Reader)) PackBTransposed16<F32VecLoader>(b, ldb, j0, p0, kc, nr, dst, jb);
                    else if (typeof(TRead) == typeof(BF16Reader)) PackBTransposed16<BF16VecLoader>(b, ldb, j0, p0, kc, nr, dst, jb);
                    else PackBTransposed16<F16VecLoader>(b, ldb, j0, p0, kc, nr, dst, jb);
                }
                // depth tail of the whole blocks
                for (int j = 0; j < jDone; j++)
                {
                    nint row = (j0 + j) * ldb + p0;
                    for (int p = pDone; p < kc; p++) dst[p * nr + j] = TRead.Read(b, row + p);
                }
            }
            // remaining columns (walk each source row contiguously)
            for (int j = jDone; j < nrValid; j++)
            {
                nint row = (j0 + j) * ldb + p0;
                float* d = dst + j;
                for (int p = 0; p < kc; p++) d[p * nr] = TRead.Read(b, row + p);
            }
            for (int j = nrValid; j < nr; j++)
                for (int p = 0; p < kc; p++) dst[p * nr + j] = 0f;
        }
    }

    /// <summary>
    /// Transposed B packing, 16 columns × 16 depths at a time: 16 widened row loads, an in-register 16×16 transpose
    /// (unpack → shuffle → two 128-bit-lane shuffles, the standard AVX-512 sequence), 16 contiguous stores.
    /// Returns false (caller falls back to the scalar loop) when the block is not whole.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackBTransposed16<TLoad>(void* b, nint ldb, int j0, int p0, int kc, int nr, float* dst, int jb)
        where TLoad : struct, IVectorWeightLoader
    {
        // rows j0+jb .. j0+jb+15 of the stored matrix, depths p0 .. p0+kc (kc multiple of 16 handled here)
        nint row0 = (j0 + jb) * ldb + p0;
        for (int p = 0; p + 16 <= kc; p += 16)
        {
            nint o = row0 + p;
            // The 16 source rows are short streams (kc elements each) that the hardware prefetcher barely ramps up on:
            // ask for the same depths of the next 16 rows now, so the next block's loads hit cache (a prefetch never faults).
            byte* next = (byte*)b + (o + 16 * ldb) * TLoad.ElementBytes;
            nint stride = ldb * TLoad.ElementBytes;
            for (int r = 0; r < 16; r++) Sse.Prefetch0(next + r * stride);
            var r0 = TLoad.Load16(b, o + 0 * ldb);
            var r1 = TLoad.Load16(b, o + 1 * ldb);
            var r2 = TLoad.Load16(b, o + 2 * ldb);
            var r3 = TLoad.Load16(b, o + 3 * ldb);
            var r4 = TLoad.Load16(b, o + 4 * ldb);
            var r5 = TLoad.Load16(b, o + 5 * ldb);
            var r6 = TLoad.Load16(b, o + 6 * ldb);
            var r7 = TLoad.Load16(b, o + 7 * ldb);
            var r8 = TLoad.Load16(b, o + 8 * ldb);
            var r9 = TLoad.Load16(b, o + 9 * ldb);
            var r10 = TLoad.Load16(b, o + 10 * ldb);
            var r11 = TLoad.Load16(b, o + 11 * ldb);
            var r12 = TLoad.Load16(b, o + 12 * ldb);
            var r13 = TLoad.Load16(b, o + 13 * ldb);
            var r14 = TLoad.Load16(b, o + 14 * ldb);
            var r15 = TLoad.Load16(b, o + 15 * ldb);
            var t0 = Avx512F.UnpackLow(r0, r1); var t1 = Avx512F.UnpackHigh(r0, r1);
            var t2 = Avx512F.UnpackLow(r2, r3); var t3 = Avx512F.UnpackHigh(r2, r3);
            var t4 = Avx512F.UnpackLow(r4, r5); var t5 = Avx512F.UnpackHigh(r4, r5);
            var t6 = Avx512F.UnpackLow(r6, r7); var t7 = Avx512F.UnpackHigh(r6, r7);
            var t8 = Avx512F.UnpackLow(r8, r9); var t9 = Avx512F.UnpackHigh(r8, r9);
            var t10 = Avx512F.UnpackLow(r10, r11); var t11 = Avx512F.UnpackHigh(r10, r11);
            var t12 = Avx512F.UnpackLow(r12, r13); var t13 = Avx512F.UnpackHigh(r12, r13);
            var t14 = Avx512F.UnpackLow(r14, r15); var t15 = Avx512F.UnpackHigh(r14, r15);
            r0 = Avx512F.Shuffle(t0, t2, 0x44); r1 = Avx512F.Shuffle(t0, t2, 0xEE); r2 = Avx512F.Shuffle(t1, t3, 0x44); r3 = Avx512F.Shuffle(t1, t3, 0xEE);
            r4 = Avx512F.Shuffle(t4, t6, 0x44); r5 = Avx512F.Shuffle(t4, t6, 0xEE); r6 = Avx512F.Shuffle(t5, t7, 0x44); r7 = Avx512F.Shuffle(t5, t7, 0xEE);
            r8 = Avx512F.Shuffle(t8, t10, 0x44); r9 = Avx512F.Shuffle(t8, t10, 0xEE); r10 = Avx512F.Shuffle(t9, t11, 0x44); r11 = Avx512F.Shuffle(t9, t11, 0xEE);
            r12 = Avx512F.Shuffle(t12, t14, 0x44); r13 = Avx512F.Shuffle(t12, t14, 0xEE); r14 = Avx512F.Shuffle(t13, t15, 0x44); r15 = Avx512F.Shuffle(t13, t15, 0xEE);
            t0 = Avx512F.Shuffle4x128(r0, r4, 0x88); t4 = Avx512F.Shuffle4x128(r0, r4, 0xDD);
            t1 = Avx512F.Shuffle4x128(r1, r5, 0x88); t5 = Avx512F.Shuffle4x128(r1, r5, 0xDD);
            t2 = Avx512F.Shuffle4x128(r2, r6, 0x88); t6 = Avx512F.Shuffle4x128(r2, r6, 0xDD);
            t3 = Avx512F.Shuffle4x128(r3, r7, 0x88); t7 = Avx512F.Shuffle4x128(r3, r7, 0xDD);
            t8 = Avx512F.Shuffle4x128(r8, r12, 0x88); t12 = Avx512F.Shuffle4x128(r8, r12, 0xDD);
            t9 = Avx512F.Shuffle4x128(r9, r13, 0x88); t13 = Avx512F.Shuffle4x128(r9, r13, 0xDD);
            t10 = Avx512F.Shuffle4x128(r10, r14, 0x88); t14 = Avx512F.Shuffle4x128(r10, r14, 0xDD);
            t11 = Avx512F.Shuffle4x128(r11, r15, 0x88); t15 = Avx512F.Shuffle4x128(r11, r15, 0xDD);
            float* d = dst + (nint)p * nr + jb;
            Avx512F.Shuffle4x128(t0, t8, 0x88).Store(d + 0 * nr); Avx512F.Shuffle4x128(t0, t8, 0xDD).Store(d + 8 * nr);
            Avx512F.Shuffle4x128(t1, t9, 0x88).Store(d + 1 * nr); Avx512F.Shuffle4x128(t1, t9, 0xDD).Store(d + 9 * nr);
            Avx512F.Shuffle4x128(t2, t10, 0x88).Store(d + 2 * nr); Avx512F.Shuffle4x128(t2, t10, 0xDD).Store(d + 10 * nr);
            Avx512F.Shuffle4x128(t3, t11, 0x88).Store(d + 3 * nr); Avx512F.Shuffle4x128(t3, t11, 0xDD).Store(d + 11 * nr);
            Avx512F.Shuffle4x128(t4, t12, 0x88).Store(d + 4 * nr); Avx512F.Shuffle4x128(t4, t12, 0xDD).Store(d + 12 * nr);
            Avx512F.Shuffle4x128(t5, t13, 0x88).Store(d + 5 * nr); Avx512F.Shuffle4x128(t5, t13, 0xDD).Store(d + 13 * nr);
            Avx512F.Shuffle4x128(t6, t14, 0x88).Store(d + 6 * nr); Avx512F.Shuffle4x128(t6, t14, 0xDD).Store(d + 14 * nr);
            Avx512F.Shuffle4x128(t7, t15, 0x88).Store(d + 7 * nr); Avx512F.Shuffle4x128(t7, t15, 0xDD).Store(d + 15 * nr);
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
