using System.IO.Compression;
using MedVL.Formats;

namespace MedVL.Tests.Formats;

/// <summary>
/// Seeded mutation fuzzing of every reader: random byte flips, truncations and splices of real files. Each input must
/// either load (and then every tensor must convert) or fail with <see cref="InvalidCheckpointException"/> — never an
/// IndexOutOfRange/NullReference/OutOfMemory/Overflow or a hang.
/// </summary>
public class FormatFuzzTests
{
    private const int Iterations = 300;

    private static byte[] Mutate(byte[] src, Random rng)
    {
        var b = (byte[])src.Clone();
        switch (rng.Next(4))
        {
            case 0: // a few random bytes flipped
                for (int k = rng.Next(1, 5); k > 0; k--) b[rng.Next(b.Length)] ^= (byte)rng.Next(1, 256);
                return b;
            case 1: // truncated
                return b[..rng.Next(b.Length)];
            case 2: // a byte set to an "interesting" value (lengths/opcodes/signatures)
                b[rng.Next(b.Length)] = (byte)(new[] { 0, 1, 0x7f, 0x80, 0xff, (byte)'{', (byte)'(', 0x2e, 0x58 })[rng.Next(9)];
                return b;
            default: // a 4/8-byte field overwritten with a huge or negative value
            {
                int at = rng.Next(Math.Max(1, b.Length - 8));
                var v = BitConverter.GetBytes(rng.Next(3) switch { 0 => long.MaxValue, 1 => -1L, _ => (long)rng.Next() << rng.Next(0, 33) });
                v.AsSpan(0, Math.Min(8, b.Length - at)).CopyTo(b.AsSpan(at));
                return b;
            }
        }
    }

    private static void Consume(IEnumerable<TensorEntry> tensors)
    {
        foreach (var t in tensors)
        {
            if (t.ElementCount > 1 << 24) continue; // validated sizes are backed by the file; skip only absurdly large ones
            t.ToFloat32();
            t.ToContiguousBytes();
        }
    }

    private static void Run(string name, byte[] original, Action<string> open, int seed)
    {
        var rng = new Random(seed);
        string dir = FormatFixtures.TempDir();
        int loaded = 0, rejected = 0;
        try
        {
            for (int i = 0; i < Iterations; i++)
            {
                var bytes = Mutate(original, rng);
                string p = Path.Combine(dir, $"{i}_{name}");
                File.WriteAllBytes(p, bytes);
                try { open(p); loaded++; }
                catch (InvalidCheckpointException) { rejected++; }
                catch (Exception e)
                {
                    File.WriteAllBytes(Path.Combine(Path.GetTempPath(), $"medvl-fuzz-fail-{name}"), bytes);
                    Assert.Fail($"{name} iteration {i} (seed {seed}) threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                }
                File.Delete(p);
            }
            // Both outcomes must occur, or the mutations are not reaching the parser's interesting paths.
            Assert.True(loaded > 0 && rejected > 0, $"{name}: {loaded} loaded, {rejected} rejected");
        }
        finally { Directory.Delete(dir, true); }
    }

    private static void RunInMemory(string name, byte[] original, Action<Stream> open, int seed)
    {
        var rng = new Random(seed);
        for (int i = 0; i < Iterations; i++)
        {
            var bytes = Mutate(original, rng);
            try { open(new MemoryStream(bytes, writable: false)); }
            catch (InvalidCheckpointException) { }
            catch (Exception e) { Assert.Fail($"{name} iteration {i} (seed {seed}) threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}"); }
        }
    }

    [Fact]
    public void SafetensorsMutations()
    {
        foreach (var f in new[] { "st_basic.safetensors", "st_unaligned.safetensors" })
            Run(f, File.ReadAllBytes(FormatFixtures.File(f)), p => { using var s = SafetensorsFile.Open(p); Consume(s.Tensors.Values); }, 11);
    }

    [Theory]
    [InlineData("state_zip.pt"), InlineData("state_legacy.pt"), InlineData("nested_zip.pt"), InlineData("nested_legacy.pt")]
    public void TorchCheckpointMutations(string f)
    {
        Run(f, File.ReadAllBytes(FormatFixtures.File("torch", f)), p =>
        {
            using var ck = TorchCheckpoint.Open(p, verifyChecksums: true);
            Consume(ck.Tensors.Values);
        }, 23);
    }

    /// <summary>
    /// The zip CRC stops flipped bytes before they reach the unpickler, so this re-packs the archive with a mutated
    /// data.pkl and a correct CRC: the restricted VM, persistent loads and tensor validation see the corruption.
    /// </summary>
    [Fact]
    public void TorchPickleMutationsInsideAValidZip()
    {
        string src = FormatFixtures.File("torch", "state_zip.pt");
        var records = new List<(string Name, byte[] Data)>();
        using (var z = ZipFile.OpenRead(src))
            foreach (var e in z.Entries)
            {
                using var s = e.Open();
                var ms = new MemoryStream();
                s.CopyTo(ms);
                records.Add((e.FullName, ms.ToArray()));
            }
        byte[] pkl = records.Single(r => r.Name.EndsWith("/data.pkl")).Data;
        var rng = new Random(37);
        string dir = FormatFixtures.TempDir();
        try
        {
            for (int i = 0; i < Iterations; i++)
            {
                var bad = Mutate(pkl, rng);
                string p = Path.Combine(dir, $"{i}.pt");
                using (var z = ZipFile.Open(p, ZipArchiveMode.Create))
                    foreach (var (name, data) in records)
                    {
                        using var w = z.CreateEntry(name, CompressionLevel.NoCompression).Open();
                        w.Write(name.EndsWith("/data.pkl") ? bad : data);
                    }
                try
                {
                    using var ck = TorchCheckpoint.Open(p);
                    Consume(ck.Tensors.Values);
                }
                catch (InvalidCheckpointException) { }
                catch (Exception e)
                {
                    Assert.Fail($"pickle mutation {i} threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                }
                File.Delete(p);
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void NpyAndNpzMutations()
    {
        foreach (var f in new[] { "f4.npy", "fortran_f4.npy", "big_endian_i8.npy", "v3_f4.npy" })
            RunInMemory(f, File.ReadAllBytes(FormatFixtures.File("npy", f)), s => Npy.Read(s, f).ToFloat32(), 41);
        foreach (var f in new[] { "bundle.npz", "bundle_compressed.npz" })
            RunInMemory(f, File.ReadAllBytes(FormatFixtures.File("npy", f)), s => { foreach (var a in Npy.ReadNpz(s, f).Values) a.ToFloat32(); }, 43);
    }

    [Fact]
    public void RawPickleMutations()
    {
        var rng = new Random(53);
        foreach (var f in new[] { "evil_numpy_p2.pkl", "evil_eval_p4.pkl" })
        {
            var src = File.ReadAllBytes(FormatFixtures.File("torch", f));
            for (int i = 0; i < Iterations; i++)
            {
                var b = Mutate(src, rng);
                try { SafePickle.Load(b, f); }
                catch (InvalidCheckpointException) { }
                catch (Exception e) { Assert.Fail($"{f} mutation {i} threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}"); }
            }
        }
    }
}
