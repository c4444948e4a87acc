using System.Buffers.Binary;
using System.Text;
using MedVL.Formats;
using MedVL.Tensors;

namespace MedVL.Tests.Formats;

public class SafetensorsTests
{
    [Fact]
    public void ReadsEveryDtypeWrittenByTheReferenceWriter()
    {
        using var f = SafetensorsFile.Open(FormatFixtures.File("st_basic.safetensors"));
        var expected = FormatFixtures.Group("st_basic");
        Assert.Equal(expected.Count, f.Count);
        foreach (var (name, exp) in expected)
        {
            var t = f[name];
            Assert.Equal(exp.DType, t.DType.SafetensorsName());
            Assert.Equal(exp.Shape, t.Shape);
            Assert.True(t.IsContiguous);
            Assert.True(t.IsMemoryMapped);
            FormatFixtures.AssertValues(exp.Values, t.ToFloat32(), name);
        }
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal("MedVL \"fixture\"\n", f.Metadata["note"]);
        Assert.Empty(f["scalar"].Shape);
        Assert.Equal(1, f["scalar"].ElementCount);
        Assert.Equal(0, f["empty"].ElementCount);
        Assert.True(f["empty"].Data.IsEmpty);
        Assert.Equal(new long[] { 0, -1, 1L << 40, 7, -(1L << 35), 9 }, f["i64"].ToInt64());
        Assert.Equal(new long[] { 1, 0, 1 }, f["mask"].ToInt64());
        Assert.Equal(0, f.HeaderSize % 8);
    }

    [Fact]
    public void DataIsAZeroCopyViewOfTheFileBytes()
    {
        string path = FormatFixtures.File("st_basic.safetensors");
        byte[] raw = File.ReadAllBytes(path);
        using var f = SafetensorsFile.Open(path);
        long pos = f.DataOffset;
        foreach (var name in f.Names) // storage order
        {
            var t = f[name];
            Assert.True(raw.AsSpan((int)pos, (int)t.ByteLength).SequenceEqual(t.Data), name);
            pos += t.ByteLength;
        }
        Assert.Equal(raw.Length, pos);
        // Bulk F32 path and the scalar reference agree.
        var w = f["model.embed.weight"];
        var bulk = w.ToFloat32();
        for (int i = 0; i < bulk.Length; i++) Assert.Equal(ElementConvert.ToFloat32(DType.F32, w.Data.Slice(i * 4, 4)), bulk[i]);
    }

    [Fact]
    public void UnalignedOffsetsAreRead()
    {
        using var f = SafetensorsFile.Open(FormatFixtures.File("st_unaligned.safetensors"));
        Assert.Equal(["odd", "w", "h"], f.Names);
        foreach (var (name, exp) in FormatFixtures.Group("st_unaligned"))
            FormatFixtures.AssertValues(exp.Values, f[name].ToFloat32(), name);
        Assert.Equal(3, f["odd"].ByteLength); // so "w" (F32) starts at the unaligned buffer offset 3
    }

    [Fact]
    public void WriterReproducesTheReferenceBytesExactly()
    {
        string src = FormatFixtures.File("st_basic.safetensors");
        string dir = FormatFixtures.TempDir();
        try
        {
            string dst = Path.Combine(dir, "copy.safetensors");
            using (var f = SafetensorsFile.Open(src))
            {
                // Hand the tensors over in a scrambled order: the writer must sort them itself.
                var tensors = f.Names.Reverse().Select(n => SafetensorsTensor.From(f[n])).ToList();
                SafetensorsWriter.Write(dst, tensors, f.Metadata);
            }
            Assert.Equal(File.ReadAllBytes(src), File.ReadAllBytes(dst));
            Assert.Single(Directory.GetFiles(dir)); // temp file renamed away
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void WriteThenReadRoundTripsAndOverwritesAtomically()
    {
        string dir = FormatFixtures.TempDir();
        try
        {
            string p = Path.Combine(dir, "m.safetensors");
            var data = Enumerable.Range(0, 35).Select(i => i * 0.37f - 3).ToArray();
            var bf = new ushort[7];
            FloatConvert.F32ToBF16(data.AsSpan(0, 7), bf);
            SafetensorsWriter.Write(p, [SafetensorsTensor.FromFloat32("a.weight", data, [5, 7]),
                SafetensorsTensor.FromArray("b", DType.BF16, bf, [7]),
                new("s", DType.I64, [], BitConverter.GetBytes(42L)),
                new("e", DType.F16, [0], Array.Empty<byte>())], new Dictionary<string, string> { ["format"] = "pt" });
            using (var f0 = SafetensorsFile.Open(p))
            {
                Assert.Equal(bf.Select(FloatConvert.BF16ToF32), f0["b"].ToFloat32());
                Assert.Equal([42L], f0["s"].ToInt64());
                Assert.Equal(0, f0["e"].ElementCount);
            }
            SafetensorsWriter.Write(p, [SafetensorsTensor.FromFloat32("a.weight", data, [5, 7])]); // overwrite in place
            using var f = SafetensorsFile.Open(p);
            Assert.Equal(["a.weight"], f.Names);
            Assert.Equal(data, f["a.weight"].ToFloat32());
            Assert.Empty(f.Metadata);
            Assert.Single(Directory.GetFiles(dir));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void WriterRejectsBadInput()
    {
        string p = Path.Combine(Path.GetTempPath(), "never-" + Guid.NewGuid() + ".safetensors");
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(p, [new("x", DType.F32, [2, 2], new byte[12])]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(p, [new("x", DType.F32, [1], new byte[4]), new("x", DType.F32, [1], new byte[4])]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(p, [new("__metadata__", DType.F32, [1], new byte[4])]));
        Assert.False(File.Exists(p));
    }

    [Fact]
    public void UseAfterDisposeThrowsInsteadOfReadingUnmappedMemory()
    {
        var f = SafetensorsFile.Open(FormatFixtures.File("st_basic.safetensors"));
        var t = f["f16"];
        f.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.ToFloat32());
        Assert.Throws<ObjectDisposedException>(() => t.Data.Length);
    }

    [Fact]
    public void ShardedIndexOpensAsOneCollection()
    {
        using var c = SafetensorsCollection.Open(FormatFixtures.File("sharded"));
        Assert.Equal(3, c.Count);
        Assert.Equal(2, c.Shards.Count);
        foreach (var (name, exp) in FormatFixtures.Group("sharded"))
            FormatFixtures.AssertValues(exp.Values, c[name].ToFloat32(), name);
        Assert.Equal("36", c.Metadata["total_size"]);
        var e = Assert.Throws<KeyNotFoundException>(() => c["nope"]);
        Assert.Contains("nope", e.Message);
    }

    [Fact]
    public void ShardedIndexErrorsNameTheShardAndTensor()
    {
        string dir = FormatFixtures.TempDir();
        try
        {
            foreach (var f in Directory.GetFiles(FormatFixtures.File("sharded"))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            string idx = Path.Combine(dir, "model.safetensors.index.json");
            string orig = File.ReadAllText(idx);

            File.WriteAllText(idx, orig.Replace("\"layers.1.w\": \"model-00002-of-00002.safetensors\"", "\"layers.1.w\": \"model-00001-of-00002.safetensors\""));
            var e = Assert.Throws<InvalidCheckpointException>(() => SafetensorsCollection.Open(idx));
            Assert.Contains("'layers.1.w'", e.Message); Assert.Contains("model-00001-of-00002.safetensors", e.Message);

            File.WriteAllText(idx, orig);
            File.Delete(Path.Combine(dir, "model-00002-of-00002.safetensors"));
            e = Assert.Throws<InvalidCheckpointException>(() => SafetensorsCollection.Open(dir));
            Assert.Contains("model-00002-of-00002.safetensors", e.Message); Assert.Contains("missing", e.Message);

            File.WriteAllText(idx, orig.Replace("\"layers.1.w\": \"model-00002-of-00002.safetensors\"", "\"layers.1.w\": \"../../etc/passwd\""));
            e = Assert.Throws<InvalidCheckpointException>(() => SafetensorsCollection.Open(idx));
            Assert.Contains("not a plain file name", e.Message);

            File.WriteAllText(idx, "{\"metadata\": {}}");
            e = Assert.Throws<InvalidCheckpointException>(() => SafetensorsCollection.Open(idx));
            Assert.Contains("weight_map", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    // ---- malformed files: each must fail with a clear InvalidCheckpointException -------------------------------

    private static InvalidCheckpointException Fails(byte[] file, params string[] fragments)
    {
        string p = Path.Combine(Path.GetTempPath(), "medvl-bad-" + Guid.NewGuid().ToString("N") + ".safetensors");
        File.WriteAllBytes(p, file);
        try
        {
            var e = Assert.Throws<InvalidCheckpointException>(() => { using var _ = SafetensorsFile.Open(p); });
            Assert.Contains(p, e.Message);
            foreach (var f in fragments) Assert.Contains(f, e.Message);
            return e;
        }
        finally { File.Delete(p); }
    }

    internal static byte[] Craft(string json, int dataLen, ulong? declaredLen = null)
    {
        var h = Encoding.UTF8.GetBytes(json);
        var b = new byte[8 + h.Length + dataLen];
        BinaryPrimitives.WriteUInt64LittleEndian(b, declaredLen ?? (ulong)h.Length);
        h.CopyTo(b, 8);
        return b;
    }

    [Fact]
    public void RejectsTruncatedAndOversizedHeaders()
    {
        Fails([], "8-byte header length");
        Fails([1, 2, 3], "8-byte header length");
        Fails(Craft("{}", 0, declaredLen: 1000), "runs past the end");
        Fails(Craft("{}", 0, declaredLen: 100_000_001), "exceeds the safetensors limit");
        Fails(Craft("{}", 0, declaredLen: ulong.MaxValue), "exceeds the safetensors limit");
        Fails(Craft("  {}", 0), "starting with '{'");
        Fails(Craft("{\"a\":", 0), "JSON");
        Fails(Craft("{\"a\": 1}", 0), "'a' must be an object");
        Fails(Craft("{} x", 0), "JSON");
    }

    [Fact]
    public void AcceptsSpacePaddedHeaderAndEmptyFile()
    {
        string p = Path.Combine(Path.GetTempPath(), "medvl-ok-" + Guid.NewGuid().ToString("N") + ".safetensors");
        try
        {
            File.WriteAllBytes(p, Craft("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":[1]}}     ", 4));
            using (var f = SafetensorsFile.Open(p)) Assert.Equal(0f, f["x"].ToFloat32()[0]);
            File.WriteAllBytes(p, Craft("{}", 0));
            using (var f = SafetensorsFile.Open(p)) Assert.Equal(0, f.Count);
        }
        finally { File.Delete(p); }
    }

    [Fact]
    public void RejectsInconsistentOffsets()
    {
        const string T = "{{\"a\":{{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[{0},{1}]}},\"b\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[{2},{3}]}}}}";
        Fails(Craft(string.Format(T, 0, 8, 8, 12), 8), "past the byte buffer");   // out of range
        Fails(Craft(string.Format(T, 0, 8, 4, 8), 12), "overlapping");            // overlap
        Fails(Craft(string.Format(T, 0, 8, 12, 16), 16), "hole");                 // hole
        Fails(Craft(string.Format(T, 0, 8, 8, 12), 20), "trailing");              // data after the last tensor
        Fails(Craft(string.Format(T, 8, 0, 8, 12), 12), "'a'");                   // end < start
        Fails(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "needs 12 bytes", "'a'");
        Fails(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8), "exactly two");
        Fails(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "non-negative");
        Fails(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8), "non-negative");
        Fails(Craft("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), "missing field 'shape'");
    }

    [Fact]
    public void RejectsOverflowingShapes()
    {
        Fails(Craft("{\"a\":{\"dtype\":\"F64\",\"shape\":[2147483647,2147483647,2147483647,4],\"data_offsets\":[0,8]}}", 8), "overflow", "'a'");
        Fails(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296],\"data_offsets\":[0,8]}}", 8), "exceeds");
        Fails(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]}}", 8), "past the byte buffer");
    }

    [Fact]
    public void RejectsDuplicatesBadMetadataAndDtypes()
    {
        Fails(Craft("{\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[1,2]}}", 2), "duplicate key 'a'");
        Fails(Craft("{\"__metadata__\":{\"k\":1}}", 0), "__metadata__.k", "string");
        Fails(Craft("{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0), "duplicate key 'k'");
        Fails(Craft("{\"w\":{\"dtype\":\"F8_E8M0\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), "unsupported dtype F8_E8M0 for tensor 'w'");
        Fails(Craft("{\"w\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8), "unsupported dtype C64 for tensor 'w'");
        Fails(Craft("{\"w\":{\"dtype\":\"float32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "unknown dtype \"float32\"");
        Fails(Craft("{\"w\":{\"dtype\":\"0\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "unknown dtype");
    }
}
