using System.Numerics.Tensors;
using MedVL.Tensors;

namespace MedVL.Kernels;

/// <summary>
/// Embedding gather and its backward scatter-add (torch.nn.functional.embedding). Ids are validated against the
/// vocabulary before any row is read. Weights may be float32, bf16 or f16 rows (widened per row).
/// Twin: <see cref="Scalar.EmbeddingScalar"/>.
/// </summary>
public static class Embedding
{
    public static void ValidateIds(ReadOnlySpan<long> ids, int vocab, string what)
    {
        for (int i = 0; i < ids.Length; i++)
            if ((ulong)ids[i] >= (ulong)vocab)
                throw new ArgumentException($"{what}: id {ids[i]} at position {i} is outside the vocabulary [0, {vocab})");
    }

    /// <summary>y[i, :] = weight[ids[i], :] for float32 weights [vocab, d].</summary>
    public static void GatherForward(ReadOnlySpan<long> ids, ReadOnlySpan<float> weight, int d, Span<float> y)
    {
        for (int i = 0; i < ids.Length; i++)
            weight.Slice((int)ids[i] * d, d).CopyTo(y.Slice(i * d, d));
    }

    /// <summary>As <see cref="GatherForward(ReadOnlySpan{long}, ReadOnlySpan{float}, int, Span{float})"/> for bf16 (isBf16) or f16 rows.</summary>
    public static void GatherForward(ReadOnlySpan<long> ids, ReadOnlySpan<ushort> weight, bool isBf16, int d, Span<float> y)
    {
        for (int i = 0; i < ids.Length; i++)
        {
            var row = weight.Slice((int)ids[i] * d, d);
            if (isBf16) FloatConvert.BF16ToF32(row, y.Slice(i * d, d));
            else FloatConvert.F16ToF32(row, y.Slice(i * d, d));
        }
    }

    /// <summary>gw[ids[i], :] += gy[i, :], skipping paddingIdx (its row gets no gradient, as torch's padding_idx).</summary>
    public static void GatherBackward(ReadOnlySpan<long> ids, ReadOnlySpan<float> gy, int d, Span<float> gw, long paddingIdx = -1)
    {
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] == paddingIdx) continue;
            var dst = gw.Slice((int)ids[i] * d, d);
            TensorPrimitives.Add(dst, gy.Slice(i * d, d), dst);
        }
    }
}
