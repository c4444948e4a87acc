using System.Text;
using MedVL.Formats;
using MedVL.Tensors;

namespace MedVL.Tests.Formats;

public class NpyTests
{
    public static TheoryData<string> NumpyFiles() =>
        new(FormatFixtures.Group("npy").Keys.Order());

    [Theory]
    [MemberData(nameof(NumpyFiles))]
    public void ReadsNumpyWrittenFiles(string name)
    {
        var exp = FormatFixtures.Get("npy", name);
        var a = Npy.Read(FormatFixtures.File("npy", name + ".npy"));
        Assert.Equal(exp.Shape, a.Shape);
        Assert.Equal(exp.Values.Length, a.ElementCount);
        if (a.DType is DType.I64 or DType.I32 or DType.I16 or DType.U16 or DType.U8 or DType.Bool)
            Assert.Equal(exp.Values.Select(v => (long)v).ToArray(), a.ToInt64());
        else
            FormatFixtures.AssertValues(exp.Values, a.ToFloat32(), name);
        if (a.DType == DType.F64) Assert.Equal(exp.Values, a.ToFloat64());
    }

    [Theory]
    [InlineData("f4"), InlineData("f8"), InlineData("i4"), InlineData("i8"), InlineData("u1"), InlineData("b1"), InlineData("u2"),
     InlineData("i2"), InlineData("f2"), InlineData("scalar"), InlineData("empty")]
    public void WriterMatchesNumpyByteForByte(string name)
    {
        string src = FormatFixtures.File("npy", name + ".npy");
        var a = Npy.Read(src);
        var ms = new MemoryStream();
        Npy.WriteRaw(ms, a.DType, a.Data, a.Shape);
        Assert.Equal(File.ReadAllBytes(src), ms.ToArray());
    }

    [Fact]
    public void TypedOverloadsRoundTrip()
    {
        string dir = FormatFixtures.TempDir();
        try
        {
            string p = Path.Combine(dir, "x.npy");
            float[] f = [1.5f, -2, 3, 4, 5, 6];
            Npy.Write(p, f, [2, 3]);
            var r = Npy.Read(p);
            Assert.Equal(DType.F32, r.DType); Assert.Equal([2, 3], r.Shape); Assert.Equal(f, r.ToFloat32());
            Npy.Write(p, new long[] { long.MinValue, 7 }, [2]);
            Assert.Equal([long.MinValue, 7], Npy.Read(p).ToInt64());
            Npy.Write(p, new int[] { -1, 2, 3 }, [3, 1]);
            Assert.Equal([-1L, 2, 3], Npy.Read(p).ToInt64());
            Npy.Write(p, new double[] { Math.PI }, []);
            Assert.Equal([Math.PI], Npy.Read(p).ToFloat64());
            Assert.Throws<ArgumentException>(() => Npy.Write(p, new float[5], [2, 3]));
            Assert.Throws<NotSupportedException>(() => Npy.WriteRaw(p, DType.BF16, new byte[2], [1]));
            Assert.Throws<InvalidOperationException>(() => Npy.Read(FormatFixtures.File("npy", "f4.npy")).ToInt64());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void HeaderIsVersion1And64ByteAlignedAndV2V3Read()
    {
        var h = Npy.BuildHeader(DType.F32, [3, 4]);
        Assert.Equal(0, h.Length % 64);
        Assert.Equal(1, h[6]);
        Assert.Equal((byte)'\n', h[^1]);
        Assert.Equal([2, 2], Npy.Read(FormatFixtures.File("npy", "v2_f4.npy")).Shape);
        Assert.Equal([2, 2], Npy.Read(FormatFixtures.File("npy", "v3_f4.npy")).Shape);
    }

    [Fact]
    public void ReadsNpzStoredAndCompressed()
    {
        foreach (var f in new[] { "bundle.npz", "bundle_compressed.npz" })
        {
            var d = Npy.ReadNpz(FormatFixtures.File("npy", f));
            Assert.Equal(["ids", "weights"], d.Keys.Order());
            FormatFixtures.AssertValues(FormatFixtures.Get("npy", "f4").Values, d["weights"].ToFloat32(), f);
            Assert.Equal(FormatFixtures.Get("npy", "i8").Values.Select(v => (long)v), d["ids"].ToInt64());
        }
    }

    private static InvalidCheckpointException Fails(byte[] file, string fragment)
    {
        var e = Assert.Throws<InvalidCheckpointException>(() => Npy.Read(new MemoryStream(file), "mem.npy"));
        Assert.Contains("mem.npy", e.Message);
        Assert.Contains(fragment, e.Message);
        return e;
    }

    private static byte[] WithHeader(string dict, int dataLen = 0, byte major = 1)
    {
        var h = Encoding.Latin1.GetBytes(dict + "\n");
        var b = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', major, 0 };
        if (major == 1) b.AddRange(BitConverter.GetBytes((ushort)h.Length)); else b.AddRange(BitConverter.GetBytes((uint)h.Length));
        b.AddRange(h);
        b.AddRange(new byte[dataLen]);
        return b.ToArray();
    }

    [Fact]
    public void RejectsMalformedFilesClearly()
    {
        Fails([1, 2, 3], "truncated");
        Fails(Encoding.ASCII.GetBytes("PK\x03\x04xxxxxxxxxxxx"), "magic");
        Fails(WithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, major: 4), "version 4.0");
        Fails(WithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8), "needs 12 data bytes");
        Fails(WithHeader("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 8), "unsupported descr '<c8'");
        Fails(WithHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4), "structured");
        Fails(WithHeader("{'descr': '<f4', 'shape': (1,), }", 4), "missing");
        Fails(WithHeader("{'descr': '<f4', 'fortran_order': false, 'shape': (1,), }", 4), "True or False");
        Fails(WithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }", 4), "too large");
        Fails(WithHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (2147483647, 2147483647, 2147483647), }", 4), "overflows");
        Fails(WithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), '__import__': 1}", 4), "unexpected key");
        var big = WithHeader("{}", 0, major: 2);
        BitConverter.GetBytes(uint.MaxValue).CopyTo(big, 8);
        Fails(big, "exceeds the limit");
    }
}
