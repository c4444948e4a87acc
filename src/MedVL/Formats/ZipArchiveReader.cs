using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace MedVL.Formats;

/// <summary>
/// A minimal read-only ZIP reader over a memory mapping (APPNOTE.TXT 6.3: end of central directory, ZIP64 locator and
/// record, central directory, local headers). It exists so STORED entries, which torch.save writes 64-byte aligned
/// and uncompressed, can be exposed zero-copy; deflated entries are inflated into a bounded managed buffer.
/// Every offset and size is checked against the file before use.
/// </summary>
internal sealed class ZipArchiveReader
{
    internal sealed record Entry(string Name, int Method, long CompressedSize, long UncompressedSize, long LocalHeaderOffset, uint Crc32, int Flags);

    private readonly MappedFile _map;
    private readonly string _path;
    public IReadOnlyList<Entry> Entries { get; }

    private ZipArchiveReader(MappedFile map, string path, List<Entry> entries) { _map = map; _path = path; Entries = entries; }

    private static InvalidCheckpointException Bad(string path, string msg) => new(path, $"zip: {msg}");

    public static bool LooksLikeZip(MappedFile map) =>
        map.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(map.Span(0, 4)) == 0x04034b50;

    public static ZipArchiveReader Open(MappedFile map, string path)
    {
        long len = map.Length;
        if (len < 22) throw Bad(path, "file too short for an end-of-central-directory record");
        int scan = (int)Math.Min(len, 22 + 65535);
        var tail = map.Span(len - scan, scan);
        int eocd = -1;
        for (int i = scan - 22; i >= 0; i--)
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail[i..]) == 0x06054b50) { eocd = i; break; }
        if (eocd < 0) throw Bad(path, "no end-of-central-directory record (truncated archive?)");
        long eocdPos = len - scan + eocd;
        var e = tail[eocd..];
        long count = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        long cdSize = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
        long cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
        if (count == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF)
        {
            if (eocdPos < 20) throw Bad(path, "ZIP64 locator missing");
            var loc = map.Span(eocdPos - 20, 20);
            if (BinaryPrimitives.ReadUInt32LittleEndian(loc) != 0x07064b50) throw Bad(path, "ZIP64 locator missing");
            ulong z64 = BinaryPrimitives.ReadUInt64LittleEndian(loc[8..]);
            if (z64 > (ulong)(len - 56)) throw Bad(path, "ZIP64 end record offset out of range");
            var z = map.Span((long)z64, 56);
            if (BinaryPrimitives.ReadUInt32LittleEndian(z) != 0x06064b50) throw Bad(path, "bad ZIP64 end record signature");
            ulong c64 = BinaryPrimitives.ReadUInt64LittleEndian(z[32..]);
            ulong s64 = BinaryPrimitives.ReadUInt64LittleEndian(z[40..]);
            ulong o64 = BinaryPrimitives.ReadUInt64LittleEndian(z[48..]);
            if (c64 > int.MaxValue || s64 > (ulong)len || o64 > (ulong)len) throw Bad(path, "ZIP64 central directory values out of range");
            count = (long)c64; cdSize = (long)s64; cdOffset = (long)o64;
        }
        if (cdOffset > len || cdSize > len - cdOffset) throw Bad(path, $"central directory [{cdOffset}, +{cdSize}) lies outside the file ({len} bytes)");
        if (count > cdSize / 46) throw Bad(path, $"{count} entries cannot fit in a {cdSize}-byte central directory");
        if (cdSize > int.MaxValue) throw Bad(path, "central directory too large");
        var cd = map.Span(cdOffset, (int)cdSize);
        var entries = new List<Entry>((int)count);
        int p = 0;
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (long i = 0; i < count; i++)
        {
            if (cd.Length - p < 46 || BinaryPrimitives.ReadUInt32LittleEndian(cd[p..]) != 0x02014b50)
                throw Bad(path, $"central directory entry {i} is corrupt");
            int flags = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 8)..]);
            int method = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 10)..]);
            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(cd[(p + 16)..]);
            long csize = BinaryPrimitives.ReadUInt32LittleEndian(cd[(p + 20)..]);
            long usize = BinaryPrimitives.ReadUInt32LittleEndian(cd[(p + 24)..]);
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 28)..]);
            int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 30)..]);
            int commentLen = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 32)..]);
            long local = BinaryPrimitives.ReadUInt32LittleEndian(cd[(p + 42)..]);
            if (cd.Length - p - 46 < nameLen + extraLen + commentLen) throw Bad(path, $"central directory entry {i} overruns the directory");
            string name = Encoding.UTF8.GetString(cd.Slice(p + 46, nameLen));
            var extra = cd.Slice(p + 46 + nameLen, extraLen);
            // ZIP64 extended information (header id 1): only the fields that were 0xFFFFFFFF, in this order.
            for (int x = 0; x + 4 <= extra.Length;)
            {
                int id = BinaryPrimitives.ReadUInt16LittleEndian(extra[x..]);
                int sz = BinaryPrimitives.ReadUInt16LittleEndian(extra[(x + 2)..]);
                if (x + 4 + sz > extra.Length) break;
                if (id == 1)
                {
                    var z = extra.Slice(x + 4, sz);
                    int q = 0;
                    if (usize == 0xFFFFFFFF) usize = Zip64Field(z, ref q, path, name);
                    if (csize == 0xFFFFFFFF) csize = Zip64Field(z, ref q, path, name);
                    if (local == 0xFFFFFFFF) local = Zip64Field(z, ref q, path, name);
                }
                x += 4 + sz;
            }
            if (usize < 0 || csize < 0 || local < 0 || local > len || csize > len) throw Bad(path, $"entry '{name}' has out-of-range sizes or offset");
            if (!names.Add(name)) throw Bad(path, $"duplicate entry '{name}'");
            entries.Add(new Entry(name, method, csize, usize, local, crc, flags));
            p += 46 + nameLen + extraLen + commentLen;
        }
        return new ZipArchiveReader(map, path, entries);
    }

    private static long Zip64Field(ReadOnlySpan<byte> z, ref int q, string path, string name)
    {
        if (q + 8 > z.Length) throw Bad(path, $"entry '{name}': short ZIP64 extra field");
        long v = BinaryPrimitives.ReadInt64LittleEndian(z[q..]);
        q += 8;
        return v;
    }

    /// <summary>Absolute offset of an entry's data, from its local header.</summary>
    private long DataOffset(Entry e)
    {
        long len = _map.Length;
        if (e.LocalHeaderOffset > len - 30) throw Bad(_path, $"entry '{e.Name}': local header out of range");
        var h = _map.Span(e.LocalHeaderOffset, 30);
        if (BinaryPrimitives.ReadUInt32LittleEndian(h) != 0x04034b50) throw Bad(_path, $"entry '{e.Name}': bad local header signature");
        long start = e.LocalHeaderOffset + 30 + BinaryPrimitives.ReadUInt16LittleEndian(h[26..]) + BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
        if (start > len || e.CompressedSize > len - start) throw Bad(_path, $"entry '{e.Name}': data [{start}, +{e.CompressedSize}) runs past the end of the file");
        return start;
    }

    /// <summary>
    /// The entry's bytes: a zero-copy slice of the mapping when STORED, else inflated (bounded by the declared size).
    /// CRC-32 is verified when <paramref name="verifyCrc"/> (always for inflated data, which is read anyway).
    /// </summary>
    public ReadOnlyMemory<byte> Read(Entry e, bool verifyCrc, out bool zeroCopy)
    {
        if ((e.Flags & 1) != 0) throw Bad(_path, $"entry '{e.Name}' is encrypted");
        if (e.UncompressedSize > Array.MaxLength) throw Bad(_path, $"entry '{e.Name}' is {e.UncompressedSize} bytes; MedVL limits one record to 2 GiB");
        long start = DataOffset(e);
        ReadOnlyMemory<byte> data;
        switch (e.Method)
        {
            case 0:
                if (e.CompressedSize != e.UncompressedSize) throw Bad(_path, $"stored entry '{e.Name}' has different compressed ({e.CompressedSize}) and uncompressed ({e.UncompressedSize}) sizes");
                data = _map.Memory(start, (int)e.UncompressedSize);
                zeroCopy = true;
                break;
            case 8:
            {
                var buf = new byte[e.UncompressedSize];
                unsafe
                {
                    using var ums = new UnmanagedMemoryStream(_map.Pointer + start, e.CompressedSize);
                    using var inflate = new DeflateStream(ums, CompressionMode.Decompress);
                    try
                    {
                        int got = 0, n;
                        while (got < buf.Length && (n = inflate.Read(buf, got, buf.Length - got)) > 0) got += n;
                        if (got != buf.Length || inflate.Read(new byte[1], 0, 1) != 0)
                            throw Bad(_path, $"entry '{e.Name}' does not inflate to its declared {e.UncompressedSize} bytes");
                    }
                    catch (InvalidDataException ex) { throw new InvalidCheckpointException(_path, $"zip: entry '{e.Name}' has corrupt deflate data", ex); }
                }
                data = buf;
                zeroCopy = false;
                verifyCrc = true;
                break;
            }
            default:
                throw Bad(_path, $"entry '{e.Name}' uses compression method {e.Method} (only stored and deflate are supported)");
        }
        if (verifyCrc && Crc32.Compute(data.Span) != e.Crc32)
            throw Bad(_path, $"entry '{e.Name}' fails its CRC-32 check (corrupt file)");
        return data;
    }
}

/// <summary>CRC-32 (IEEE 802.3, reflected 0xEDB88320) as ZIP uses; slicing-by-1 table, enough for metadata records.</summary>
internal static class Crc32
{
    private static readonly uint[] Table = Build();

    private static uint[] Build()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
