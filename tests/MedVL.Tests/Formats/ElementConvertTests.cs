using MedVL.Formats;
using MedVL.Tensors;

namespace MedVL.Tests.Formats;

public class ElementConvertTests
{
    public static TheoryData<DType> AllDTypes() => new(Enum.GetValues<DType>());

    /// <summary>The bulk (vectorised where possible) conversion equals the scalar reference, bit for bit, on odd lengths.</summary>
    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void BulkConversionMatchesScalarReference(DType t)
    {
        var rng = new Random(5 + (int)t);
        int es = t.SizeOf();
        foreach (int n in new[] { 0, 1, 3, 7, 15, 16, 17, 31, 33, 63, 65, 100 })
        {
            var src = new byte[n * es + 1];
            rng.NextBytes(src);
            var bytes = src.AsSpan(1, n * es); // deliberately misaligned
            var bulk = new float[n];
            ElementConvert.ToFloat32(t, bytes, bulk);
            for (int i = 0; i < n; i++)
            {
                float s = ElementConvert.ToFloat32(t, bytes.Slice(i * es, es));
                Assert.True(BitConverter.SingleToInt32Bits(s) == BitConverter.SingleToInt32Bits(bulk[i]) || (float.IsNaN(s) && float.IsNaN(bulk[i])),
                    $"{t} n={n} i={i}: scalar {s} bulk {bulk[i]}");
            }
        }
    }

    [Fact]
    public void StridedGatherMatchesIndexArithmetic()
    {
        // A 3-D view with arbitrary strides and offset over a storage of 0..N-1: element (i,j,k) must equal
        // offset + i*s0 + j*s1 + k*s2.
        int[] shape = [3, 4, 5];
        long[] strides = [1, 17, 3];
        long offset = 2;
        int storageLen = 2 + 2 * 1 + 3 * 17 + 4 * 3 + 1;
        var storage = new byte[storageLen * 4];
        for (int i = 0; i < storageLen; i++) BitConverter.TryWriteBytes(storage.AsSpan(i * 4), (float)i);
        var e = new TensorEntry("v", DType.F32, shape, strides, offset, storage, null, "mem", "0");
        Assert.False(e.IsContiguous);
        var got = e.ToFloat32();
        int c = 0;
        for (int i = 0; i < 3; i++) for (int j = 0; j < 4; j++) for (int k = 0; k < 5; k++)
            Assert.Equal(offset + i * 1 + j * 17 + k * 3, got[c++]);
        var bytes = e.ToContiguousBytes();
        Assert.Equal(got, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray());
        // One element past the storage is rejected at construction.
        Assert.Throws<InvalidCheckpointException>(() => new TensorEntry("v", DType.F32, shape, strides, offset + 1, storage, null, "mem", "0"));
    }
}
