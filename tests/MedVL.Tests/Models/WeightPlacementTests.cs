using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Tensors;
using Xunit;

namespace MedVL.Tests.Models;

/// <summary>Weights copied into huge-page memory (--no-mmap) give bit-identical results to the file mapping.</summary>
public sealed class WeightPlacementTests
{
    [Theory]
    [InlineData("phi3")]   // f32
    [InlineData("qwen2")]  // bf16
    [InlineData("llava_phi3")]
    public void HugePagesGiveTheSameLogitsAsTheMapping(string folder)
    {
        int[] ids = [1, 5, 9, 2, 7];
        using var noGrad = GradMode.NoGrad();
        using var mapped = AutoModelForCausalLM.FromPretrained(DecoderParityTests.Fx(folder));
        using var copied = AutoModelForCausalLM.FromPretrained(DecoderParityTests.Fx(folder), WeightPlacement.HugePages);
        using var a = mapped.Forward(ids);
        using var b = copied.Forward(ids);
        Assert.Equal(a.ToFloatArray(), b.ToFloatArray());
        Assert.Equal(mapped.EmbedTokensWeight.DType, copied.EmbedTokensWeight.DType);
    }

    [Fact]
    public unsafe void ArenaBlocksAreAlignedDisjointAndOutliveTheArenaWhileReferenced()
    {
        Tensor t;
        using (var arena = new HugePageArena(chunkBytes: 1 << 20))
        {
            var p1 = arena.Allocate(10);
            var p2 = arena.Allocate(100);
            var big = arena.Allocate(5L << 20); // larger than a chunk: a chunk of its own
            Assert.Equal(0, (long)p1 % 64);
            Assert.Equal(0, (long)p2 % 64);
            Assert.Equal(0, (long)big % 64);
            Assert.True(p2 >= p1 + 64);
            Assert.True(arena.ReservedBytes >= (2L << 20) + (6L << 20) - (2L << 20));
            var src = new float[] { 1, 2, 3, 4, 5, 6 };
            t = arena.Copy(System.Runtime.InteropServices.MemoryMarshal.AsBytes(src.AsSpan()), DType.F32, [2, 3]);
        }
        // The arena's creator reference is gone; the tensor still holds one.
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, t.ToFloatArray());
        t.Dispose();
    }

    [Fact]
    public void CopyRejectsAByteCountThatDoesNotMatchTheShape()
    {
        using var arena = new HugePageArena();
        var e = Assert.Throws<ArgumentException>(() => arena.Copy(new byte[10], DType.F32, [3]));
        Assert.Contains("10 bytes", e.Message);
    }
}
