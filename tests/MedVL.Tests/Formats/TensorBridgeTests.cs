using System.Security.Cryptography;
using MedVL.Formats;
using MedVL.Tensors;

namespace MedVL.Tests.Formats;

/// <summary>Checkpoint entries become Tensors without copying, and the mapping outlives the file object while used.</summary>
public class TensorBridgeTests
{
    [Fact]
    public void MappedSafetensorsTensorIsZeroCopyAndOutlivesTheFile()
    {
        var src = TestPaths.Fixture("models", "qwen2", "model.safetensors"); // the bf16 fixture
        var path = Path.Combine(Path.GetTempPath(), $"medvl-{Guid.NewGuid():N}.safetensors");
        File.Copy(src, path);
        var hash = SHA256.HashData(File.ReadAllBytes(path));
        Tensor t;
        float[] expected;
        using (var f = SafetensorsFile.Open(path))
        {
            var entry = f.Tensors.Values.First(e => e.Rank == 2 && e.DType == DType.BF16);
            expected = entry.ToFloat32();
            t = entry.ToTensor();
            Assert.Equal(DType.BF16, t.DType);
            Assert.Equal(entry.Shape, t.ShapeArray());
            Assert.IsType<ExternalStorage>(t.Storage); // no copy
        }
        // the file object is gone, the tensor still reads the mapping
        Assert.Equal(expected, t.ToFloatArray());
        // copy-on-write: writing changes this process's pages, not the file
        t[0, 0] = 123f;
        Assert.Equal(123f, t[0, 0]);
        t.Dispose();
        Assert.Equal(hash, SHA256.HashData(File.ReadAllBytes(path)));
        File.Delete(path); // the mapping is released: the file can go
    }

    [Fact]
    public void NonContiguousTorchEntryIsCopiedInLogicalOrder()
    {
        foreach (var file in Directory.GetFiles(TestPaths.Fixture("formats", "torch"), "*.pt").Concat(Directory.GetFiles(TestPaths.Fixture("formats", "torch"), "*.bin")))
        {
            TorchCheckpoint ck;
            try { ck = TorchCheckpoint.Open(file); }
            catch (InvalidCheckpointException) { continue; } // the malicious and corrupt fixtures
            using (ck)
            {
                foreach (var e in ck.Tensors.Values.Where(e => e.DType.IsFloatingPoint() && e.ElementCount > 0))
                {
                    using var t = e.ToTensor();
                    Assert.Equal(e.ToFloat32(), t.ToFloatArray());
                    if (!e.IsContiguous) Assert.IsNotType<ExternalStorage>(t.Storage);
                }
            }
        }
    }
}
