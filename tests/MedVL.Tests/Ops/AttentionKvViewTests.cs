using MedVL.Tensors;
using AOps = MedVL.Autograd.Ops;

namespace MedVL.Tests.Ops;

/// <summary>Attention reads a KV-cache view ([B, Hkv, capacity, D] sliced to S rows) in place: same output as a copy.</summary>
public class AttentionKvViewTests
{
    [Theory]
    [InlineData(1, 4, 2, 1, 13, 24, 8)]  // decode, GQA
    [InlineData(2, 6, 3, 5, 21, 40, 16)] // prefill chunk after a cached prefix, batch 2
    public void StridedCacheView_EqualsContiguousCopy(int b, int h, int hkv, int t, int s, int capacity, int d)
    {
        var rng = new Random(7);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        using var q = Tensor.FromArray(R(b * h * t * d), b, h, t, d);
        using var kCache = Tensor.FromArray(R(b * hkv * capacity * d), b, hkv, capacity, d);
        using var vCache = Tensor.FromArray(R(b * hkv * capacity * d), b, hkv, capacity, d);
        using var k = kCache.Slice(2, 0, s);
        using var v = vCache.Slice(2, 0, s);
        Assert.False(k.IsContiguous);
        using var _ = MedVL.Tensors.GradMode.NoGrad();
        using var viaView = AOps.ScaledDotProductAttention(q, k, v, causal: true);
        using var kc = k.Contiguous();
        using var vc = v.Contiguous();
        using var viaCopy = AOps.ScaledDotProductAttention(q, kc, vc, causal: true);
        Assert.Equal(viaCopy.ToFloatArray(), viaView.ToFloatArray());
    }
}
