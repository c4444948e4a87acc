using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MedVL.Tensors;

/// <summary>
/// bfloat16 and float16 conversions. bf16 is the upper half of a float32, so widening is a shift;
/// narrowing rounds to nearest even exactly as PyTorch's <c>c10::BFloat16</c> (round_to_nearest_even, NaN kept quiet).
/// </summary>
public static class FloatConvert
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BF16ToF32(ushort b) => BitConverter.Int32BitsToSingle(b << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort F32ToBF16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((u >> 16) | 0x40); // quiet NaN, as c10
        uint rounding = 0x7FFF + ((u >> 16) & 1);
        return (ushort)((u + rounding) >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float F16ToF32(ushort h) => (float)BitConverter.UInt16BitsToHalf(h);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort F32ToF16(float f) => BitConverter.HalfToUInt16Bits((Half)f);

    /// <summary>Widen bf16 to f32 (vectorised; the scalar loop is the tail and the reference).</summary>
    public static void BF16ToF32(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short", nameof(dst));
        int i = 0;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            ref ushort s = ref MemoryMarshal.GetReference(src);
            ref int d = ref Unsafe.As<float, int>(ref MemoryMarshal.GetReference(dst));
            for (; i <= src.Length - 16; i += 16)
            {
                var v = Vector256.LoadUnsafe(ref s, (nuint)i);
                var w = Avx512F.ConvertToVector512Int32(v);
                Avx512F.ShiftLeftLogical(w, 16).StoreUnsafe(ref d, (nuint)i);
            }
        }
        for (; i < src.Length; i++) dst[i] = BF16ToF32(src[i]);
    }

    public static void F32ToBF16(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short", nameof(dst));
        for (int i = 0; i < src.Length; i++) dst[i] = F32ToBF16(src[i]);
    }

    public static void F16ToF32(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short", nameof(dst));
        System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(src), dst);
    }

    public static void F32ToF16(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short", nameof(dst));
        System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<ushort, Half>(dst));
    }
}
