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
        {
            if (weight.DType == DType.F32) Kernels.Embedding.GatherForward(idSpan, wc.Span<float>(), d, y.Span<float>());
            else Kernels.Embedding.GatherForward(idSpan, wc.Span<ushort>(), weight.DType == DType.BF16, d, y.Span<float>());
        }
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
