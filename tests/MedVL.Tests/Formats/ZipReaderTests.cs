using System.IO.Compression;
using MedVL.Formats;

namespace MedVL.Tests.Formats;

public class ZipReaderTests
{
    /// <summary>
    /// More than 65,535 entries forces the ZIP64 end-of-central-directory record and locator (APPNOTE 4.3.14/4.3.15);
    /// the BCL writer is the independent reference. Also checks stored (zero-copy) and deflated reads and CRCs.
    /// </summary>
    [Fact]
    public void ReadsZip64DirectoriesStoredAndDeflatedEntries()
    {
        string dir = FormatFixtures.TempDir();
        try
        {
            string p = Path.Combine(dir, "many.zip");
            var payload = Enumerable.Range(0, 5000).Select(i => (byte)(i * 7)).ToArray();
            using (var z = ZipFile.Open(p, ZipArchiveMode.Create))
            {
                using (var w = z.CreateEntry("a/stored", CompressionLevel.NoCompression).Open()) w.Write(payload);
                using (var w = z.CreateEntry("a/deflated", CompressionLevel.Optimal).Open()) w.Write(payload);
                for (int i = 0; i < 65_600; i++) z.CreateEntry($"e{i}", CompressionLevel.NoCompression);
            }
            using var map = new MappedFile(p);
            var r = ZipArchiveReader.Open(map, p);
            Assert.Equal(65_602, r.Entries.Count);
            var stored = r.Read(r.Entries.Single(e => e.Name == "a/stored"), verifyCrc: true, out bool zc1);
            var deflated = r.Read(r.Entries.Single(e => e.Name == "a/deflated"), verifyCrc: true, out bool zc2);
            Assert.True(zc1); Assert.False(zc2);
            Assert.Equal(payload, stored.ToArray());
            Assert.Equal(payload, deflated.ToArray());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void CrcMismatchIsReported()
    {
        string dir = FormatFixtures.TempDir();
        try
        {
            string p = Path.Combine(dir, "c.zip");
            using (var z = ZipFile.Open(p, ZipArchiveMode.Create))
            using (var w = z.CreateEntry("x", CompressionLevel.NoCompression).Open()) w.Write("hello world"u8);
            var b = File.ReadAllBytes(p);
            int at = b.AsSpan().IndexOf("hello"u8);
            b[at] = (byte)'j';
            File.WriteAllBytes(p, b);
            using var map = new MappedFile(p);
            var r = ZipArchiveReader.Open(map, p);
            Assert.Equal("jello world"u8.ToArray(), r.Read(r.Entries[0], verifyCrc: false, out _).ToArray());
            var e = Assert.Throws<InvalidCheckpointException>(() => r.Read(r.Entries[0], verifyCrc: true, out _));
            Assert.Contains("CRC-32", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
