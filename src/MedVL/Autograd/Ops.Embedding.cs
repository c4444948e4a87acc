using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Autograd;

/// <summary>Embedding lookup (torch.nn.functional.embedding) with float32, bf16 or f16 tables.</summary>
public static partial class Ops
{
    /// <summary>
    /// y[..., :] = weight[ids[...], :] for int32/int64 ids of any shape and weight [vocab, d]; y is float32 [..ids, d].
    /// Backward scatter-adds into a float32 gradient of the table, only when the table tracks gradients (a frozen
    /// base embedding never gets one); the <paramref name="paddingIdx"/> row gets none, as torch's padding_idx.
    /// </summary>
    public static Tensor Embedding(Tensor ids, Tensor weight, long? paddingIdx = null)
    {
        if (weight.Rank != 2) throw new ArgumentException($"Embedding: weight {weight.Describe()} must be [vocab, dim]");
        if (weight.DType is not (DType.F32 or DType.BF16 or DType.F16))
            throw new ArgumentException($"Embedding: weight {weight.Describe()} must be float32, bf16 or f16");
        int vocab = weight.Size(0), d = weight.Size(1);
        if (paddingIdx is long p && (p < 0 || p >= vocab))
            throw new ArgumentException($"Embedding: padding_idx {p} outside [0, {vocab})");
        using var idc = ReadI64(ids, "Embedding", "ids");
        var idSpan = idc.Span<long>();
        Kernels.Embedding.ValidateIds(idSpan, vocab, $"Embedding ids {ids.Describe()}");
        var shape = new int[ids.Rank + 1];
        ids.Shape.CopyTo(shape);
        shape[^1] = d;
        var y = Tensor.Empty(shape);
        using (var wc = weight.IsContiguous ? weight.Detach() : weight.Clone())
            EmbeddingParallel.Gather(idc, wc, d, y);
        if (ShouldRecord(weight)) y.GradFn = new EmbeddingBackward(weight, idc.Detach(), paddingIdx ?? -1);
        return y;
    }

    private sealed class EmbeddingBackward : GradNode
    {
        private Tensor? _ids;
        private readonly long _padding;

        public EmbeddingBackward(Tensor weight, Tensor ids, long padding) : base(weight)
        {
            _ids = ids;
            _padding = padding;
        }

        public override Tensor?[] Backward(Tensor g)
        {
            var gw = Tensor.Zeros(Inputs[0].ShapeArray());
            Kernels.Embedding.GatherBackward(_ids!.Span<long>(), g.Span<float>(), Inputs[0].Size(1), gw.Span<float>(), _padding);
            return new Tensor?[] { gw };
        }

        public override void ReleaseSaved()
        {
            _ids?.Dispose();
            _ids = null;
        }
    }
}

/// <summary>Embedding gather over chunks of ids (each output row is one weight row: bit-identical to one call).</summary>
internal static unsafe class EmbeddingParallel
{
    private struct Rows : IRowChunk
    {
        public long* Ids;
        public void* Weight;
        public DType WeightType;
        public long WeightLen;
        public float* Y;
        public int D;

        public void Run(int r0, int rc)
        {
            var ids = new ReadOnlySpan<long>(Ids + r0, rc);
            var y = new Span<float>(Y + (long)r0 * D, checked(rc * D));
            if (WeightType == DType.F32) Kernels.Embedding.GatherForward(ids, new ReadOnlySpan<float>(Weight, checked((int)WeightLen)), D, y);
            else Kernels.Embedding.GatherForward(ids, new ReadOnlySpan<ushort>(Weight, checked((int)WeightLen)), WeightType == DType.BF16, D, y);
        }
    }

    public static void Gather(Tensor ids, Tensor weight, int d, Tensor y)
    {
        int rows = checked((int)ids.Numel);
        var body = new Rows { Ids = (long*)ids.DataPointer, Weight = weight.DataPointer, WeightType = weight.DType, WeightLen = weight.Numel, Y = (float*)y.DataPointer, D = d };
        if (d > 0) WorkSplit.ForRows(rows, (long)rows * d, ref body);
    }
}
