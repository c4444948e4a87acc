using System.Numerics;
using MedVL.Formats;
using MedVL.Tensors;

namespace MedVL.Tests.Formats;

public class TorchCheckpointTests
{
    private static string Torch(string f) => FormatFixtures.File("torch", f);

    private static void AssertMatchesNumpy(TensorEntry t, string expectedNpy)
    {
        var exp = Npy.Read(Torch(Path.Combine("expected", expectedNpy)));
        Assert.Equal(exp.Shape, t.Shape);
        if (exp.DType is DType.I64 or DType.I32 or DType.U8 or DType.I8 or DType.Bool)
            Assert.Equal(exp.ToInt64(), t.ToInt64());
        else
            Assert.Equal(exp.ToFloat32(), t.ToFloat32()); // bit-exact: both sides widen the same stored bits
    }

    [Theory]
    [InlineData("state_zip.pt", true)]
    [InlineData("state_legacy.pt", false)]
    [InlineData("state_zip_p4.pt", true)]
    [InlineData("state_legacy_p4.pt", false)]
    public void ReadsEveryTensorOfATorchSaveStateDict(string file, bool zip)
    {
        using var ck = TorchCheckpoint.Open(Torch(file), verifyChecksums: true);
        Assert.Equal(zip, ck.IsZipFormat);
        if (zip) Assert.Equal(Path.GetFileNameWithoutExtension(file), ck.ArchiveName); // torch 1.13 names the folder after the file stem
        string[] names = ["encoder.weight", "encoder.bias", "half", "bf16", "f64", "ids", "i32", "u8", "i8", "mask",
                          "scalar", "empty", "base", "transposed", "row2", "strided", "big"];
        Assert.Equal(names, ck.StateDict.Keys); // state_dict order preserved
        foreach (var n in names) AssertMatchesNumpy(ck.StateDict[n], $"state__{n}.npy");

        var sd = ck.StateDict;
        Assert.Equal(DType.F16, sd["half"].DType);
        Assert.Equal(DType.BF16, sd["bf16"].DType);
        Assert.Equal(DType.Bool, sd["mask"].DType);
        Assert.True(sd["encoder.bias"].IsParameter);
        Assert.True(sd["encoder.bias"].RequiresGrad);
        Assert.False(sd["encoder.weight"].IsParameter);
        Assert.Empty(sd["scalar"].Shape);
        // Views keep torch's layout: the transposed tensor is non-contiguous and shares storage with "base".
        Assert.False(sd["transposed"].IsContiguous);
        Assert.Equal([1L, 6], sd["transposed"].Strides);
        Assert.Equal([6L, 2], sd["strided"].Strides);
        Assert.Equal(12, sd["row2"].StorageOffset);
        Assert.Equal(sd["base"].StorageKey, sd["transposed"].StorageKey);
        Assert.Equal(sd["base"].StorageKey, sd["row2"].StorageKey);
        Assert.Throws<InvalidOperationException>(() => sd["transposed"].Data.Length);
        // Stored records (both layouts) are exposed straight from the mapping.
        Assert.True(sd["big"].IsMemoryMapped);
        Assert.True(sd["big"].Data.SequenceEqual(sd["big"].StorageBytes));
    }

    [Fact]
    public void TensorsWithPythonAttributesLoad()
    {
        using var ck = TorchCheckpoint.Open(Torch("stateful.pt"));
        Assert.True(ck.StateDict["param"].IsParameter);
        AssertMatchesNumpy(ck.StateDict["param"], "stateful__param.npy");
        AssertMatchesNumpy(ck.StateDict["tensor"], "stateful__tensor.npy");
    }

    /// <summary>torch 2.x spellings, emulated by the fixture tool with pickle itself (torch 1.13 cannot write them).</summary>
    [Fact]
    public void Torch2RebuildFromTypeAndParameterWithState()
    {
        using var ck = TorchCheckpoint.Open(Torch("torch2_style.pt"), verifyChecksums: true);
        Assert.Equal("archive", ck.ArchiveName);
        AssertMatchesNumpy(ck.StateDict["t"], "torch2__t.npy");
        AssertMatchesNumpy(ck.StateDict["p"], "torch2__p.npy");
        Assert.True(ck.StateDict["p"].IsParameter);
        Assert.True(ck.StateDict["p"].RequiresGrad);
        Assert.False(ck.StateDict["t"].IsParameter);
    }

    [Fact]
    public void AStateDictWithAModelKeyIsNotUnwrapped()
    {
        // {"w": tensor, "model": {"x": tensor}} is itself the state dict: the "model" entry must not replace it.
        using var ck = TorchCheckpoint.Open(Torch("model_key.pt"));
        Assert.Equal(["w", "model.x"], ck.StateDict.Keys);
        Assert.Equal([1f, 1f], ck.StateDict["w"].ToFloat32());
    }

    [Fact]
    public void ABareTensorIsTheRoot()
    {
        using var ck = TorchCheckpoint.Open(Torch("single_tensor.pt"));
        var t = Assert.IsType<TensorEntry>(ck.Root);
        Assert.False(t.IsContiguous);
        Assert.Equal(1, t.StorageOffset);
        AssertMatchesNumpy(t, "single__root.npy");
        Assert.Same(t, Assert.Single(ck.Tensors).Value);
        Assert.Equal("", ck.Tensors.Keys.Single());
    }

    [Fact]
    public void ZipStorageRecordsAreZeroCopyAnd64ByteAligned()
    {
        string p = Torch("state_zip.pt");
        byte[] file = File.ReadAllBytes(p);
        using var ck = TorchCheckpoint.Open(p);
        var big = ck.StateDict["big"];
        // Find the record's bytes in the file: they must sit at a 64-byte aligned offset (torch's writer pads to 64).
        int at = file.AsSpan().IndexOf(big.Data);
        Assert.True(at > 0);
        Assert.Equal(0, at % 64);
    }

    [Theory]
    [InlineData("nested_zip.pt")]
    [InlineData("nested_legacy.pt")]
    public void NestedTrainingCheckpointIsUnwrappedAndFlattened(string file)
    {
        using var ck = TorchCheckpoint.Open(Torch(file));
        Assert.Equal(["weight", "bias"], ck.StateDict.Keys);
        Assert.Equal(["state_dict.weight", "state_dict.bias", "history.0", "history.1"], ck.Tensors.Keys);
        foreach (var (k, t) in ck.Tensors) AssertMatchesNumpy(t, $"nested__{k}.npy");
        AssertMatchesNumpy(ck.StateDict["weight"], "nested__state_dict.weight.npy");

        var root = Assert.IsType<PickleDict>(ck.Root);
        Assert.Equal(3L, root["epoch"]);
        Assert.Equal("medvl", root["tag"]);
        Assert.Equal(true, root["flag"]);
        Assert.Null(root["none"]);
        Assert.Equal(new byte[] { 0, 0xff, (byte)'b', (byte)'y', (byte)'t', (byte)'e', (byte)'s' }, root["raw"]);
        var opt = Assert.IsType<PickleDict>(root["optimizer"]);
        Assert.Equal(0.1, opt["lr"]);
        Assert.Equal(1L << 40, opt["step"]);
        Assert.Equal(new PickleTuple([0.9, 0.999]), opt["betas"]);
        var sd = Assert.IsType<PickleDict>(root["state_dict"]);
        Assert.True(sd.IsOrderedDict);
        Assert.NotNull(sd.Attributes); // nn.Module.state_dict()._metadata arrives through BUILD
        Assert.IsType<TensorEntry>(sd["weight"]);
    }

    [Theory]
    [InlineData("evil_os_system_p2.pkl", "posix.system")]
    [InlineData("evil_eval_p4.pkl", "builtins.eval")]
    [InlineData("evil_numpy_p2.pkl", "numpy.core.multiarray._reconstruct")]
    [InlineData("evil_zip.pt", "posix.system")]
    [InlineData("evil_legacy.pt", "builtins.eval")]
    public void MaliciousPicklesAreRejectedAndNothingRuns(string file, string global)
    {
        const string marker = "/tmp/medvl_pickle_pwned";
        if (File.Exists(marker)) File.Delete(marker);
        var e = Assert.Throws<UnsafePickleException>(() => { using var _ = TorchCheckpoint.Open(Torch(file)); });
        Assert.Equal(global, e.GlobalName);
        Assert.Contains(global, e.Message);
        Assert.Contains(file, e.Message);
        Assert.False(File.Exists(marker));
        if (file.EndsWith(".pkl"))
            Assert.Throws<UnsafePickleException>(() => SafePickle.Load(Torch(file)));
    }

    [Fact]
    public void HandAssembledPicklesCoverTheRestOfTheOpcodeSet()
    {
        // Protocol 4 framing, MEMOIZE, SHORT_BINUNICODE, EMPTY_SET/ADDITEMS, LONG1, BINFLOAT, BINBYTES, DUP/POP.
        byte[] p =
        [
            0x80, 4, 0x95, 40, 0, 0, 0, 0, 0, 0, 0,
            0x5d, 0x94,                                   // EMPTY_LIST, MEMOIZE -> memo 0
            0x28,                                         // MARK
            0x8c, 2, (byte)'h', (byte)'i', 0x94,          // 'hi', memo 1
            0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1,           // LONG1 2**64
            0x8a, 1, 0xff,                                // LONG1 -1
            0x47, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18, // BINFLOAT pi
            0x43, 2, 7, 8,                                // SHORT_BINBYTES
            0x8f, 0x28, 0x4b, 5, 0x90,                    // EMPTY_SET, MARK, 5, ADDITEMS
            0x68, 1,                                      // BINGET 1 ('hi')
            0x32, 0x30,                                   // DUP, POP
            0x65,                                         // APPENDS
            0x2e,                                         // STOP
        ];
        var l = Assert.IsType<List<object?>>(SafePickle.Load(p, "mem"));
        Assert.Equal("hi", l[0]);
        Assert.Equal(BigInteger.Pow(2, 64), l[1]);
        Assert.Equal(-1L, l[2]);
        Assert.Equal(Math.PI, l[3]);
        Assert.Equal(new byte[] { 7, 8 }, l[4]);
        Assert.Equal([5L], Assert.IsType<PickleSet>(l[5]).Items);
        Assert.Equal("hi", l[6]);
    }

    [Theory]
    [InlineData(new byte[] { 0x80, 2, 0x4e }, "before STOP")]                          // no STOP
    [InlineData(new byte[] { 0x80, 2, 0x2e }, "underflow")]                            // STOP on empty stack
    [InlineData(new byte[] { 0x80, 2, 0x68, 3, 0x2e }, "never stored")]                // BINGET of unknown memo
    [InlineData(new byte[] { 0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x2e }, "exceeds")] // BINUNICODE longer than input
    [InlineData(new byte[] { 0x80, 2, 0x8b, 0, 0, 0, 0x10, 0x2e }, "exceeds")]          // LONG4 of 256 MiB
    [InlineData(new byte[] { 0x80, 2, 0x4e, 0x4e, 0x61, 0x2e }, "not a list")]         // APPEND to None
    [InlineData(new byte[] { 0x80, 2, 0x7d, 0x5d, 0x4e, 0x73, 0x2e }, "unhashable")]   // list as dict key
    [InlineData(new byte[] { 0x80, 2, 0x65, 0x2e }, "no MARK")]                        // APPENDS without MARK
    [InlineData(new byte[] { 0x80, 2, 0x69, 0x2e }, "INST")]                           // INST
    [InlineData(new byte[] { 0x80, 2, 0x82, 1, 0x2e }, "EXT")]                         // EXT1
    [InlineData(new byte[] { 0x80, 2, 0xfe, 0x2e }, "0xfe")]                           // invalid opcode
    [InlineData(new byte[] { 0x80, 2, 0x4e, 0x29, 0x52, 0x2e }, "non-callable")]       // REDUCE on None
    [InlineData(new byte[] { 0x80, 2, 0x4e, 0x51, 0x2e }, "persistent id")]            // BINPERSID without a loader
    public void MalformedPicklesFailCleanly(byte[] pickle, string fragment)
    {
        var e = Assert.Throws<InvalidCheckpointException>(() => SafePickle.Load(pickle, "mem.pkl"));
        Assert.Contains("mem.pkl", e.Message);
        Assert.Contains(fragment, e.Message);
    }

    [Theory]
    [InlineData("torch.storage", "_load_from_bytes")]
    [InlineData("builtins", "getattr")]
    [InlineData("__builtin__", "eval")]
    [InlineData("subprocess", "Popen")]
    [InlineData("torch", "load")]
    public void GlobalsOutsideTheAllowListAreRejectedByName(string module, string name)
    {
        // GLOBAL 'module\nname\n', EMPTY_TUPLE, REDUCE, STOP
        var p = new List<byte> { 0x80, 2, 0x63 };
        p.AddRange(System.Text.Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
        p.AddRange([0x29, 0x52, 0x2e]);
        var e = Assert.Throws<UnsafePickleException>(() => SafePickle.Load(p.ToArray(), "g.pkl"));
        Assert.Equal(module == "__builtin__" ? $"builtins.{name}" : $"{module}.{name}", e.GlobalName);
        Assert.Contains("g.pkl", e.Message);
    }

    [Fact]
    public void AllowedGlobalsCannotBeMisused()
    {
        // torch.FloatStorage is allowed as a storage-type marker only: calling it is refused.
        var p = new List<byte> { 0x80, 2, 0x63 };
        p.AddRange("torch\nFloatStorage\n"u8.ToArray());
        p.AddRange([0x29, 0x52, 0x2e]);
        var e = Assert.Throws<InvalidCheckpointException>(() => SafePickle.Load(p.ToArray(), "s.pkl"));
        Assert.Contains("cannot be called", e.Message);
        // Unknown torch storage types are unsupported, not silently mapped.
        p = [0x80, 2, 0x63, .. "torch\nComplexFloatStorage\n"u8.ToArray(), 0x2e];
        e = Assert.Throws<InvalidCheckpointException>(() => SafePickle.Load(p.ToArray(), "s.pkl"));
        Assert.Contains("unsupported storage type torch.ComplexFloatStorage", e.Message);
    }

    [Fact]
    public void DeeplyNestedMarksAreBounded()
    {
        var p = new List<byte> { 0x80, 2 };
        p.AddRange(Enumerable.Repeat((byte)0x28, 100_000));
        var e = Assert.Throws<InvalidCheckpointException>(() => SafePickle.Load(p.ToArray(), "deep.pkl"));
        Assert.Contains("MARK nesting", e.Message);
    }

    [Fact]
    public void DeeplyNestedTuplesAreBoundedAndMessagesStayShort()
    {
        // ')' then 1,000,000 x TUPLE1: Equals/ToString on such a value would otherwise recurse a million levels.
        var p = new List<byte> { 0x80, 2, 0x29 };
        p.AddRange(Enumerable.Repeat((byte)0x85, 1_000_000));
        p.Add(0x2e);
        var e = Assert.Throws<InvalidCheckpointException>(() => SafePickle.Load(p.ToArray(), "t.pkl"));
        Assert.Contains("tuples nest deeper", e.Message);
        var wide = new PickleTuple(Enumerable.Range(0, 10_000).Select(i => (object?)(long)i).ToArray());
        Assert.True(wide.ToString().Length < 100);
    }

    [Fact]
    public void RejectsNonCheckpoints()
    {
        var e = Assert.Throws<InvalidCheckpointException>(() => TorchCheckpoint.Open(FormatFixtures.File("st_basic.safetensors")));
        Assert.Contains("not a PyTorch checkpoint", e.Message);
        e = Assert.Throws<InvalidCheckpointException>(() => TorchCheckpoint.Open(FormatFixtures.File("npy", "bundle.npz")));
        Assert.Contains("data.pkl", e.Message);
    }
}
