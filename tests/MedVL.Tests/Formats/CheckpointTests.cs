using MedVL.Formats;

namespace MedVL.Tests.Formats;

public class CheckpointTests
{
    [Fact]
    public void OpensShardedTorchBinCheckpointWithMixedShardLayouts()
    {
        using var src = Checkpoint.Open(FormatFixtures.File("torch", "sharded_bin"));
        var c = Assert.IsType<CheckpointCollection>(src);
        Assert.Equal(2, c.Shards.Count);
        Assert.Equal(["model.layers.0.w", "model.layers.0.b", "lm_head.weight"], c.Tensors.Keys);
        foreach (var (name, t) in c.Tensors)
        {
            var exp = Npy.Read(FormatFixtures.File("torch", "expected", $"sharded__{name}.npy"));
            Assert.Equal(exp.Shape, t.Shape);
            Assert.Equal(exp.ToFloat32(), t.ToFloat32());
        }
        Assert.Equal("70", c.Metadata["total_size"]);
    }

    [Fact]
    public void DispatchesOnContentNotExtension()
    {
        using (var s = Checkpoint.Open(FormatFixtures.File("sharded"))) Assert.IsType<SafetensorsCollection>(s);
        using (var s = Checkpoint.Open(FormatFixtures.File("st_basic.safetensors"))) Assert.IsType<SafetensorsFile>(s);
        using (var s = Checkpoint.Open(FormatFixtures.File("torch", "state_legacy.pt"))) Assert.Equal(17, s.Tensors.Count);
        using (var s = Checkpoint.Open(FormatFixtures.File("torch", "nested_zip.pt"))) Assert.Equal(["weight", "bias"], s.Tensors.Keys); // StateDict view
        var e = Assert.Throws<InvalidCheckpointException>(() => Checkpoint.Open(FormatFixtures.File("npy", "f4.npy")));
        Assert.Contains("not a safetensors file or a PyTorch checkpoint", e.Message);
        Assert.Throws<FileNotFoundException>(() => Checkpoint.Open(FormatFixtures.File("npy")));
    }

    [Fact]
    public void SafetensorsWithA128ByteHeaderIsNotMistakenForAPickle()
    {
        string json = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        var bytes = SafetensorsTests.Craft(json.PadRight(128), 4); // header length 0x80: first byte 0x80 like a pickle
        Assert.Equal(0x80, bytes[0]);
        string dir = FormatFixtures.TempDir();
        try
        {
            string p = Path.Combine(dir, "x.bin");
            File.WriteAllBytes(p, bytes);
            using var s = Checkpoint.Open(p);
            Assert.IsType<SafetensorsFile>(s);
            Assert.Equal([0f], s.Tensors["x"].ToFloat32());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ShardedBinIndexErrorsNameTheShard()
    {
        string dir = FormatFixtures.TempDir();
        try
        {
            foreach (var f in Directory.GetFiles(FormatFixtures.File("torch", "sharded_bin"))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            File.Delete(Path.Combine(dir, "pytorch_model-00002-of-00002.bin"));
            var e = Assert.Throws<InvalidCheckpointException>(() => Checkpoint.Open(dir));
            Assert.Contains("pytorch_model-00002-of-00002.bin", e.Message);
            Assert.Contains("lm_head.weight", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
